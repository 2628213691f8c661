"""Annealed Gaussian gradient noise."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, safe_increment, zero_count
from gradtx._core.validation import check_nonnegative, reject_complex


class AddNoiseState(NamedTuple):
    count: jax.Array
    rng_key: jax.Array  # raw uint32 key data, so the state serialises like any array
    hyperparams: dict[str, jax.Array]


def key_to_seed_data(key: Any) -> int | tuple[int, ...]:
    """An int seed stays; a PRNG key becomes a hashable tuple of its raw data."""
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    data = np.asarray(key)
    if data.dtype != np.uint32:
        raise TypeError(f"key must be an int seed or a jax PRNG key, got {key!r}")
    return tuple(int(x) for x in data.ravel())


def seed_data_to_raw_key(seed: int | tuple[int, ...]) -> jax.Array:
    if isinstance(seed, int):
        return jax.random.key_data(jax.random.key(seed))
    return jnp.asarray(np.array(seed, dtype=np.uint32))


@dataclasses.dataclass(frozen=True)
class AddNoise(WithHyperparams, GradientTransformation):
    eta: HyperParam
    gamma: HyperParam
    seed: int | tuple[int, ...]
    hyperparam_names = ("eta", "gamma")

    def init(self, params):
        reject_complex(params, "add_noise", "the noise is drawn real-valued")
        return AddNoiseState(zero_count(), seed_data_to_raw_key(self.seed), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        h = state.hyperparams
        count = safe_increment(state.count)
        leaves, treedef = jax.tree.flatten(updates)
        key = jax.random.wrap_key_data(state.rng_key)
        key, *leaf_keys = jax.random.split(key, len(leaves) + 1)
        variance = h["eta"] / count.astype(h["eta"].dtype) ** h["gamma"]
        scalars = Scalars(std=jnp.sqrt(variance))

        def noisy(g, k):
            gc = as_compute(g)
            noise = jax.random.normal(k, jnp.shape(g), gc.dtype)
            return (gc + scalars.for_leaf(g)["std"] * noise).astype(g.dtype)

        out = treedef.unflatten([noisy(g, k) for g, k in zip(leaves, leaf_keys)])
        new_state = AddNoiseState(count, jax.random.key_data(key), self.next_hyperparams(h, count))
        return out, new_state


def add_noise(eta: HyperParam = 0.01, gamma: HyperParam = 0.55, key: Any = 0) -> GradientTransformation:
    r"""Adds annealed Gaussian noise to the updates.

    .. math::
        u_t = g_t + \mathcal{N}(0, \sigma_t^2), \qquad \sigma_t^2 = \frac{\eta}{(1+t)^\gamma}

    with :math:`t = 0` at the first update (so the first variance is :math:`\eta`),
    the convention of optax's ``add_noise``. Each leaf draws independent noise.

    Args:
        eta: base variance :math:`\eta` >= 0.
        gamma: decay exponent :math:`\gamma` >= 0 (0.55 in the paper).
        key: an int seed or a ``jax.random`` key; the key then lives in the state.

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very
        Deep Networks", 2015.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.add_noise(eta=0.0, key=0)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([1., 1.], dtype=float32)
    """
    check_nonnegative("eta", eta)
    check_nonnegative("gamma", gamma)
    return AddNoise(eta, gamma, key_to_seed_data(key))
