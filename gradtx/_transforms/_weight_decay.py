"""Weight decay: adding ``weight_decay * params`` to the updates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.frozen import FrozenTree, freeze, thaw
from gradtx._core.hyperparams import HyperParam
from gradtx._core.numerics import Scalars, as_compute
from gradtx._core.validation import check_nonnegative, check_same_structure
from gradtx._transforms._scaling import StatelessWithHyperparams

Mask = Any  # a pytree of bools, or a function params -> pytree of bools


def resolve_mask(mask: Callable | FrozenTree | None, params: Any) -> Any:
    """The boolean mask tree for ``params`` (``None`` when unmasked)."""
    if mask is None:
        return None
    tree = mask(params) if callable(mask) else thaw(mask)
    check_same_structure(params, tree, "params", "mask", shapes=False)
    return tree


@dataclasses.dataclass(frozen=True)
class AddDecayedWeights(StatelessWithHyperparams):
    weight_decay: HyperParam
    mask: Callable | FrozenTree | None = None
    hyperparam_names = ("weight_decay",)

    def apply(self, updates, hyperparams, params):
        if params is None:
            raise ValueError("add_decayed_weights needs `params`: call update(updates, state, params)")
        check_same_structure(updates, params, "updates", "params")
        scalars = Scalars(wd=hyperparams["weight_decay"])

        def decay(u, p):
            out = as_compute(u) + scalars.for_leaf(u)["wd"] * as_compute(p)
            return out.astype(u.dtype)

        mask = resolve_mask(self.mask, params)
        if mask is None:
            return jax.tree.map(decay, updates, params)
        return jax.tree.map(lambda u, p, m: _select(m, decay(u, p), u), updates, params, mask)


def _select(flag: Any, on_true: jax.Array, on_false: jax.Array) -> jax.Array:
    if isinstance(flag, bool):
        return on_true if flag else on_false
    return jnp.where(flag, on_true, on_false)


@shared_docs
def add_decayed_weights(weight_decay: HyperParam = 0.0, mask: Mask | None = None) -> GradientTransformation:
    r"""Adds the L2 penalty gradient: :math:`u \leftarrow u + \lambda\,\theta`.

    Placed before an adaptive rescaling this is *coupled* L2 regularisation
    (torch's ``Adam(weight_decay=...)``); placed after it and before the
    learning rate it is *decoupled* weight decay (AdamW, Loshchilov & Hutter 2019).

    Args:
        weight_decay: the coefficient :math:`\lambda` >= 0.
        mask: {mask}

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.add_decayed_weights(0.1)
        >>> params = jnp.array([1.0, 2.0])
        >>> tx.update(jnp.zeros(2), tx.init(params), params)[0]
        Array([0.1, 0.2], dtype=float32)
    """
    check_nonnegative("weight_decay", weight_decay)
    # A mask function is kept as it is (it is hashable); only a tree of bools needs freezing.
    return AddDecayedWeights(weight_decay, mask if mask is None or callable(mask) else freeze(mask))
