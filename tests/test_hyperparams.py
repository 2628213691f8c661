"""Hyperparameters live in state: read, set, schedule, hash, never recompile."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.helpers import grad_stream, nested_params, to_jax


def _trace_counting_step(tx):
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    return step, traces


def test_schedule_and_manual_override_compile_once():
    schedule = lambda step: 0.1 * 0.9 ** step.astype(jnp.float32)  # noqa: E731
    tx = gradtx.sgd(schedule, momentum=0.9)
    params = to_jax(nested_params(0), jnp.float32)
    state = tx.init(params)
    step, traces = _trace_counting_step(tx)
    grads = to_jax(grad_stream(0, 1)[0], jnp.float32)
    seen = []
    for i in range(100):
        if i == 50:
            state = gradtx.set_hyperparam(state, "learning_rate", 0.5)
            state = gradtx.set_hyperparam(state, "momentum", 0.5)
        seen.append(float(gradtx.get_hyperparam(state, "learning_rate")))
        params, state = step(params, state, grads)
    assert len(traces) == 1
    np.testing.assert_allclose(seen[:50], [0.1 * 0.9**k for k in range(50)], rtol=1e-5)
    assert seen[50] == pytest.approx(0.5)  # the override applies to the next step...
    assert seen[51] == pytest.approx(0.1 * 0.9**51, rel=1e-5)  # ...then the schedule resumes
    assert float(gradtx.get_hyperparam(state, "momentum")) == pytest.approx(0.5)  # constants persist


def test_set_hyperparam_inside_jit_with_traced_value():
    tx = gradtx.adam(1e-3)
    params = jnp.ones(4)

    @jax.jit
    def step(state, lr):
        state = gradtx.set_hyperparam(state, "learning_rate", lr)
        return tx.update(jnp.ones(4), state, params)

    for lr in (1e-3, 1e-2, 1e-1):
        updates, _ = step(tx.init(params), lr)
        np.testing.assert_allclose(updates, -lr * np.ones(4), rtol=1e-5)
    assert step._cache_size() == 1


def test_equal_optimizers_are_equal_and_static_jit_compiles_once():
    assert gradtx.adam(1e-3, b1=0.8) == gradtx.adam(1e-3, b1=0.8)
    assert hash(gradtx.adamw(1e-3, mask={"a": True})) == hash(gradtx.adamw(1e-3, mask={"a": True}))
    assert gradtx.adam(1e-3) != gradtx.adam(2e-3)
    traces = []

    def step(tx, params):
        traces.append(1)
        return tx.update(params, tx.init(params), params)[0]

    jitted = jax.jit(step, static_argnums=0)
    for _ in range(3):
        jitted(gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.adam(1e-3)), jnp.ones(3))
    assert len(traces) == 1


def test_optax_retraces_where_gradtx_does_not():
    """The defect gradtx fixes: optax builds closures, so equal optimizers are unequal."""
    optax = pytest.importorskip("optax")
    assert optax.adam(1e-3) != optax.adam(1e-3)


def test_bfloat16_params_keep_float32_hyperparams():
    tx = gradtx.adam(1e-2, b2=0.999)
    params = jnp.ones(8, jnp.bfloat16)
    state = tx.init(params)
    assert gradtx.get_hyperparam(state, "b2").dtype == jnp.float32
    assert float(gradtx.get_hyperparam(state, "b2")) == pytest.approx(0.999, rel=1e-7)
    for i in range(20):
        updates, state = tx.update(jnp.full(8, 0.1 * (-1) ** i, jnp.bfloat16), state, params)
        params = gradtx.apply_updates(params, updates)
    assert params.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(params)))


def _adam_1000_steps(tx, bake_constants=False):
    rng = np.random.default_rng(0)
    params = jnp.asarray(rng.standard_normal(64), jnp.float32)
    grads = jnp.asarray(rng.standard_normal((1000, 64)), jnp.float32)
    constants = {k: np.float32(v) for k, v in gradtx.get_hyperparams(tx.init(params)).items()}

    def body(carry, g):
        p, s = carry
        if bake_constants:  # compile-time constants instead of values read from the state
            for name, value in constants.items():
                s = gradtx.set_hyperparam(s, name, value)
        u, s = tx.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), None

    return np.asarray(jax.lax.scan(body, (params, tx.init(params)), grads)[0][0])


def test_hyperparams_in_state_equal_constant_hyperparams_over_1000_steps():
    """Reading hyperparameters from the state changes no bit of the result."""
    tx = gradtx.adam(1e-3)
    np.testing.assert_array_equal(_adam_1000_steps(tx), _adam_1000_steps(tx, bake_constants=True))


def test_hyperparams_in_state_match_optax_constants_over_1000_steps():
    """optax computes 1 - b2 from the float64 literal; gradtx from float32 b2 (see docs)."""
    optax = pytest.importorskip("optax")
    ours, theirs = _adam_1000_steps(gradtx.adam(1e-3)), _adam_1000_steps(optax.adam(1e-3))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=0)


def test_vmap_over_a_batch_of_learning_rates():
    tx = gradtx.sgd(0.1)
    params = jnp.ones(3)
    lrs = jnp.array([0.1, 0.2, 0.3])

    def one(lr):
        state = gradtx.set_hyperparam(tx.init(params), "learning_rate", lr)
        return tx.update(jnp.ones(3), state, params)[0]

    np.testing.assert_allclose(jax.vmap(one)(lrs), -lrs[:, None] * np.ones((3, 3)), rtol=1e-6)


def test_get_hyperparams_names_and_errors():
    tx = gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.clip_by_block_norm(2.0), gradtx.adam(1e-3))
    state = tx.init(jnp.ones(2))
    names = gradtx.get_hyperparams(state)
    assert {"b1", "b2", "eps", "learning_rate"} <= set(names)
    ambiguous = [k for k in names if "max_norm" in k]
    assert len(ambiguous) == 2 and all(k.startswith("[") for k in ambiguous)
    with pytest.raises(KeyError, match="ambiguous"):
        gradtx.get_hyperparam(state, "max_norm")
    assert float(gradtx.get_hyperparam(state, ambiguous[1])) == 2.0
    with pytest.raises(KeyError, match="no hyperparameter 'momentum'"):
        gradtx.get_hyperparam(state, "momentum")
    new = gradtx.set_hyperparam(state, ambiguous[0], 3.0)
    assert float(gradtx.get_hyperparam(new, ambiguous[0])) == 3.0
    assert jax.tree.structure(new) == jax.tree.structure(state)


def test_set_hyperparam_keeps_dtype_and_rejects_nan():
    state = gradtx.sgd(0.1).init(jnp.ones(2))
    new = gradtx.set_hyperparam(state, "learning_rate", np.float64(0.3))
    assert gradtx.get_hyperparam(new, "learning_rate").dtype == jnp.float32
    with pytest.raises(ValueError, match="NaN"):
        gradtx.set_hyperparam(state, "learning_rate", float("nan"))


def test_float64_hyperparams_under_x64(x64):
    state = gradtx.adam(1e-3).init(jnp.ones(2, jnp.float64))
    assert gradtx.get_hyperparam(state, "b2").dtype == jnp.float64


# Numeric arguments that only set an initial buffer value, not a per-step hyperparameter.
INIT_ONLY = {"initial_accumulator_value", "initial_scale"}

OPTIMIZER_NAMES = [
    "sgd",
    "noisy_sgd",
    "aggmo",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "amsgrad",
    "qhadam",
]


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_every_numeric_hyperparameter_is_in_state_and_settable(name):
    """Built with every term switched on, each numeric argument is readable and settable."""
    import inspect

    factory = getattr(gradtx, name)
    kwargs = {"learning_rate": 0.01}
    for pname in ("momentum", "weight_decay", "dampening"):
        if pname in inspect.signature(factory).parameters:
            kwargs[pname] = 0.5 if pname != "weight_decay" else 0.01
    if name == "sgd":
        kwargs["dampening"] = 0.1  # keeps nesterov off, so dampening is legal
    tx = factory(**kwargs)
    state = tx.init(jnp.ones(3))
    found = gradtx.get_hyperparams(state)
    numeric = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if isinstance(p.default, (int, float, tuple))
        and not isinstance(p.default, bool)
        and p.name not in INIT_ONLY
        and p.name != "key"
    ]
    assert numeric, "the check would be vacuous"
    for pname in numeric:
        assert pname in found, f"{name}: hyperparameter {pname!r} is not in the state ({sorted(found)})"
        new = gradtx.set_hyperparam(state, pname, np.asarray(found[pname]) * 0 + 0.25)
        assert np.all(np.asarray(gradtx.get_hyperparam(new, pname)) == 0.25)
