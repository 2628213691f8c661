"""Shared test problems: pytree-structured parameters and gradient streams."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# A nested pytree: dicts, lists, tuples, a 0-d leaf, a None leaf, various shapes.
SHAPES: Any = {
    "dense": {"w": (3, 4), "b": (4,)},
    "seq": [(5,), ((2, 3), None)],
    "tup": ((), (6, 1)),
}


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def make_tree(rng: np.random.Generator, shapes: Any = SHAPES, dtype: Any = np.float64) -> Any:
    """A tree shaped like ``shapes`` with standard-normal NumPy leaves (None stays None)."""
    return jax.tree.map(
        lambda s: rng.standard_normal(s).astype(dtype), shapes, is_leaf=lambda x: _is_shape(x)
    )


def nested_params(seed: int = 0, dtype: Any = np.float64) -> Any:
    return make_tree(np.random.default_rng(seed), SHAPES, dtype)


def grad_stream(seed: int, steps: int, dtype: Any = np.float64) -> list:
    """``steps`` random gradient trees with the structure of ``nested_params``."""
    rng = np.random.default_rng(1000 + seed)
    return [make_tree(rng, SHAPES, dtype) for _ in range(steps)]


def to_jax(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)


def to_numpy(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def max_rel_error(actual: Any, expected: Any, atol: float = 1e-6) -> float:
    """max |a - e| / (|e| + atol) over all leaves."""
    errs = [
        float(
            np.max(
                np.abs(np.asarray(a, np.float64) - np.asarray(e, np.float64)) / (np.abs(e) + atol),
                initial=0.0,
            )
        )
        for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected))
    ]
    return max(errs, default=0.0)


def run_gradtx(tx: Any, params: Any, grads: list, *, jit: bool = True) -> Any:
    """Applies ``tx`` to the gradient stream (gradient independent of params); returns final params."""
    import gradtx

    state = tx.init(params)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    step = jax.jit(step) if jit else step
    for g in grads:
        params, state = step(params, state, g)
    return params


def quadratic_loss(params: Any) -> jax.Array:
    """An ill-conditioned quadratic with its minimum at 1 on every element."""
    leaves = jax.tree.leaves(params)
    total = jnp.zeros([], leaves[0].dtype)
    for i, x in enumerate(leaves):
        total = total + 0.5 * (1.0 + 4.0 * (i % 3)) * jnp.sum((x - 1.0) ** 2)
    return total


def rosenbrock_loss(params: Any) -> jax.Array:
    """Rosenbrock over all elements of all leaves, minimum at 1 everywhere."""
    x = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(params)])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
