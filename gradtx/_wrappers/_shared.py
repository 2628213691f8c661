"""Pieces shared by the wrappers of this package: finding a wrapper's state, checks."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.validation import check_range


def find_state(state: Any, state_type: type | tuple[type, ...], helper: str) -> Any:
    """The one ``state_type`` instance inside ``state`` (any nesting of chains and wrappers).

    The search stops at the first match on each branch, so for a wrapper nested
    in another of its kind the outer one is found. Runs at trace time.
    """
    found = [
        leaf
        for leaf in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, state_type))
        if isinstance(leaf, state_type)
    ]
    names = " or ".join(t.__name__ for t in (state_type if isinstance(state_type, tuple) else (state_type,)))
    if not found:
        raise ValueError(
            f"{helper}: no {names} in this optimizer state; "
            f"was it made by an optimizer holding the matching wrapper?"
        )
    if len(found) > 1:
        raise ValueError(
            f"{helper}: the state holds {len(found)} states of type {names}; "
            "pass the sub-state of the one you want (e.g. state[i] of a chain)"
        )
    return found[0]


def require_params(params: Any, name: str) -> None:
    if params is None:
        raise ValueError(f"{name} needs the current parameters: call update(grads, state, params)")


def check_count(name: str, value: Any, low: int) -> None:
    """An integer hyperparameter (a period, a step number): ``>= low``, not a schedule."""
    if callable(value):
        raise TypeError(f"{name} must be an integer, not a schedule")
    check_range(name, value, low)
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Integral) or float(np.asarray(value)).is_integer()
    ):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def applied(params: Any, updates: Any) -> Any:
    """``params + updates`` rounded exactly as ``gradtx.apply_updates`` rounds it."""
    return jax.tree.map(lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype), params, updates)


def copy_tree(tree: Any, dtype_fn: Any = None) -> Any:
    """Fresh arrays equal to ``tree`` (never aliasing it, so donation stays legal)."""
    return jax.tree.map(
        lambda p: jnp.array(p, dtype=dtype_fn(jnp.asarray(p).dtype) if dtype_fn else None, copy=True), tree
    )
