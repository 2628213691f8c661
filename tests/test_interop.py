"""gradtx transforms inside optax chains, optax transforms inside gradtx chains, and Flax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.helpers import nested_params, to_jax

optax = pytest.importorskip("optax")


def _run(tx, params, steps=10, extra=None):
    state = tx.init(params)
    start = params
    for i in range(steps):
        # A fixed gradient stream: differences must not be amplified by the dynamics.
        grads = jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)), start)
        updates, state = tx.update(grads, state, params, **(extra or {}))
        params = gradtx.apply_updates(params, updates)
    return params


def _assert_close(a, b):
    # Absolute: betas stored in float32 state make (1 - b2) differ from optax's
    # float64-then-rounded constant by ~1e-5 relative; parameters near zero
    # would magnify that in a relative measure.
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def test_gradtx_inside_optax_chain():
    params = to_jax(nested_params(0), jnp.float32)
    mixed = optax.chain(optax.clip_by_global_norm(1.0), gradtx.scale_by_adam(), optax.scale(-0.1))
    pure = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), optax.scale(-0.1))
    _assert_close(_run(mixed, params), _run(pure, params))


def test_optax_inside_gradtx_chain():
    params = to_jax(nested_params(1), jnp.float32)
    mixed = gradtx.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), gradtx.scale(-0.1))
    pure = gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.scale_by_adam(), gradtx.scale(-0.1))
    _assert_close(_run(mixed, params), _run(pure, params))


def test_optax_transform_without_extra_args_in_gradtx_chain():
    """Extra args reach gradtx transforms but are not forced on optax ones that lack **kwargs."""
    params = jnp.ones(3)
    plain = optax.GradientTransformation(lambda p: optax.EmptyState(), lambda u, s, p=None: (u, s))
    tx = gradtx.chain(plain, gradtx.sgd(0.1))
    out = _run(tx, params, steps=2, extra={"value": jnp.array(1.0)})
    assert np.all(np.isfinite(np.asarray(out)))


def test_flax_linen_train_state():
    flax = pytest.importorskip("flax")
    from flax.training import train_state

    model = flax.linen.Dense(3)
    params = model.init(jax.random.key(0), jnp.ones((1, 4)))
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=gradtx.adamw(1e-2))

    @jax.jit
    def step(state, x):
        loss = lambda p: jnp.mean(state.apply_fn(p, x) ** 2)  # noqa: E731
        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    x = jax.random.normal(jax.random.key(1), (8, 4))
    before = float(jnp.mean(model.apply(state.params, x) ** 2))
    state = step(step(state, x), x)
    # TrainState.create starts from a weakly typed Python int step: one retrace, then none.
    compiled = step._cache_size()
    for _ in range(18):
        state = step(state, x)
    after = float(jnp.mean(model.apply(state.params, x) ** 2))
    assert after < 0.5 * before
    assert int(state.step) == 20
    assert step._cache_size() == compiled


def test_flax_nnx_optimizer():
    nnx = pytest.importorskip("flax.nnx")

    model = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, gradtx.adam(1e-2), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(1), (8, 4))

    @nnx.jit
    def step(model, opt, x):
        loss_fn = lambda m: jnp.mean(m(x) ** 2)  # noqa: E731
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    first = float(step(model, opt, x))
    for _ in range(20):
        last = float(step(model, opt, x))
    assert last < 0.5 * first


def test_gradtx_transform_unpacks_like_optax_pair():
    init, update = gradtx.sgd(0.1)
    state = init(jnp.ones(2))
    updates, _ = update(jnp.ones(2), state)
    np.testing.assert_allclose(updates, -0.1 * np.ones(2), rtol=1e-6)
