"""Every optimizer under jit, vmap and grad (meta-gradients against finite differences)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.helpers import grad_stream, max_rel_error, nested_params, run_gradtx, to_jax

OPTIMIZERS = {
    "sgd": lambda lr: gradtx.sgd(lr),
    "sgd_nesterov": lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": lambda lr: gradtx.adagrad(lr),
    "rmsprop_centered": lambda lr: gradtx.rmsprop(lr, centered=True, momentum=0.5),
    "adadelta": lambda lr: gradtx.adadelta(lr),
    "adam": lambda lr: gradtx.adam(lr),
    "adamw_amsgrad": lambda lr: gradtx.adamw(lr, amsgrad=True),
    "adamax": lambda lr: gradtx.adamax(lr),
    "nadam": lambda lr: gradtx.nadam(lr),
    "qhadam": lambda lr: gradtx.qhadam(lr),
    "aggmo": lambda lr: gradtx.aggmo(lr),
    "noisy_sgd": lambda lr: gradtx.noisy_sgd(lr),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jit_equals_eager(name):
    tx = OPTIMIZERS[name](0.01)
    params = to_jax(nested_params(0), jnp.float32)
    grads = [to_jax(g, jnp.float32) for g in grad_stream(0, 5)]
    eager = run_gradtx(tx, params, grads, jit=False)
    jitted = run_gradtx(tx, params, grads, jit=True)
    assert max_rel_error(jitted, eager) < 1e-6


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_vmap_over_independent_states_equals_loop(name):
    tx = OPTIMIZERS[name](0.01)
    batch = [to_jax(nested_params(seed), jnp.float32) for seed in range(3)]
    grads = [to_jax(g, jnp.float32) for g in grad_stream(1, 4)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)

    def run(params):
        state = tx.init(params)
        for g in grads:
            updates, state = tx.update(g, state, params)
            params = gradtx.apply_updates(params, updates)
        return params

    vmapped = jax.vmap(run)(stacked)
    for i, params in enumerate(batch):
        assert max_rel_error(jax.tree.map(lambda x, i=i: x[i], vmapped), run(params)) < 1e-6


META = ["sgd", "sgd_nesterov", "adagrad", "rmsprop_centered", "adam", "adamw_amsgrad", "nadam", "qhadam"]


@pytest.mark.parametrize("name", META)
def test_meta_gradient_matches_finite_differences(name, x64):
    """d(loss after 3 steps)/d(learning rate), through update, in float64."""
    x0 = {"a": jnp.array([1.5, -0.5]), "b": (jnp.array(0.3),)}

    def loss(x):
        return sum(jnp.sum((leaf - 0.2) ** 2 * (1 + i)) for i, leaf in enumerate(jax.tree.leaves(x)))

    def final_loss(lr):
        tx = OPTIMIZERS[name](0.0)
        params = x0
        state = gradtx.set_hyperparam(tx.init(params), "learning_rate", lr)
        for _ in range(3):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = gradtx.apply_updates(params, updates)
        return loss(params)

    lr, h = 0.05, 1e-6
    analytic = jax.grad(final_loss)(lr)
    numeric = (final_loss(lr + h) - final_loss(lr - h)) / (2 * h)
    assert abs(float(analytic)) > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6)


def test_meta_gradient_through_hyperparameter_given_at_construction(x64):
    """Hyperparameters may themselves be traced: build the optimizer inside grad."""

    def final(b1):
        tx = gradtx.adam(0.1, b1=b1)
        p = jnp.array([1.0, -2.0])
        s = tx.init(p)
        for _ in range(3):
            u, s = tx.update(2 * p, s, p)
            p = gradtx.apply_updates(p, u)
        return jnp.sum(p**2)

    h = 1e-6
    numeric = (final(0.9 + h) - final(0.9 - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.grad(final)(0.9)), float(numeric), rtol=1e-6)
