"""Sign-based optimizers (sign_sgd, signum, lion) and Adam variants (adabelief, yogi, radam).

Each is checked against a float64 NumPy reference written from its paper
(tests/reference/zoo_a.py) and against its external oracle (optax or torch)
on the nested pytree of tests/helpers.py, then for convergence, low-precision
zero gradients, jit/vmap behaviour and argument validation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.helpers import max_rel_error, quadratic_loss, rosenbrock_loss
from tests.reference import zoo_a
from tests.reference.cases import (
    TOL64,
    Case,
    call_string,
    case_error,
    jax_problem,
    problem,
    run_optax,
    run_torch,
    run_transformation,
    tolerance,
)

LR = 0.05


def _reference_case(name: str, **kwargs) -> Case:
    ref = functools.partial(getattr(zoo_a, name), **kwargs)
    make = functools.partial(getattr(gradtx, name), **kwargs)
    return Case(call_string(name, kwargs), "reference", make, ref, ref)


def _oracle_case(name: str, kwargs: dict, oracle: str, oracle_name: str, oracle_kwargs: dict) -> Case:
    ref = functools.partial(getattr(zoo_a, name), **kwargs)
    run = run_optax if oracle == "optax" else run_torch
    label = f"optax.{oracle_name}" if oracle == "optax" else f"torch.optim.{oracle_name}"
    return Case(
        call_string(name, kwargs),
        call_string(label, oracle_kwargs),
        functools.partial(getattr(gradtx, name), **kwargs),
        functools.partial(run, oracle_name, oracle_kwargs),
        ref,
        needs=oracle,
    )


REFERENCE_CASES = [
    _reference_case("sign_sgd", learning_rate=LR),
    _reference_case("signum", learning_rate=LR, beta=0.8),
    _reference_case("lion", learning_rate=LR),
    _reference_case("lion", learning_rate=LR, b1=0.8, b2=0.95, weight_decay=0.1),
    _reference_case("adabelief", learning_rate=0.01),
    _reference_case(
        "adabelief", learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-10, weight_decay=0.1
    ),
    _reference_case("yogi", learning_rate=0.01),
    _reference_case("yogi", learning_rate=0.01, b2=0.99, eps=1e-6, eps_root=1e-8, weight_decay=0.1),
    _reference_case("radam", learning_rate=0.01),
    _reference_case("radam", learning_rate=0.01, b2=0.9, eps=1e-6, threshold=4.0, weight_decay=0.1),
]

_BETAS = dict(b1=0.9, b2=0.99)
_RADAM = dict(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-8)
_TORCH_RADAM = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8)

ORACLE_CASES = [
    _oracle_case("sign_sgd", dict(learning_rate=LR), "optax", "sign_sgd", dict(learning_rate=LR)),
    _oracle_case(
        "signum", dict(learning_rate=LR, beta=0.8), "optax", "signum", dict(learning_rate=LR, beta=0.8)
    ),
    _oracle_case(
        "lion",
        dict(learning_rate=LR, weight_decay=0.1, **_BETAS),
        "optax",
        "lion",
        dict(learning_rate=LR, weight_decay=0.1, **_BETAS),
    ),
    _oracle_case(
        "adabelief",
        dict(learning_rate=0.01, eps=1e-8, eps_root=1e-10),
        "optax",
        "adabelief",
        dict(learning_rate=0.01, eps=1e-8, eps_root=1e-10),
    ),
    _oracle_case("adabelief", dict(learning_rate=0.01), "optax", "adabelief", dict(learning_rate=0.01)),
    _oracle_case("yogi", dict(learning_rate=0.01), "optax", "yogi", dict(learning_rate=0.01)),
    _oracle_case(
        "yogi",
        dict(learning_rate=0.01, b2=0.99, eps=1e-6),
        "optax",
        "yogi",
        dict(learning_rate=0.01, b2=0.99, eps=1e-6),
    ),
    _oracle_case("radam", _RADAM, "torch", "RAdam", _TORCH_RADAM),
    _oracle_case(
        "radam", dict(_RADAM, weight_decay=0.1), "torch", "RAdam", dict(_TORCH_RADAM, weight_decay=0.1)
    ),
    _oracle_case("radam", dict(_RADAM, b2=0.9), "torch", "RAdam", dict(_TORCH_RADAM, betas=(0.9, 0.9))),
    # optax adds eps after bias correction and tests rho >= threshold: equal for eps = 0.
    _oracle_case("radam", dict(_RADAM, eps=0.0), "optax", "radam", dict(_RADAM, eps=0.0)),
]


def _ids(cases):
    return [str(c) for c in cases]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=_ids(REFERENCE_CASES))
def test_float32_matches_reference(case):
    error = case_error(case, np.float32)
    assert error <= tolerance(case, np.float32), f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=_ids(REFERENCE_CASES))
def test_float64_matches_reference(case, x64):
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", ORACLE_CASES, ids=_ids(ORACLE_CASES))
def test_float32_matches_oracle(case):
    # optax rounds some constants in float32 (hyperparameters as weak-typed
    # float32, rho_t of RAdam), so its own float32 run is up to 1e-4 away from
    # the float64 reference, where gradtx's stays within the usual tolerance
    # (test_float32_matches_reference). The gap to optax must be explained by
    # optax's own error.
    params, grads = problem(np.float32)
    oracle = case.run_oracle(params, grads)  # run once: optax steps are compiled per instance
    oracle_error = max_rel_error(oracle, case.reference(params, grads))
    error = max_rel_error(run_transformation(case.make_tx(), *jax_problem("float32")), oracle)
    assert error <= max(tolerance(case, np.float32), 1.5 * oracle_error), f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", ORACLE_CASES, ids=_ids(ORACLE_CASES))
def test_float64_matches_oracle(case, x64):
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


# --- behaviour -------------------------------------------------------------------------------

OPTIMIZERS = {
    "sign_sgd": dict(learning_rate=0.02),
    "signum": dict(learning_rate=0.02),
    "lion": dict(learning_rate=0.02, weight_decay=0.0),
    "adabelief": dict(learning_rate=0.1),
    "yogi": dict(learning_rate=0.1),
    "radam": dict(learning_rate=0.1),
}
BLOCKS = [
    "scale_by_sign",
    "scale_by_signum",
    "scale_by_lion",
    "scale_by_belief",
    "scale_by_yogi",
    "scale_by_radam",
]


def _start(dtype=jnp.float32):
    params, _ = jax_problem("float32")
    return jax.tree.map(lambda x: x.astype(dtype), params)


def _minimise(tx, loss, params, steps):
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return gradtx.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_minimises_quadratic(name):
    start = _start()
    final = _minimise(getattr(gradtx, name)(**OPTIMIZERS[name]), quadratic_loss, start, 200)
    assert float(quadratic_loss(final)) < 0.05 * float(quadratic_loss(start))


@pytest.mark.parametrize("name", ["adabelief", "yogi", "radam"])
def test_minimises_rosenbrock(name):
    start = {"a": jnp.array([-1.0, 1.5]), "b": (jnp.array(0.5),)}
    # RAdam's first steps (rho_t <= 5) are plain momentum SGD: Rosenbrock's gradients need a small rate.
    lr = 1e-3 if name == "radam" else 0.02
    final = _minimise(getattr(gradtx, name)(learning_rate=lr), rosenbrock_loss, start, 300)
    assert float(rosenbrock_loss(final)) < 0.2 * float(rosenbrock_loss(start))


def test_lion_8bit_state_stays_close_to_float32():
    params = {"w": jnp.linspace(-2.0, 3.0, 4096).reshape(64, 64), "b": jnp.zeros(3)}
    tx8 = gradtx.lion(0.01, weight_decay=0.0, mu_dtype="int8")
    state8 = tx8.init(params)
    assert isinstance(state8[0].mu["w"], gradtx.QuantizedArray)
    # One step's momentum, decoded, matches the float32 one to 8-bit block-wise precision.
    g = jax.grad(quadratic_loss)(params)
    _, state8 = tx8.update(g, state8, params)
    tx32 = gradtx.lion(0.01, weight_decay=0.0)
    _, state32 = tx32.update(g, tx32.init(params), params)
    mu8, mu32 = gradtx.dequantize(state8[0].mu["w"]), state32[0].mu["w"]
    assert float(jnp.max(jnp.abs(mu8 - mu32))) <= 0.02 * float(jnp.max(jnp.abs(mu32)))
    # And training converges as well as in float32 (sign updates: final points differ, losses do not).
    full = _minimise(tx32, quadratic_loss, params, 500)
    small = _minimise(tx8, quadratic_loss, params, 500)
    start, lf, l8 = (float(quadratic_loss(p)) for p in (params, full, small))
    assert lf < 0.01 * start
    assert l8 < max(2 * lf, 1e-3 * start)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("name", list(OPTIMIZERS) + ["adabelief_eps0"])
def test_zero_gradient_is_finite(name, dtype):
    tx = gradtx.adabelief(eps=0.0, eps_root=0.0) if name == "adabelief_eps0" else getattr(gradtx, name)()
    params = {"w": jnp.ones((3, 2), dtype), "s": jnp.ones((), dtype)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(zeros, state, params)
        for u in jax.tree.leaves(updates):
            assert u.dtype == dtype
            assert bool(jnp.all(jnp.isfinite(u.astype(jnp.float32))))


def test_adabelief_float16_zero_gradient_fix_over_optax():
    # optax's eps = 1e-16 underflows to 0 in float16: 0/0 on a zero gradient. gradtx computes in float32.
    optax = pytest.importorskip("optax")
    params = jnp.ones(3, jnp.float16)
    zeros = jnp.zeros(3, jnp.float16)
    theirs, _ = optax.adabelief(1e-3).update(zeros, optax.adabelief(1e-3).init(params), params)
    ours, _ = gradtx.adabelief(1e-3).update(zeros, gradtx.adabelief(1e-3).init(params), params)
    assert not bool(jnp.all(jnp.isfinite(theirs)))
    assert bool(jnp.all(ours == 0))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_jit_traces_once_and_equals_eager(name):
    tx = getattr(gradtx, name)(**OPTIMIZERS[name])
    params, grads = jax_problem("float32")
    traces = 0

    def step(params, state, g):
        nonlocal traces
        traces += 1
        updates, state = tx.update(g, state, params)
        return gradtx.apply_updates(params, updates), state

    jitted = jax.jit(step)
    p_jit, s_jit = params, tx.init(params)
    p_eager, s_eager = params, tx.init(params)
    for g in grads[:20]:
        p_jit, s_jit = jitted(p_jit, s_jit, g)
    assert traces == 1
    if name not in ("lion", "yogi", "radam"):  # eager dispatch is slow: one per module and rule shape
        return
    for g in grads[:2]:
        p_eager, s_eager = step(p_eager, s_eager, g)
    assert max_rel_error(p_eager, run_transformation(tx, params, grads[:2])) < 1e-5


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_vmap_over_states(name):
    tx = getattr(gradtx, name)(**OPTIMIZERS[name])
    params = jnp.stack([jnp.linspace(-1.0, 1.0, 5), jnp.linspace(2.0, 0.0, 5)])
    grads = jnp.stack([jnp.linspace(0.5, -0.5, 5), jnp.linspace(-1.0, 2.0, 5)])

    def two_steps(p, g):
        state = tx.init(p)
        u, state = tx.update(g, state, p)
        u, state = tx.update(0.5 * g, state, p)
        return u

    batched = jax.vmap(two_steps)(params, grads)
    for i in range(2):
        np.testing.assert_allclose(batched[i], two_steps(params[i], grads[i]), rtol=1e-6)


@pytest.mark.parametrize("name", list(OPTIMIZERS) + BLOCKS)
def test_equal_arguments_give_equal_hashable_transforms(name):
    make = getattr(gradtx, name)
    assert make() == make()
    assert hash(make()) == hash(make())


@pytest.mark.parametrize(
    ("name", "hyperparams"),
    [
        ("signum", ["beta", "learning_rate"]),
        ("lion", ["b1", "b2", "learning_rate", "weight_decay"]),
        ("adabelief", ["b1", "b2", "eps", "eps_root", "learning_rate"]),
        ("yogi", ["b1", "b2", "eps", "eps_root", "learning_rate"]),
        ("radam", ["b1", "b2", "eps", "learning_rate", "threshold"]),
    ],
)
def test_hyperparams_in_state_and_settable(name, hyperparams):
    tx = getattr(gradtx, name)()
    state = tx.init(jnp.zeros(3))
    assert sorted(gradtx.get_hyperparams(state)) == hyperparams
    state = gradtx.set_hyperparam(state, hyperparams[0], 0.5)
    assert float(gradtx.get_hyperparam(state, hyperparams[0])) == 0.5
    scheduled = getattr(gradtx, name)(learning_rate=lambda t: 0.1 / (1 + t))
    s = scheduled.init(jnp.zeros(3))
    _, s = scheduled.update(jnp.ones(3), s, jnp.zeros(3))
    assert float(gradtx.get_hyperparam(s, "learning_rate")) == pytest.approx(0.05)


def test_radam_threshold_is_a_live_hyperparameter():
    # rho_1 = 1: the first step is plain momentum; with threshold lowered below rho it would rectify.
    tx = gradtx.scale_by_radam()
    state = tx.init(jnp.zeros(2))
    u, _ = tx.update(jnp.array([0.5, -2.0]), state)
    np.testing.assert_allclose(u, [0.5, -2.0])
    assert float(gradtx.get_hyperparam(state, "threshold")) == 5.0


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: gradtx.lion(b1=1.0), "b1"),
        (lambda: gradtx.lion(b2=-0.1), "b2"),
        (lambda: gradtx.lion(learning_rate=float("nan")), "learning_rate"),
        (lambda: gradtx.lion(weight_decay=-1.0), "weight_decay"),
        (lambda: gradtx.lion(mu_dtype="uint8"), "mu_dtype"),
        (lambda: gradtx.signum(beta=1.5), "beta"),
        (lambda: gradtx.sign_sgd(learning_rate=float("nan")), "learning_rate"),
        (lambda: gradtx.adabelief(eps=-1.0), "eps"),
        (lambda: gradtx.adabelief(eps_root=-1.0), "eps_root"),
        (lambda: gradtx.adabelief(nu_dtype="uint8"), "nu_dtype"),
        (lambda: gradtx.yogi(b2=1.0), "b2"),
        (lambda: gradtx.yogi(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: gradtx.radam(threshold=3.0), "threshold"),
        (lambda: gradtx.radam(b1=-0.5), "b1"),
        (lambda: gradtx.radam(mu_dtype="int8"), "mu_dtype"),
    ],
)
def test_bad_arguments_raise_naming_them(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()
