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


def hp(value: jax.Array, like: jax.Array) -> jax.Array:
    """A scalar hyperparameter cast to the real compute dtype of array ``like``."""
    return jnp.asarray(value).astype(real_dtype(compute_dtype(jnp.result_type(like))))


def zero_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, staying at the int32 maximum instead of overflowing."""
    return jnp.where(count < INT32_MAX, count + 1, jnp.asarray(INT32_MAX, count.dtype))


def zeros_like(tree: Any, dtype: Any | None = None) -> Any:
    """Fresh zero buffers shaped like ``tree`` (never aliasing it, so donation works).

    Accepts concrete arrays and ``jax.ShapeDtypeStruct`` leaves alike.
    """
    return jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), dtype or p.dtype), tree)


def full_like(tree: Any, value: Any, dtype: Any | None = None) -> Any:
    return jax.tree.map(lambda p: jnp.full(jnp.shape(p), value, dtype or p.dtype), tree)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2``, real for complex ``x``."""
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


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
