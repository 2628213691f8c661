"""Clipping: element-wise, by global norm, and by per-leaf (block) norm."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam
from gradtx._core.numerics import Scalars, abs_sq, as_compute, real_dtype
from gradtx._core.validation import check_nonnegative
from gradtx._transforms._scaling import StatelessWithHyperparams, scale_tree


def global_norm(tree: Any) -> jax.Array:
    """The L2 norm of all leaves together, accumulated in at least float32."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    sq = [jnp.sum(abs_sq(as_compute(x))).astype(real_dtype(as_compute(x).dtype)) for x in leaves]
    dtype = jnp.result_type(*sq)
    return jnp.sqrt(sum(s.astype(dtype) for s in sq))


def clip_factor(norm: jax.Array, max_norm: jax.Array) -> jax.Array:
    """``min(1, max_norm / norm)``, computed once per tree; 1 (not 0/0) for a zero norm."""
    m = max_norm.astype(norm.dtype)
    trigger = norm > m
    return jnp.where(trigger, m / jnp.where(trigger, norm, jnp.ones_like(norm)), jnp.ones_like(norm))


@dataclasses.dataclass(frozen=True)
class Clip(StatelessWithHyperparams):
    max_delta: HyperParam
    hyperparam_names = ("max_delta",)

    def apply(self, updates, hyperparams, params):
        scalars = Scalars(max_delta=hyperparams["max_delta"])

        def clip_leaf(u):
            if jnp.iscomplexobj(u):
                raise TypeError("clip: complex updates are not supported; use clip_by_block_norm")
            d = scalars.for_leaf(u)["max_delta"]
            return jnp.clip(as_compute(u), -d, d).astype(u.dtype)

        return jax.tree.map(clip_leaf, updates)


def clip(max_delta: HyperParam) -> GradientTransformation:
    r"""Clips every element to :math:`[-\delta, \delta]`.

    Args:
        max_delta: :math:`\delta` >= 0.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.clip(1.0)
        >>> tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(None))[0]
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    check_nonnegative("max_delta", max_delta)
    return Clip(max_delta)


@dataclasses.dataclass(frozen=True)
class ClipByNorm(StatelessWithHyperparams):
    max_norm: HyperParam
    hyperparam_names = ("max_norm",)

    def apply(self, updates, hyperparams, params):
        return scale_tree(updates, clip_factor(global_norm(updates), hyperparams["max_norm"]))


def clip_by_norm(max_norm: HyperParam) -> GradientTransformation:
    r"""Rescales all updates together so that their global L2 norm is at most ``max_norm``.

    .. math::
        u \leftarrow u \cdot \min\!\left(1, \frac{c}{\lVert u \rVert_2}\right),
        \qquad \lVert u \rVert_2 = \sqrt{\textstyle\sum_{\text{leaves}} \sum u^2}

    Equals ``optax.clip_by_global_norm``, except that ``max_norm = 0`` with a
    zero gradient gives zeros where optax gives NaN.

    Args:
        max_norm: :math:`c` >= 0.

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
        neural networks", ICML 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.clip_by_norm(1.0)
        >>> tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))[0]
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    check_nonnegative("max_norm", max_norm)
    return ClipByNorm(max_norm)


@dataclasses.dataclass(frozen=True)
class ClipByBlockNorm(StatelessWithHyperparams):
    max_norm: HyperParam
    hyperparam_names = ("max_norm",)

    def apply(self, updates, hyperparams, params):
        return jax.tree.map(
            lambda u: scale_tree(u, clip_factor(global_norm(u), hyperparams["max_norm"])), updates
        )


def clip_by_block_norm(max_norm: HyperParam) -> GradientTransformation:
    r"""Rescales each leaf separately so that its L2 norm is at most ``max_norm``.

    .. math::
        u_\ell \leftarrow u_\ell \cdot \min\!\left(1, \frac{c}{\lVert u_\ell \rVert_2}\right)

    Args:
        max_norm: :math:`c` >= 0.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.clip_by_block_norm(1.0)
        >>> tx.update({"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.5])}, tx.init(None))[0]
        {'a': Array([0.6, 0.8], dtype=float32), 'b': Array([0.5], dtype=float32)}
    """
    check_nonnegative("max_norm", max_norm)
    return ClipByBlockNorm(max_norm)
