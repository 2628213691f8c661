"""Layer-wise optimizers (LAMB, LARS, NovoGrad, Fromage, SM3): references, optax, numerics, jax.

Float64 references are in tests/reference/zoo_b.py; the comparisons use the
nested pytree and gradient stream of tests/helpers.py (see tests/reference/cases.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.helpers import max_rel_error, nested_params, quadratic_loss, to_jax
from tests.reference import zoo_b
from tests.reference.cases import (
    LR,
    MATRIX_MASK,
    TOL64,
    Case,
    call_string,
    case_error,
    matrices_only,
    problem,
    run_transformation,
    tolerance,
)

# (gradtx name, keywords shared by gradtx, the reference and optax, optax name, optax-only renames)
CONFIGS = [
    ("lamb", dict(learning_rate=LR), "lamb", {}),
    (
        "lamb",
        dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-4, eps_root=1e-8, weight_decay=0.1),
        "lamb",
        {},
    ),
    ("lars", dict(learning_rate=1.0, trust_coefficient=0.02), "lars", {}),
    (
        "lars",
        dict(
            learning_rate=0.5, weight_decay=0.1, trust_coefficient=0.05, eps=1e-3, momentum=0.5, nesterov=True
        ),
        "lars",
        {},
    ),
    ("novograd", dict(learning_rate=LR), "novograd", {}),
    (
        "novograd",
        dict(learning_rate=0.01, b1=0.95, b2=0.98, eps=1e-4, eps_root=1e-8, weight_decay=0.1),
        "novograd",
        {},
    ),
    ("fromage", dict(learning_rate=LR), "fromage", {}),
    ("fromage", dict(learning_rate=0.01, min_norm=0.5), "fromage", {}),
    ("sm3", dict(learning_rate=LR), "sm3", {}),
    ("sm3", dict(learning_rate=0.2, b1=0.5), "sm3", {"b1": "momentum"}),
]


def _reference_case(name, kwargs):
    ref = functools.partial(getattr(zoo_b, name), **kwargs)
    return Case(
        call_string(name, kwargs), "reference", functools.partial(getattr(gradtx, name), **kwargs), ref, ref
    )


REFERENCE_CASES = [_reference_case(name, kw) for name, kw, _, _ in CONFIGS]
IDS = [c.call for c in REFERENCE_CASES]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_matches_reference_float64(case, x64):
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_matches_reference_float32(case):
    error = case_error(case, np.float32)
    assert error <= tolerance(case, np.float32), f"{case}: max rel error {error:.2e}"


# --- optax -----------------------------------------------------------------------------------


def _drop_scalars(tree):
    """The tree with its rank-0 leaves replaced by None: optax.sm3 cannot handle them."""
    return jax.tree.map(lambda x: None if np.ndim(x) == 0 else x, tree)


def optax_error(make_tx, make_optax, dtype=np.float64, *, drop_scalars=False):
    """Max rel error between gradtx and optax run on the same problem in ``dtype``."""
    params, grads = problem(dtype)
    if drop_scalars:
        params, grads = _drop_scalars(params), [_drop_scalars(g) for g in grads]
    p0, gs = to_jax(params, dtype), [to_jax(g, dtype) for g in grads]
    return max_rel_error(run_transformation(make_tx(), p0, gs), run_transformation(make_optax(), p0, gs))


def _optax_kwargs(kwargs, renames):
    return {renames.get(k, k): v for k, v in kwargs.items()}


OPTAX_CONFIGS = [
    *CONFIGS,
    ("lamb", dict(learning_rate=0.01, weight_decay=0.1, mask=matrices_only), "lamb", {}),
    (
        "lars",
        dict(
            learning_rate=0.5,
            weight_decay=0.1,
            trust_coefficient=0.05,
            weight_decay_mask=MATRIX_MASK,
            trust_ratio_mask=matrices_only,
        ),
        "lars",
        {},
    ),
    ("lars", dict(learning_rate=0.5, momentum=0.0), "lars", {}),
]


@pytest.mark.parametrize(
    "name, kwargs, optax_name, renames", OPTAX_CONFIGS, ids=[call_string(c[0], c[1]) for c in OPTAX_CONFIGS]
)
def test_matches_optax_float64(name, kwargs, optax_name, renames, x64):
    optax = pytest.importorskip("optax")
    error = optax_error(
        functools.partial(getattr(gradtx, name), **kwargs),
        functools.partial(getattr(optax, optax_name), **_optax_kwargs(kwargs, renames)),
        drop_scalars=name == "sm3",
    )
    assert error <= TOL64, f"{name}: max rel error {error:.2e}"


def test_sm3_handles_scalar_leaves_where_optax_fails():
    optax = pytest.importorskip("optax")
    params = {"s": jnp.asarray(2.0), "w": jnp.ones((2, 3))}
    with pytest.raises(IndexError):
        optax.sm3(0.1).update(params, optax.sm3(0.1).init(params))
    tx = gradtx.sm3(0.1)
    updates, _ = tx.update(params, tx.init(params))
    assert np.isfinite(np.asarray(updates["s"])) and float(updates["s"]) < 0


def test_novograd_zero_gradient_with_zero_eps_gives_zeros_where_optax_gives_nan():
    optax = pytest.importorskip("optax")
    zeros = {"w": jnp.zeros(3)}
    ours, _ = gradtx.novograd(0.1, eps=0.0).update(zeros, gradtx.novograd(0.1, eps=0.0).init(zeros), zeros)
    theirs, _ = optax.novograd(0.1, eps=0.0).update(zeros, optax.novograd(0.1, eps=0.0).init(zeros), zeros)
    np.testing.assert_array_equal(np.asarray(ours["w"]), np.zeros(3))
    assert np.isnan(np.asarray(theirs["w"])).all()


def test_fromage_scheduled_learning_rate_matches_optax(x64):
    optax = pytest.importorskip("optax")

    def schedule(count):
        return 0.05 / (1.0 + 0.1 * count)

    error = optax_error(lambda: gradtx.fromage(schedule), lambda: optax.fromage(schedule))
    assert error <= TOL64, error


# --- behaviour -------------------------------------------------------------------------------

OPTIMIZERS = {
    "lamb": lambda: gradtx.lamb(0.05, weight_decay=0.01),
    "lars": lambda: gradtx.lars(1.0, weight_decay=0.01, trust_coefficient=0.05, nesterov=True),
    "novograd": lambda: gradtx.novograd(0.05, weight_decay=0.01),
    "fromage": lambda: gradtx.fromage(0.05),
    "sm3": lambda: gradtx.sm3(0.5),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_converges_on_quadratic(name):
    tx = OPTIMIZERS[name]()
    params = to_jax(nested_params(0), jnp.float32)
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(quadratic_loss)(p), s, p)
        return gradtx.apply_updates(p, u), s

    initial = float(quadratic_loss(params))
    for _ in range(300):
        params, state = step(params, state)
    assert float(quadratic_loss(params)) < 0.05 * initial


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("zero_params", [False, True])
def test_zero_gradient_is_finite(name, dtype, zero_params):
    params = to_jax(nested_params(0), dtype)
    if zero_params:
        params = jax.tree.map(jnp.zeros_like, params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    tx = OPTIMIZERS[name]()
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        u, s = tx.update(zeros, s, p)
        return u, gradtx.apply_updates(p, u), s

    for _ in range(3):
        updates, params, state = step(params, state)
    for leaf in jax.tree.leaves((updates, params)):
        assert leaf.dtype == dtype
        assert np.isfinite(np.asarray(leaf, np.float32)).all()


def test_zero_eps_zero_gradient_is_finite():
    zeros = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    for tx in [gradtx.novograd(0.1, eps=0.0), gradtx.sm3(0.1, eps=0.0), gradtx.lars(0.1, eps=0.0)]:
        updates, _ = tx.update(zeros, tx.init(zeros), zeros)
        assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_jit_matches_eager_with_one_trace(name):
    tx = OPTIMIZERS[name]()
    params, grads = problem(np.float32, steps=20)
    params, grads = to_jax(params, jnp.float32), [to_jax(g, jnp.float32) for g in grads]
    traces = []

    def step(p, s, g):
        traces.append(1)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    jitted = jax.jit(step)
    pe, se = params, tx.init(params)
    pj, sj = params, tx.init(params)
    for g in grads:
        pe, se = step(pe, se, g)
        pj, sj = jitted(pj, sj, g)
    assert len(traces) == 20 + 1  # 20 eager calls, one trace
    assert max_rel_error(pj, pe) < 1e-5


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_vmap_over_states(name):
    tx = OPTIMIZERS[name]()
    batch = [to_jax(nested_params(seed), jnp.float32) for seed in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)
    states = jax.vmap(tx.init)(stacked)
    updates, _ = jax.jit(jax.vmap(tx.update))(stacked, states, stacked)
    for i, params in enumerate(batch):
        expected, _ = tx.update(params, tx.init(params), params)
        got = jax.tree.map(lambda x: x[i], updates)
        assert max_rel_error(got, expected) < 1e-5


# --- hyperparameters and arguments -----------------------------------------------------------

HYPERPARAMS = {
    "lamb": (
        gradtx.lamb,
        dict(learning_rate=0.05, b1=0.9, b2=0.99, eps=1e-6, eps_root=1e-8, weight_decay=0.01),
    ),
    "lars": (
        gradtx.lars,
        dict(learning_rate=0.5, weight_decay=0.01, trust_coefficient=0.05, eps=1e-3, momentum=0.9),
    ),
    "novograd": (
        gradtx.novograd,
        dict(learning_rate=0.05, b1=0.9, b2=0.5, eps=1e-6, eps_root=1e-8, weight_decay=0.01),
    ),
    "fromage": (gradtx.fromage, dict(learning_rate=0.05, min_norm=1e-3)),
    "sm3": (gradtx.sm3, dict(learning_rate=0.5, b1=0.9, b2=0.99, eps=1e-8)),
}


@pytest.mark.parametrize("name", HYPERPARAMS)
def test_every_numeric_argument_is_a_hyperparameter(name):
    make, kwargs = HYPERPARAMS[name]
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    state = make(**kwargs).init(params)
    names = gradtx.get_hyperparams(state)
    for arg, value in kwargs.items():
        assert arg in names, (arg, sorted(names))
        np.testing.assert_allclose(float(gradtx.get_hyperparam(state, arg)), value, rtol=1e-6)
    state = gradtx.set_hyperparam(state, "learning_rate", 0.0)
    updates, _ = make(**kwargs).update(params, state, params)
    assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", HYPERPARAMS)
def test_every_hyperparameter_accepts_a_schedule(name):
    make, kwargs = HYPERPARAMS[name]
    scheduled = {k: (lambda v: lambda count: v)(v) for k, v in kwargs.items()}
    params = to_jax(nested_params(0), jnp.float32)
    grads = [to_jax(g, jnp.float32) for g in problem(np.float32, steps=3)[1]]
    expected = run_transformation(make(**kwargs), params, grads, jit=False)
    got = run_transformation(make(**scheduled), params, grads, jit=False)
    assert max_rel_error(got, expected) < 1e-6


@pytest.mark.parametrize("name", HYPERPARAMS)
def test_equal_arguments_give_equal_hashable_transforms(name):
    make, kwargs = HYPERPARAMS[name]
    assert make(**kwargs) == make(**kwargs)
    assert hash(make(**kwargs)) == hash(make(**kwargs))


BUILDING_BLOCKS = [
    (gradtx.scale_by_trust_ratio, dict(min_norm=0.1, trust_coefficient=0.5, eps=1e-3)),
    (gradtx.scale_by_novograd, dict(b1=0.9, b2=0.5, eps=1e-6, eps_root=1e-8, weight_decay=0.01)),
    (gradtx.scale_by_sm3, dict(b1=0.9, b2=0.99, eps=1e-8)),
]


@pytest.mark.parametrize("make, kwargs", BUILDING_BLOCKS, ids=lambda x: getattr(x, "__name__", ""))
def test_building_blocks_store_hyperparameters(make, kwargs):
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    tx = make(**kwargs)
    assert tx == make(**kwargs) and hash(tx) == hash(make(**kwargs))
    state = tx.init(params)
    assert set(gradtx.get_hyperparams(state)) == set(kwargs)
    updates, _ = jax.jit(tx.update)(params, state, params)
    assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves(updates))


BAD_ARGS = [
    (gradtx.lamb, dict(b1=1.0), "b1"),
    (gradtx.lamb, dict(b2=-0.1), "b2"),
    (gradtx.lamb, dict(eps=-1.0), "eps"),
    (gradtx.lamb, dict(weight_decay=-1.0), "weight_decay"),
    (gradtx.lamb, dict(learning_rate=-1.0), "learning_rate"),
    (gradtx.lars, dict(learning_rate=-0.1), "learning_rate"),
    (gradtx.lars, dict(learning_rate=0.1, momentum=1.0), "momentum"),
    (gradtx.lars, dict(learning_rate=0.1, trust_coefficient=-1.0), "trust_coefficient"),
    (gradtx.lars, dict(learning_rate=0.1, eps=float("nan")), "eps"),
    (gradtx.lars, dict(learning_rate=0.1, weight_decay=-1.0), "weight_decay"),
    (gradtx.novograd, dict(b1=1.5), "b1"),
    (gradtx.novograd, dict(b2=1.0), "b2"),
    (gradtx.novograd, dict(eps_root=-1.0), "eps_root"),
    (gradtx.novograd, dict(weight_decay=-1.0), "weight_decay"),
    (gradtx.fromage, dict(learning_rate=-0.1), "learning_rate"),
    (gradtx.fromage, dict(min_norm=-1.0), "min_norm"),
    (gradtx.sm3, dict(b1=1.0), "b1"),
    (gradtx.sm3, dict(b2=0.0), "b2"),
    (gradtx.sm3, dict(eps=-1.0), "eps"),
    (gradtx.sm3, dict(learning_rate=-1.0), "learning_rate"),
    (gradtx.scale_by_trust_ratio, dict(min_norm=-1.0), "min_norm"),
]


@pytest.mark.parametrize("make, kwargs, arg", BAD_ARGS, ids=[f"{m.__name__}-{a}" for m, _, a in BAD_ARGS])
def test_bad_arguments_raise_value_error_naming_them(make, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        make(**kwargs)


def test_trust_ratio_needs_params():
    tx = gradtx.scale_by_trust_ratio()
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_trust_ratio_is_one_for_zero_norms():
    tx = gradtx.scale_by_trust_ratio()
    params = {"zero_param": jnp.zeros(2), "zero_update": jnp.ones(2)}
    updates = {"zero_param": jnp.ones(2), "zero_update": jnp.zeros(2)}
    out, _ = tx.update(updates, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(out["zero_param"]), np.ones(2))
    np.testing.assert_array_equal(np.asarray(out["zero_update"]), np.zeros(2))


def test_sm3_keeps_one_vector_per_axis():
    state = gradtx.scale_by_sm3().init({"m": jnp.zeros((4, 5, 6)), "v": jnp.zeros(7), "s": jnp.zeros(())})
    assert [a.shape for a in state.accumulators["m"]] == [(4,), (5,), (6,)]
    assert [a.shape for a in state.accumulators["v"]] == [(7,)]
    assert [a.shape for a in state.accumulators["s"]] == [()]
