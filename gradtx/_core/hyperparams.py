"""Hyperparameters live in the optimizer state.

Every numeric hyperparameter of a transformation (learning rate, betas, eps,
weight decay, ...) is stored in its state under ``state.hyperparams[name]``
and read from there by ``update``. So:

- changing one (``set_hyperparam``) inside a jitted step never recompiles;
- the current value of a schedule is visible for logging (``get_hyperparam``);
- hyperparameters can be traced, vmapped and differentiated.

Semantics: the stored value is the one the *next* ``update`` will use. A
hyperparameter given as a schedule ``fn(step) -> value`` is re-evaluated after
each update (``fn(0)`` is used by the first one), so a value set by hand on a
scheduled hyperparameter lasts one step and the schedule then resumes — the
behaviour of assigning ``param_group["lr"]`` under a torch LR scheduler. A
hyperparameter given as a number keeps whatever value is set.

Values are stored in float32 (float64 when ``jax_enable_x64`` is on), or in
the dtype of an array passed in, never in the parameters' dtype: with
bfloat16 parameters, ``b2 = 0.999`` would round to 1.0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

Schedule = Callable[[jax.Array], Any]
HyperParam = float | jax.Array | Schedule

_FIELD = "hyperparams"


def hyperparam_dtype(value: Any) -> jnp.dtype:
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(dtype)
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def as_hyperparam(value: Any) -> jax.Array:
    """A hyperparameter value as a scalar array in its storage dtype."""
    return jnp.asarray(value, dtype=hyperparam_dtype(value))


def value_at(value: HyperParam, step: jax.Array) -> jax.Array:
    """The value of a constant or scheduled hyperparameter at ``step``."""
    if callable(value):
        return jnp.asarray(value(step), dtype=hyperparam_dtype(None))
    return as_hyperparam(value)


class WithHyperparams:
    """Mixin for transformations whose numeric fields are hyperparameters.

    Subclasses list those fields in ``hyperparam_names``; their state holds
    ``hyperparams = self.init_hyperparams()`` and refreshes it in ``update``
    with ``self.next_hyperparams(state.hyperparams, new_count)``.
    """

    hyperparam_names: ClassVar[tuple[str, ...]] = ()

    def init_hyperparams(self) -> dict[str, jax.Array]:
        step = jnp.zeros([], jnp.int32)
        return {name: value_at(getattr(self, name), step) for name in self.hyperparam_names}

    def next_hyperparams(self, current: dict[str, jax.Array], count: jax.Array) -> dict:
        out = {}
        for name in self.hyperparam_names:
            value = getattr(self, name)
            out[name] = (
                value_at(value, count).astype(current[name].dtype) if callable(value) else current[name]
            )
        return out


def _is_hyperparam_path(path: tuple) -> bool:
    return (
        len(path) >= 2
        and isinstance(path[-1], jax.tree_util.DictKey)
        and getattr(path[-2], "name", getattr(path[-2], "key", None)) == _FIELD
    )


def _hyperparam_leaves(state: Any) -> list[tuple[str, str, Any]]:
    """(full path, short name, value) for every hyperparameter in ``state``."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    return [
        (jax.tree_util.keystr(path), str(path[-1].key), leaf)
        for path, leaf in leaves
        if _is_hyperparam_path(path)
    ]


def _select(state: Any, name: str) -> str:
    """The full path of the hyperparameter called ``name`` (short name or full path)."""
    found = _hyperparam_leaves(state)
    matches = [full for full, short, _ in found if name in (full, short)]
    if not matches:
        names = sorted({short for _, short, _ in found})
        raise KeyError(
            f"no hyperparameter {name!r} in this optimizer state; it has {names}. "
            "(A term switched off at construction, such as momentum=0, keeps no state.)"
        )
    if len(matches) > 1:
        raise KeyError(
            f"hyperparameter {name!r} is ambiguous: it appears at {matches}; "
            "pass one of these full paths instead"
        )
    return matches[0]


def get_hyperparams(state: Any) -> dict[str, jax.Array]:
    """Every hyperparameter in ``state``, keyed by name (full path where a name repeats).

    The values are those the next ``update`` will use: ready for a logger.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> state = gradtx.adam(1e-3).init(jnp.zeros(3))
        >>> sorted(gradtx.get_hyperparams(state))
        ['b1', 'b2', 'eps', 'eps_root', 'learning_rate']
    """
    found = _hyperparam_leaves(state)
    counts: dict[str, int] = {}
    for _, short, _ in found:
        counts[short] = counts.get(short, 0) + 1
    return {(short if counts[short] == 1 else full): value for full, short, value in found}


def get_hyperparam(state: Any, name: str) -> jax.Array:
    """The value of hyperparameter ``name`` that the next ``update`` will use.

    Args:
        state: an optimizer state (any nesting of chains and wrappers).
        name: a hyperparameter name such as ``"learning_rate"``, or its full
            path as listed by :func:`get_hyperparams` when the name repeats.

    Raises:
        KeyError: if no such hyperparameter exists, or the name is ambiguous.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> state = gradtx.sgd(0.1, momentum=0.9).init(jnp.zeros(3))
        >>> float(gradtx.get_hyperparam(state, "momentum"))
        0.8999999761581421
    """
    path = _select(state, name)
    return next(value for full, _, value in _hyperparam_leaves(state) if full == path)


def set_hyperparam(state: Any, name: str, value: Any) -> Any:
    """A copy of ``state`` whose hyperparameter ``name`` is ``value``.

    Works inside ``jit`` with a traced ``value`` and never changes the state's
    dtypes or shapes, so a jitted step does not recompile. On a scheduled
    hyperparameter the value applies to the next step only.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> state = gradtx.adam(1e-3).init(jnp.zeros(3))
        >>> state = gradtx.set_hyperparam(state, "learning_rate", 1e-4)
        >>> float(gradtx.get_hyperparam(state, "learning_rate"))
        9.999999747378752e-05
    """
    path = _select(state, name)
    if not isinstance(value, jax.core.Tracer) and np.ndim(value) == 0 and np.isnan(value):
        raise ValueError(f"set_hyperparam: value for {name!r} is NaN")

    def replace(p, leaf):
        if jax.tree_util.keystr(p) != path:
            return leaf
        return jnp.broadcast_to(jnp.asarray(value).astype(leaf.dtype), jnp.shape(leaf))

    return jax.tree_util.tree_map_with_path(replace, state)
