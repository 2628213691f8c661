"""The problem every registry entry is run on, and the loop that runs it.

Parameters are a small nested pytree; gradients are those of a separable
quadratic with its minimum at 1 (so an update depends on the parameters, as in
training). ``value``, ``grad`` and ``value_fn`` are passed to entries that need
the loss (line searches, ``reduce_on_plateau``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from tests.registry import Entry

SHAPES: Any = {"dense": {"w": (3, 4), "b": (4,)}, "scale": ()}
MATRIX_SHAPES: Any = {"w1": (3, 4), "w2": (4, 2)}


def shapes_for(entry: Entry) -> Any:
    return MATRIX_SHAPES if entry.matrices_only else SHAPES


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def make_params(shapes: Any, dtype: Any = jnp.float32, seed: int = 0) -> Any:
    """Standard-normal leaves; ``dtype`` is one dtype or a function of the leaf index."""
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=_is_shape)
    dtypes = [
        dtype(i) if callable(dtype) and not isinstance(dtype, type) else dtype for i in range(len(leaves))
    ]
    values = []
    for shape, dt in zip(leaves, dtypes):
        x = rng.standard_normal(shape)
        if jnp.issubdtype(dt, jnp.complexfloating):
            x = x + 1j * rng.standard_normal(shape)
        values.append(jnp.asarray(x, dt))
    return jax.tree.unflatten(treedef, values)


def loss(params: Any) -> jax.Array:
    """sum_i (i + 1)/2 * ||p_i - 1||^2, computed in float32 whatever the leaves' dtype."""
    total = jnp.zeros([], jnp.float32)
    for i, leaf in enumerate(jax.tree.leaves(params)):
        total = total + 0.5 * (i + 1) * jnp.sum(
            jnp.abs(leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32)) - 1) ** 2
        )
    return total


def gradient(params: Any) -> Any:
    """The loss gradient, in each leaf's own dtype (for complex leaves: (i + 1) (p - 1))."""
    leaves, treedef = jax.tree.flatten(params)
    return jax.tree.unflatten(treedef, [((i + 1) * (p - 1)).astype(p.dtype) for i, p in enumerate(leaves)])


def step_fn(entry: Entry, tx: Any, grad_fn: Callable[[Any], Any] = gradient) -> Callable:
    """``(params, state) -> (params, state)``: one update on the problem's gradient."""

    def step(params, state):
        grads = grad_fn(params)
        extra = {}
        if entry.needs_value:
            extra = dict(value=loss(params), grad=grads, value_fn=loss)
        updates, state = tx.update(grads, state, params, **extra)
        return gradtx.apply_updates(params, updates), state

    return step


def run(entry: Entry, tx: Any, params: Any, steps: int, *, jit: bool = True, state: Any = None) -> tuple:
    step = step_fn(entry, tx)
    step = jax.jit(step) if jit else step
    state = tx.init(params) if state is None else state
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def leaf_types(tree: Any) -> list[tuple[str, tuple, str]]:
    """(path, shape, dtype) of every array leaf: what a state layout is made of."""
    return [
        (jax.tree_util.keystr(path), tuple(np.shape(x)), str(jnp.result_type(x)))
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def rel_error(actual: Any, expected: Any, atol: float = 0.1) -> float:
    """max |a - e| / (|e| + atol) over every leaf.

    A relative error for values well above ``atol`` and an absolute one (over
    ``atol``) near zero: on this problem, whose values are of order one, a value
    near zero is the result of cancellation, where only the absolute error
    means anything.
    """

    def error(a, e):
        with np.errstate(invalid="ignore"):
            # Equal values (an infinite hyperparameter such as a line search's cap) are no error.
            return float(np.max(np.where(a == e, 0.0, np.abs(a - e) / (np.abs(e) + atol)), initial=0.0))

    errors = [
        error(a, e)
        for a, e in zip(
            (np.asarray(x, np.complex128) for x in jax.tree.leaves(actual)),
            (np.asarray(x, np.complex128) for x in jax.tree.leaves(expected)),
            strict=True,
        )
    ]
    return max(errors, default=0.0)


def assert_finite(tree: Any, what: str, like: Any = None) -> None:
    """Every inexact leaf of ``tree`` is finite.

    With ``like`` (a tree of the same structure, such as the state after
    ``init``), a leaf may keep a non-finite value it had there: a line search's
    ``max_learning_rate`` is infinite by design.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    allowed = [None] * len(leaves) if like is None else jax.tree.leaves(like)
    for (path, x), before in zip(leaves, allowed, strict=True):
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.inexact) or x.dtype.name == "bfloat16"):
            continue
        x = x.astype(np.complex128)
        ok = np.isfinite(x)
        if before is not None:
            ok |= x == np.asarray(before).astype(np.complex128)
        assert np.all(ok), f"{what}{jax.tree_util.keystr(path)} is not finite"


def tuning_hyperparam(state: Any) -> str | None:
    """The hyperparameter to vmap over: a learning rate if there is one, else the first nonzero one."""
    values = gradtx.get_hyperparams(state)
    rates = [n for n in values if n.endswith("learning_rate") or n.endswith("step_size")]
    nonzero = [n for n, v in values.items() if np.any(np.asarray(v) != 0)]
    return (rates or nonzero or [None])[0]
