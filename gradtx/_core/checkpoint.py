"""Optimizer state as a flat ``{path: array}`` dict, for any checkpointing library.

The keys are jax key paths (``jax.tree_util.keystr``), e.g.
``"[0].mu['dense']['w']"``: readable, unique, and independent of the classes
the state is made of. One extra entry records the format version. Loading
rebuilds the state's structure from ``tx.init`` (traced with
``jax.eval_shape``, so nothing is allocated) and checks every key, shape and
dtype against it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT_VERSION = 1
VERSION_KEY = "__gradtx_format_version__"


def _is_key_array(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _raw_key_data(key: Any) -> Any:
    if isinstance(key, jax.ShapeDtypeStruct):
        return jax.eval_shape(jax.random.key_data, key)
    return jax.random.key_data(key)


def state_dict(state: Any) -> dict[str, Any]:
    """The optimizer state as a flat dict ``{path: array}``, ready for a checkpoint.

    Keys are jax key paths such as ``"[0].mu['w']"``; ``None`` entries and
    empty states contribute no key. Typed PRNG keys are stored as their raw
    ``uint32`` key data. The entry ``"__gradtx_format_version__"`` holds the
    format version. The arrays are the state's own (not copied). Applied to
    the abstract state ``jax.eval_shape(tx.init, params)`` it gives the
    matching dict of ``jax.ShapeDtypeStruct`` leaves, the restore target that
    ``orbax.checkpoint`` wants.

    The dict goes through ``flax.serialization.to_bytes`` /
    ``msgpack_restore``, ``orbax.checkpoint``, ``numpy.savez`` and the like;
    give what comes back to :func:`load_state_dict`.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> state = gradtx.sgd(0.1, momentum=0.9).init({"w": jnp.zeros(2)})
        >>> sorted(gradtx.state_dict(state))  # doctest: +NORMALIZE_WHITESPACE
        ['[0].count', "[0].hyperparams['dampening']", "[0].hyperparams['momentum']",
         "[0].trace['w']", '[1].count', "[1].hyperparams['learning_rate']",
         '__gradtx_format_version__']
    """
    out: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        out[jax.tree_util.keystr(path)] = _raw_key_data(leaf) if _is_key_array(leaf) else leaf
    out[VERSION_KEY] = np.asarray(FORMAT_VERSION, np.int32)
    return out


def _dtype(x: Any) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _describe(x: Any) -> str:
    return f"shape {tuple(np.shape(x))} and dtype {_dtype(x)}"


def _check_version(d: Any) -> None:
    if not hasattr(d, "keys"):
        raise TypeError(f"load_state_dict: expected a dict made by gradtx.state_dict, got {type(d).__name__}")
    if VERSION_KEY not in d:
        raise ValueError(
            f"load_state_dict: the dict has no {VERSION_KEY!r} entry; was it made by gradtx.state_dict?"
        )
    version = int(np.asarray(d[VERSION_KEY]))
    if version != FORMAT_VERSION:
        raise ValueError(
            f"load_state_dict: format version {version} is not supported (gradtx writes {FORMAT_VERSION})"
        )


def load_state_dict(tx: Any, params: Any, d: dict[str, Any]) -> Any:
    """Rebuilds the state of ``tx`` for ``params`` from a dict made by :func:`state_dict`.

    The expected structure comes from ``tx.init(params)``, traced with
    ``jax.eval_shape`` (``params`` may hold arrays or ``jax.ShapeDtypeStruct`` leaves).
    The values are used as they are (NumPy or jax arrays), so a state saved
    after step ``n`` and loaded continues bit for bit like an uninterrupted run.

    Raises:
        ValueError: naming the keys, if some are missing or unexpected; naming
            the key, if an array has the wrong shape or dtype; if the format
            version is missing or unknown.
        TypeError: if ``d`` is not a mapping.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx, params = gradtx.adam(1e-3), {"w": jnp.zeros(2)}
        >>> saved = gradtx.state_dict(tx.init(params))
        >>> state = gradtx.load_state_dict(tx, params, saved)
        >>> int(state[0].count)
        0
    """
    _check_version(d)
    template = jax.eval_shape(tx.init, params)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [jax.tree_util.keystr(path) for path, _ in flat]
    missing = [k for k in keys if k not in d]
    extra = sorted(set(d) - set(keys) - {VERSION_KEY})
    if missing or extra:
        raise ValueError(
            "load_state_dict: the dict does not match this optimizer's state"
            f"\n  missing keys: {missing or 'none'}\n  unexpected keys: {extra or 'none'}"
        )
    leaves = []
    for key, (_, expected) in zip(keys, flat, strict=True):
        value = d[key]
        want_shape = jax.eval_shape(jax.random.key_data, expected) if _is_key_array(expected) else expected
        if np.shape(value) != tuple(want_shape.shape) or _dtype(value) != _dtype(want_shape):
            raise ValueError(
                f"load_state_dict: entry {key!r} has {_describe(value)}, expected {_describe(want_shape)}"
            )
        if _is_key_array(expected):
            # The template is abstract; its key dtype carries the PRNG implementation.
            value = jax.random.wrap_key_data(jnp.asarray(value), impl=expected.dtype._impl)
        leaves.append(value)
    return jax.tree.unflatten(treedef, leaves)
