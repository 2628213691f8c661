"""Adafactor, Rprop, Adan, ADOPT, AdEMAMix vs float64 references and optax / torch; numerics; jax."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from tests.helpers import max_rel_error, nested_params, quadratic_loss, to_jax
from tests.reference import zoo_c
from tests.reference.cases import (
    TOL64,
    Case,
    case_error,
    jax_problem,
    problem,
    run_optax,
    run_torch,
    run_transformation,
    tolerance,
)


def _case(name: str, kwargs: dict, ref_kwargs: dict | None = None) -> Case:
    ref = functools.partial(getattr(zoo_c, name), **(kwargs if ref_kwargs is None else ref_kwargs))
    return Case(
        f"{name}({kwargs})", "reference", functools.partial(getattr(gradtx, name), **kwargs), ref, ref
    )


_RPROP = dict(learning_rate=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))
REFERENCE_CASES = [
    _case("adafactor", {}),  # the paper's relative step size; no leaf is factored at 128
    _case("adafactor", dict(min_dim_size_to_factor=1, learning_rate=0.05)),
    _case(
        "adafactor",
        dict(
            min_dim_size_to_factor=2, momentum=0.9, weight_decay=0.01, clipping_threshold=0.5, decay_rate=0.7
        ),
    ),
    _case(
        "adafactor",
        dict(
            learning_rate=0.01, clipping_threshold=None, multiply_by_parameter_scale=False, decay_offset=-3.0
        ),
    ),
    _case("adan", {}),
    _case("adan", dict(learning_rate=0.01, b1=0.9, b2=0.8, b3=0.95, weight_decay=0.1, eps_root=1e-8)),
    _case("adopt", {}),
    _case("adopt", dict(learning_rate=0.01, b1=0.8, b2=0.99, nesterov=True, weight_decay=0.1)),
    _case("adopt", dict(learning_rate=0.01, use_clipping=False, eps=1e-3)),
    _case("ademamix", {}),
    _case(
        "ademamix",
        dict(learning_rate=0.01, b1=0.8, b2=0.99, b3=0.999, alpha=2.0, eps_root=1e-8, weight_decay=0.1),
    ),
    _case("rprop", {}),
    _case(
        "rprop",
        _RPROP,
        dict(learning_rate=0.05, eta_minus=0.3, eta_plus=1.5, min_step_size=1e-3, max_step_size=0.2),
    ),
]
IDS = [c.call for c in REFERENCE_CASES]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_float32_matches_reference(case):
    error = case_error(case, np.float32)
    assert error <= tolerance(case, np.float32), f"{case}: {error:.2e}"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_float64_matches_reference(case, x64):
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: {error:.2e}"


def test_factored_state_is_sublinear():
    state = gradtx.scale_by_factored_rms(min_dim_size_to_factor=2).init(
        {"w": jnp.zeros((3, 5, 4)), "b": jnp.zeros(4)}
    )
    assert state.v_row["w"].shape == (3, 4) and state.v_col["w"].shape == (3, 5)
    assert state.v["w"].size == 0 and state.v["b"].shape == (4,)


# --- oracles -----------------------------------------------------------------------------------

_ADAFACTOR = dict(learning_rate=0.05, min_dim_size_to_factor=2, momentum=0.9, clipping_threshold=0.5)


def _optax_adafactor_kwargs(dtype) -> dict:
    return dict(_ADAFACTOR, dtype_momentum=dtype)


def _optax_adafactor_float64_decay(params, grads):
    """optax.adafactor's own chain, with its decay schedule computed in float64."""

    def decay_fn(step, exponent):
        return 1.0 - (jnp.asarray(step, jnp.float64) + 1) ** (-exponent)

    tx = optax.chain(
        optax.scale_by_factored_rms(True, 0.8, 0, 2, 1e-30, decay_rate_fn=decay_fn),
        optax.clip_by_block_rms(0.5),
        optax.scale_by_learning_rate(0.05, flip_sign=False),
        optax.scale_by_param_block_rms(),
        optax.ema(0.9, debias=False, accumulator_dtype=jnp.float64),
        optax.scale(-1),
    )
    final = run_transformation(tx, to_jax(params, jnp.float64), [to_jax(g, jnp.float64) for g in grads])
    return jax.tree.map(np.asarray, final)


def test_adafactor_matches_optax_float32():
    params, grads = problem(np.float32)
    ours = run_transformation(gradtx.adafactor(**_ADAFACTOR), *jax_problem("float32"))
    theirs = run_optax("adafactor", _optax_adafactor_kwargs(jnp.float32), params, grads)
    assert max_rel_error(ours, theirs) <= 1e-5


def test_adafactor_matches_optax_float64(x64):
    params, grads = problem(np.float64)
    ours = run_transformation(gradtx.adafactor(**_ADAFACTOR), *jax_problem("float64"))
    assert max_rel_error(ours, _optax_adafactor_float64_decay(params, grads)) <= TOL64
    # optax.adafactor itself rounds its decay rate to float32, even under x64.
    theirs = run_optax("adafactor", _optax_adafactor_kwargs(jnp.float64), params, grads)
    assert 1e-10 < max_rel_error(ours, theirs) <= 1e-6


def test_adafactor_optax_default_learning_rate_is_one():
    params, grads = problem(np.float32)
    ours = run_transformation(gradtx.adafactor(learning_rate=1.0), *jax_problem("float32"))
    theirs = run_optax("adafactor", {}, params, grads)
    assert max_rel_error(ours, theirs) <= 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs, torch_kwargs",
    [({}, {}), (_RPROP, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)))],
    ids=["defaults", "custom"],
)
def test_rprop_matches_torch(kwargs, torch_kwargs, dtype, request):
    if dtype == np.float64:
        request.getfixturevalue("x64")
    params, grads = problem(dtype)
    ours = run_transformation(gradtx.rprop(**kwargs), *jax_problem(np.dtype(dtype).name))
    error = max_rel_error(ours, run_torch("Rprop", torch_kwargs, params, grads))
    assert error <= (TOL64 if dtype == np.float64 else 1e-5), error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adan_matches_optax_where_the_rules_agree(dtype, request):
    # optax weights the gradient difference by 1 - b2 (optax#1715); at b2 = 0.5 that is b2.
    if dtype == np.float64:
        request.getfixturevalue("x64")
    kwargs = dict(learning_rate=0.01, b2=0.5, eps_root=1e-8, weight_decay=0.1)
    params, grads = problem(dtype)
    ours = run_transformation(gradtx.adan(**kwargs), *jax_problem(np.dtype(dtype).name))
    error = max_rel_error(ours, run_optax("adan", kwargs, params, grads))
    assert error <= (TOL64 if dtype == np.float64 else 1e-5), error


def test_adan_fixes_optax_difference_weight(x64):
    kwargs = dict(learning_rate=0.01, eps_root=1e-8)
    params, grads = problem(np.float64)
    ours = run_transformation(gradtx.adan(**kwargs), *jax_problem("float64"))
    assert max_rel_error(ours, zoo_c.adan(params, grads, **kwargs)) <= TOL64
    assert max_rel_error(ours, run_optax("adan", kwargs, params, grads)) > 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [dict(learning_rate=0.01), dict(learning_rate=0.01, b1=0.8, b2=0.99, nesterov=True, eps=1e-3)],
    ids=["plain", "nesterov"],
)
def test_adopt_matches_optax(kwargs, dtype, request):
    if dtype == np.float64:
        request.getfixturevalue("x64")
    p0, gs = jax_problem(np.dtype(dtype).name)
    ours = run_transformation(gradtx.adopt(**kwargs), p0, gs)
    theirs = run_transformation(optax.contrib.adopt(**kwargs), p0, gs)
    assert max_rel_error(ours, theirs) <= (TOL64 if dtype == np.float64 else 1e-5)


def _alpha_warmup(step):
    return 5.0 * jnp.minimum(step / 30.0, 1.0)


def _b3_warmup(step):
    return 0.9 + 0.0999 * jnp.minimum(step / 30.0, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(learning_rate=0.01, b1=0.8, b2=0.99, b3=0.999, alpha=2.0, eps_root=1e-8, weight_decay=0.1),
        dict(learning_rate=0.01, alpha=_alpha_warmup, b3=_b3_warmup),
    ],
    ids=["constant", "scheduled"],
)
def test_ademamix_matches_optax(kwargs, dtype, request):
    if dtype == np.float64:
        request.getfixturevalue("x64")
    p0, gs = jax_problem(np.dtype(dtype).name)
    ours = run_transformation(gradtx.ademamix(**kwargs), p0, gs)
    theirs = run_transformation(optax.contrib.ademamix(**kwargs), p0, gs)
    # A scheduled b3 near 1 leaves 1 - b3 with ~1e-3 relative float32 rounding, which the two
    # programs round differently; float64 shows the rules are the same.
    tol32 = 1e-4 if callable(kwargs.get("b3")) else 1e-5
    assert max_rel_error(ours, theirs) <= (TOL64 if dtype == np.float64 else tol32)


def test_rprop_fixes_optax_one_step_lag():
    # optax.rprop applies the previous step's move: its first update is zero.
    params = {"w": jnp.zeros(3)}
    g = {"w": jnp.array([1.0, -2.0, 3.0])}
    theirs, _ = optax.rprop(0.1).update(g, optax.rprop(0.1).init(params), params)
    ours, _ = gradtx.rprop(0.1).update(g, gradtx.rprop(0.1).init(params), params)
    np.testing.assert_array_equal(theirs["w"], np.zeros(3))
    np.testing.assert_allclose(ours["w"], [-0.1, 0.1, -0.1])


def test_rprop_learning_rate_scales_step_sizes():
    tx = gradtx.rprop(0.1)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.ones(2), state)
    state = gradtx.set_hyperparam(state, "learning_rate", 0.2)
    u, _ = tx.update(jnp.ones(2), state)
    np.testing.assert_allclose(u, [-0.24, -0.24], rtol=1e-6)


# --- behaviour -----------------------------------------------------------------------------------

OPTIMIZERS = {
    "adafactor": lambda: gradtx.adafactor(learning_rate=0.1, min_dim_size_to_factor=2, momentum=0.5),
    "rprop": lambda: gradtx.rprop(0.05),
    "adan": lambda: gradtx.adan(0.1, weight_decay=0.01),
    "adopt": lambda: gradtx.adopt(0.1, nesterov=True, weight_decay=0.01),
    "ademamix": lambda: gradtx.ademamix(0.1, b3=0.99, weight_decay=0.01),
}


@pytest.mark.parametrize("name", ["adafactor", "rprop", "adan", "adopt", "ademamix"])
def test_converges_on_quadratic(name):
    tx = OPTIMIZERS[name]()
    params = to_jax(nested_params(0, np.float32), jnp.float32)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(quadratic_loss)(p), s, p)
        return gradtx.apply_updates(p, u), s

    start, state = float(quadratic_loss(params)), tx.init(params)
    for _ in range(300):
        params, state = step(params, state)
    assert float(quadratic_loss(params)) < 1e-3 * start


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_zero_gradient_is_finite(name, dtype):
    tx = OPTIMIZERS[name]()
    params = to_jax(nested_params(0, np.float32), dtype)
    zeros = jax.tree.map(jnp.zeros_like, params)
    state, update = tx.init(params), jax.jit(tx.update)
    for _ in range(2):
        updates, state = update(zeros, state, params)
    for leaf in jax.tree.leaves((updates, state)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf))), name
    assert all(u.dtype == dtype for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", ["adafactor", "rprop", "adan", "adopt", "ademamix"])
def test_jit_equals_eager_and_traces_once(name):
    tx = OPTIMIZERS[name]()
    params, grads = jax_problem("float32")
    traces = []

    def step(p, s, g):
        traces.append(None)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    jitted = jax.jit(step)
    p_jit, s_jit = params, tx.init(params)
    p_eager, s_eager = params, tx.init(params)
    for g in grads[:20]:
        p_jit, s_jit = jitted(p_jit, s_jit, g)
    n_traces = len(traces)
    for g in grads[:1]:
        p_eager, s_eager = step(p_eager, s_eager, g)
    assert n_traces == 1
    p_ref = params
    s_ref = tx.init(params)
    for g in grads[:1]:
        p_ref, s_ref = jitted(p_ref, s_ref, g)
    assert max_rel_error(p_eager, p_ref, atol=1e-4) <= 1e-5  # float32 rounding of a 0.1 step near 0


@pytest.mark.parametrize("name", ["adafactor", "rprop", "adan", "adopt", "ademamix"])
def test_vmap_over_states(name):
    tx = OPTIMIZERS[name]()
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    grads = {"w": jnp.arange(6.0).reshape(3, 2) - 2, "b": jnp.array([1.0, -1.0])}
    states = jax.vmap(lambda _: tx.init(params))(jnp.arange(2))
    lrs = jnp.array([0.1, 0.2])
    states = jax.vmap(lambda s, lr: gradtx.set_hyperparam(s, "learning_rate", lr))(states, lrs)
    batched, _ = jax.jit(jax.vmap(lambda s: tx.update(grads, s, params)))(states)
    update = jax.jit(tx.update)
    for i in range(2):
        state = gradtx.set_hyperparam(tx.init(params), "learning_rate", lrs[i])
        single, _ = update(grads, state, params)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
            np.testing.assert_allclose(a[i], b, rtol=1e-6)


def test_hyperparams_in_state_and_equal_configs_hash_equal():
    state = gradtx.adafactor(0.1, momentum=0.9, weight_decay=0.1).init({"w": jnp.ones((2, 2))})
    assert sorted(gradtx.get_hyperparams(state)) == [
        "clipping_threshold",
        "decay_offset",
        "decay_rate",
        "eps",
        "learning_rate",
        "min_param_scale",
        "momentum",
        "weight_decay",
    ]
    state = gradtx.rprop().init(jnp.ones(2))
    assert sorted(gradtx.get_hyperparams(state)) == [
        "eta_minus",
        "eta_plus",
        "learning_rate",
        "max_step_size",
        "min_step_size",
    ]
    state = gradtx.adopt(weight_decay=0.1).init(jnp.ones(2))
    assert sorted(gradtx.get_hyperparams(state)) == [
        "b1",
        "b2",
        "clip_exponent",
        "eps",
        "learning_rate",
        "weight_decay",
    ]
    state = gradtx.ademamix(weight_decay=0.1).init(jnp.ones(2))
    assert sorted(gradtx.get_hyperparams(state)) == [
        "alpha",
        "b1",
        "b2",
        "b3",
        "eps",
        "eps_root",
        "learning_rate",
        "weight_decay",
    ]
    state = gradtx.adan(weight_decay=0.1).init(jnp.ones(2))
    assert sorted(gradtx.get_hyperparams(state)) == [
        "b1",
        "b2",
        "b3",
        "eps",
        "eps_root",
        "learning_rate",
        "weight_decay",
    ]
    for make in (
        lambda: gradtx.adafactor(),
        lambda: gradtx.adafactor(0.1, momentum=0.9),
        lambda: gradtx.scale_by_factored_rms(),
        lambda: gradtx.rprop(),
        lambda: gradtx.scale_by_rprop(),
        lambda: gradtx.adan(),
        lambda: gradtx.scale_by_adan(),
        lambda: gradtx.adopt(),
        lambda: gradtx.ademamix(),
        lambda: gradtx.ademamix(alpha=_alpha_warmup),
    ):
        assert make() == make() and hash(make()) == hash(make())


def test_adafactor_schedule_and_default_relative_step():
    tx = gradtx.adafactor()
    state = tx.init({"w": jnp.ones(3)})
    assert float(gradtx.get_hyperparam(state, "learning_rate")) == pytest.approx(1e-2)
    tx = gradtx.adafactor(learning_rate=lambda step: 0.1 / (step + 1))
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.ones(3)}, state, params)
    assert float(gradtx.get_hyperparam(state, "learning_rate")) == pytest.approx(0.05)


def test_adafactor_needs_params():
    tx = gradtx.adafactor()
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda: gradtx.adafactor(learning_rate=-1.0), "learning_rate"),
        (lambda: gradtx.adafactor(decay_rate=-0.8), "decay_rate"),
        (lambda: gradtx.adafactor(eps=-1.0), "eps"),
        (lambda: gradtx.adafactor(clipping_threshold=0.0), "clipping_threshold"),
        (lambda: gradtx.adafactor(momentum=1.0), "momentum"),
        (lambda: gradtx.adafactor(min_param_scale=-1.0), "min_param_scale"),
        (lambda: gradtx.adafactor(weight_decay=-0.1), "weight_decay"),
        (lambda: gradtx.adafactor(min_dim_size_to_factor=0), "min_dim_size_to_factor"),
        (lambda: gradtx.adafactor(decay_offset=float("nan")), "decay_offset"),
        (lambda: gradtx.rprop(learning_rate=0.0), "learning_rate"),
        (lambda: gradtx.adan(learning_rate=-1.0), "learning_rate"),
        (lambda: gradtx.adan(b1=1.0), "b1"),
        (lambda: gradtx.adan(b2=-0.1), "b2"),
        (lambda: gradtx.adan(b3=1.5), "b3"),
        (lambda: gradtx.adan(eps=-1.0), "eps"),
        (lambda: gradtx.adan(eps_root=-1.0), "eps_root"),
        (lambda: gradtx.adan(weight_decay=-1.0), "weight_decay"),
        (lambda: gradtx.adopt(learning_rate=-1.0), "learning_rate"),
        (lambda: gradtx.adopt(b1=1.0), "b1"),
        (lambda: gradtx.adopt(b2=1.0), "b2"),
        (lambda: gradtx.adopt(eps=-1.0), "eps"),
        (lambda: gradtx.adopt(clip_exponent=-1.0), "clip_exponent"),
        (lambda: gradtx.adopt(weight_decay=-1.0), "weight_decay"),
        (lambda: gradtx.ademamix(learning_rate=-1.0), "learning_rate"),
        (lambda: gradtx.ademamix(b1=1.0), "b1"),
        (lambda: gradtx.ademamix(b2=1.0), "b2"),
        (lambda: gradtx.ademamix(b3=1.0), "b3"),
        (lambda: gradtx.ademamix(alpha=-1.0), "alpha"),
        (lambda: gradtx.ademamix(eps=-1.0), "eps"),
        (lambda: gradtx.ademamix(eps_root=-1.0), "eps_root"),
        (lambda: gradtx.ademamix(weight_decay=-1.0), "weight_decay"),
        (lambda: gradtx.rprop(etas=(1.5, 1.2)), "eta_minus"),
        (lambda: gradtx.rprop(etas=(0.5, 0.9)), "eta_plus"),
        (lambda: gradtx.rprop(etas=0.5), "etas"),
        (lambda: gradtx.rprop(step_sizes=(-1.0, 50.0)), "min_step_size"),
        (lambda: gradtx.rprop(step_sizes=(1.0, 0.5)), "max_step_size"),
    ],
)
def test_bad_arguments_raise(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()
