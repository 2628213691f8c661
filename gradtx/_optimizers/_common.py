"""Pieces shared by the optimizer definitions."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, chain, stateless
from gradtx._core.hyperparams import HyperParam
from gradtx._transforms._weight_decay import add_decayed_weights


def is_on(value: HyperParam) -> bool:
    """Whether a term controlled by ``value`` needs state: a schedule or a nonzero number.

    A term that is exactly zero at construction is left out of the chain (no
    state, no cost, no need for ``params``); pass a nonzero value or a
    schedule to be able to change it while training.
    """
    return callable(value) or not _is_zero(value)


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):  # a traced value: keep the term
        return False


def coupled_l2(weight_decay: HyperParam, *rest: Any) -> GradientTransformation:
    """``chain(add_decayed_weights(weight_decay), *rest)``, the first dropped if zero."""
    head = (add_decayed_weights(weight_decay),) if is_on(weight_decay) else ()
    return chain(*head, *rest)


def _negate_tree(updates: Any, params: Any) -> Any:
    return jax.tree.map(jnp.negative, updates)


def negate() -> GradientTransformation:
    """Flips the sign of the updates (the last step of optimizers whose rate is not a plain factor)."""
    return stateless(_negate_tree)
