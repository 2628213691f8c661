"""Argument checks that fail early with a message naming the argument or tree path."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _concrete(value: Any) -> float | None:
    """The value as a Python float, or None if it is traced or a schedule."""
    if callable(value):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        arr = np.asarray(value)
    except (TypeError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    if arr.shape != () or not jnp.issubdtype(arr.dtype, jnp.number):
        return None
    return float(arr)


def check_numeric(name: str, value: Any) -> None:
    """Raises TypeError unless ``value`` is a number, scalar array or callable schedule."""
    if callable(value) or isinstance(value, (numbers.Real, jax.core.Tracer)):
        return
    shape = np.shape(value)
    if shape != ():
        raise TypeError(f"{name} must be a scalar or a schedule, got shape {shape}")
    dtype = np.asarray(value).dtype  # jnp.issubdtype also knows bfloat16
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_):
        raise TypeError(f"{name} must be a real number or a schedule, got {value!r}")


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raises ValueError if a concrete ``value`` lies outside [low, high] (or open ends).

    Traced values and schedules are not checked: their values are unknown here.
    """
    check_numeric(name, value)
    v = _concrete(value)
    if v is None:
        return
    if np.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name} must be in {interval}, got {v}")


def check_nonnegative(name: str, value: Any) -> None:
    check_range(name, value, 0.0)


def check_beta(name: str, value: Any) -> None:
    """A decay rate: in [0, 1)."""
    check_range(name, value, 0.0, 1.0, high_open=True)


def _paths(tree: Any) -> dict[str, Any]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def check_same_structure(a: Any, b: Any, a_name: str, b_name: str, *, shapes: bool = True) -> None:
    """Raises ValueError naming the mismatched paths if ``a`` and ``b`` differ in structure.

    Runs at trace time only: it costs nothing inside a compiled step.
    """
    ta, tb = jax.tree.structure(a), jax.tree.structure(b)
    if ta != tb:
        pa, pb = _paths(a), _paths(b)
        only_a = sorted(set(pa) - set(pb))
        only_b = sorted(set(pb) - set(pa))
        detail = ""
        if only_a or only_b:
            detail = (
                f"\n  paths only in {a_name}: {only_a or 'none'}"
                f"\n  paths only in {b_name}: {only_b or 'none'}"
            )
        raise ValueError(
            f"{a_name} and {b_name} have different tree structures.{detail}"
            f"\n  {a_name}: {ta}\n  {b_name}: {tb}"
        )
    if not shapes:
        return
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        sx, sy = np.shape(x), np.shape(y)
        if sx != sy:
            raise ValueError(
                f"leaf {jax.tree_util.keystr(path)} has shape {sx} in {a_name} but {sy} in {b_name}"
            )


def reject_complex(tree: Any, name: str, why: str) -> None:
    """Raises TypeError naming the first complex leaf of ``tree``: ``name`` has no complex rule.

    Runs on arrays and on ``jax.ShapeDtypeStruct`` leaves alike (abstract init).
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            dtype = np.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{name}: complex parameters are not supported ({why}); "
                f"params{jax.tree_util.keystr(path)} is {np.dtype(dtype).name}"
            )
