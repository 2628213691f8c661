"""Numerical conventions shared by every transformation.

- Arithmetic runs in at least float32 (``compute_dtype``): a float16 or
  bfloat16 gradient is promoted before squaring or dividing, so an epsilon such
  as 1e-8 never underflows to zero and a zero gradient never yields 0/0.
- Results are cast back to the dtype of the incoming updates (or of the state
  buffer they are stored in).
- Step counters are int32 and saturate at the int32 maximum instead of wrapping.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = np.iinfo(np.int32).max


def compute_dtype(dtype: Any) -> jnp.dtype:
    """The dtype arithmetic on a leaf of ``dtype`` runs in: at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def real_dtype(dtype: Any) -> jnp.dtype:
    """float32 for complex64, float64 for complex128, else the dtype itself."""
    return jnp.finfo(dtype).dtype


def as_compute(x: jax.Array) -> jax.Array:
    """``x`` promoted to its compute dtype."""
    x = jnp.asarray(x)
    return x.astype(compute_dtype(x.dtype))


def zero_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, staying at the int32 maximum instead of overflowing."""
    return jnp.where(count < INT32_MAX, count + 1, jnp.asarray(INT32_MAX, count.dtype))


def zeros_like(tree: Any, dtype: Any | None = None) -> Any:
    """Fresh zero buffers shaped like ``tree`` (never aliasing it, so donation works).

    Accepts concrete arrays and ``jax.ShapeDtypeStruct`` leaves alike. A
    buffer is placed like its leaf: sharded parameters get state sharded the
    same way (eagerly, and under ``jit`` with explicit mesh axes).
    """
    return jax.tree.map(lambda p: jnp.zeros_like(p, buffer_dtype(p.dtype, dtype)), tree)


def full_like(tree: Any, value: Any, dtype: Any | None = None) -> Any:
    """Like :func:`zeros_like`, filled with ``value``."""
    return jax.tree.map(lambda p: jnp.full_like(p, value, buffer_dtype(p.dtype, dtype)), tree)


def buffer_dtype(leaf_dtype: Any, dtype: Any | None) -> Any:
    """The dtype of a state buffer for a leaf of ``leaf_dtype`` asked to be ``dtype``.

    ``None`` keeps the leaf's dtype. For a complex leaf a real ``dtype`` (say
    ``mu_dtype=jnp.bfloat16``) gives the precision of the parts, rounded up to
    the smallest complex dtype that holds it (complex64), since a real buffer
    would drop the imaginary part.
    """
    if dtype is None:
        return leaf_dtype
    if jnp.issubdtype(leaf_dtype, jnp.complexfloating) and not jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.result_type(dtype, jnp.complex64)
    return dtype


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2``, real for complex ``x``."""
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


class Scalars:
    """Scalar coefficients computed once per update, cast once per leaf dtype.

    Computing ``1 - b1**t`` and friends once (rather than inside every leaf's
    kernel) keeps the traced program small, which is what compile time of a
    many-leaf step is made of.
    """

    def __init__(self, **values: jax.Array) -> None:
        self._values = {k: jnp.asarray(v) for k, v in values.items()}
        self._by_dtype: dict[Any, dict[str, jax.Array]] = {}

    def for_leaf(self, leaf: jax.Array) -> dict[str, jax.Array]:
        """The scalars in the real compute dtype of ``leaf``."""
        dtype = jnp.dtype(real_dtype(compute_dtype(jnp.result_type(leaf))))
        if dtype not in self._by_dtype:
            self._by_dtype[dtype] = {k: v.astype(dtype) for k, v in self._values.items()}
        return self._by_dtype[dtype]


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den``, and 0 where ``den`` is 0 (eps = 0 with a zero gradient is not NaN)."""
    return jnp.where(den == 0, jnp.zeros((), num.dtype), num / den)


def bias_correction(decay: jax.Array, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` in the dtype of ``decay``."""
    return 1 - decay ** count.astype(decay.dtype)


def map_unzip(fn: Any, n: int, tree: Any, *rest: Any) -> tuple:
    """Maps ``fn`` returning an ``n``-tuple over leaves; returns ``n`` trees.

    ``rest`` must have ``tree``'s structure. Unlike ``jax.tree.map`` followed by
    picking tuple entries, this is safe when the trees themselves contain tuples.
    """
    leaves, treedef = jax.tree.flatten(tree)
    others = [treedef.flatten_up_to(r) for r in rest]
    results = [fn(*args) for args in zip(leaves, *others)]
    columns = list(zip(*results)) if results else [()] * n
    return tuple(treedef.unflatten(list(col)) for col in columns)
