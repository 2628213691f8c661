"""Pytree arithmetic used by transformations, exposed for users writing their own.

Every function accepts arbitrary pytrees (dicts, lists, tuples, NamedTuples,
``None`` leaves) and works under ``jit``, ``vmap`` and ``grad``.

Example:
    >>> import jax.numpy as jnp
    >>> from gradtx import tree
    >>> t = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
    >>> float(tree.norm(t))
    5.0
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.numerics import as_compute, real_dtype
from gradtx._transforms._clipping import global_norm

PyTree = Any


def add(a: PyTree, b: PyTree) -> PyTree:
    """Leaf-wise ``a + b``."""
    return jax.tree.map(jnp.add, a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leaf-wise ``a - b``."""
    return jax.tree.map(jnp.subtract, a, b)


def mul(a: PyTree, b: PyTree) -> PyTree:
    """Leaf-wise ``a * b``."""
    return jax.tree.map(jnp.multiply, a, b)


def scale(factor: Any, tree: PyTree) -> PyTree:
    """Every leaf times the scalar ``factor``, kept in the leaf's dtype."""
    return jax.tree.map(lambda x: (as_compute(x) * factor).astype(x.dtype), tree)


def add_scaled(a: PyTree, factor: Any, b: PyTree) -> PyTree:
    """``a + factor * b`` leaf-wise, kept in the dtypes of ``a``."""
    return jax.tree.map(lambda x, y: (as_compute(x) + factor * as_compute(y)).astype(x.dtype), a, b)


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    """The inner product of two trees, summed over all leaves (conjugating ``a``)."""
    # Not jnp.vdot: a dot over sharded axes is a ShardingTypeError under explicit mesh axes; a sum is not.
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    parts = [jnp.sum(jnp.conj(as_compute(x)) * as_compute(y)) for x, y in pairs]
    return builtins.sum(parts, jnp.zeros([], jnp.float32))


def sum(tree: PyTree) -> jax.Array:  # noqa: A001 - mirrors jnp.sum
    """The sum of all elements of all leaves."""
    return jax.tree.reduce(lambda acc, x: acc + jnp.sum(as_compute(x)), tree, jnp.zeros([], jnp.float32))


def norm(tree: PyTree, ord: int | float = 2) -> jax.Array:  # noqa: A002
    """The global norm of all leaves together: ``ord`` 1, 2 or ``inf``.

    Accumulated in at least float32, so a float16 tree does not overflow.
    """
    leaves = jax.tree.leaves(tree)
    if ord == 2:
        return global_norm(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    mags = [jnp.abs(as_compute(x)) for x in leaves]
    if ord == 1:
        return jax.tree.reduce(jnp.add, [jnp.sum(m).astype(real_dtype(m.dtype)) for m in mags])
    if ord == jnp.inf:
        return jax.tree.reduce(jnp.maximum, [jnp.max(m, initial=0) for m in mags])
    raise ValueError(f"norm: ord must be 1, 2 or inf, got {ord!r}")


def sum_of_squares(tree: PyTree) -> jax.Array:
    """``norm(tree) ** 2`` without the square root."""
    return global_norm(tree) ** 2


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Fresh zero arrays shaped like ``tree`` (``ShapeDtypeStruct`` leaves accepted)."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype or x.dtype), tree)


def ones_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Fresh one-filled arrays shaped like ``tree``."""
    return jax.tree.map(lambda x: jnp.ones(jnp.shape(x), dtype or x.dtype), tree)


def full_like(tree: PyTree, value: Any, dtype: Any = None) -> PyTree:
    """Fresh arrays shaped like ``tree`` filled with ``value``."""
    return jax.tree.map(lambda x: jnp.full_like(x, value, dtype or x.dtype), tree)


def cast(tree: PyTree, dtype: Any) -> PyTree:
    """Every leaf cast to ``dtype`` (``None`` leaves stay ``None``; ``dtype=None`` is a no-op)."""
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)


def where(condition: Any, on_true: PyTree, on_false: PyTree) -> PyTree:
    """Leaf-wise ``jnp.where`` with a scalar (or broadcastable) ``condition``."""
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), on_true, on_false)


def all_finite(tree: PyTree) -> jax.Array:
    """Whether every element of every leaf is finite (``True`` for an empty tree)."""
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def size(tree: PyTree) -> int:
    """Total number of elements."""
    return builtins.sum(int(jnp.size(x)) for x in jax.tree.leaves(tree))
