"""Lifting per-array update rules to pytrees, and running a transformation's updates.

The references are written for one NumPy array at a time (the equations are
element-wise); these two helpers give them the uniform interface
``name(params_tree, grads_list, **hyperparams) -> final params_tree``.

They compute in float64. ``dtype=np.float32`` runs the very same equations in
float32 instead: the error of that run against the float64 one is the
rounding error any float32 implementation must expect (the "float32 floor").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def as_numpy(tree: Any, dtype: Any = np.float64) -> Any:
    """A copy of ``tree`` with NumPy leaves of ``dtype`` (None leaves stay None)."""
    return jax.tree.map(lambda x: np.array(x, dtype=dtype), tree)


def _check_dtype(tree: Any, dtype: Any) -> Any:
    """Fails if a rule silently promoted its arithmetic (a float32 run must stay float32)."""
    for x in jax.tree.leaves(tree):
        if x.dtype != dtype:
            raise TypeError(f"reference computed in {x.dtype}, expected {np.dtype(dtype)}")
    return tree


def leafwise(rule: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """Lifts ``rule(p, grads_of_p, **hp) -> final p`` on one array to whole pytrees.

    Each leaf of ``params`` is run on its own stream of gradients (the
    matching leaf of every tree in ``grads``), as element-wise optimizers do.
    """

    @functools.wraps(rule)
    def run(params: Any, grads: list, *, dtype: Any = np.float64, **hyperparams: Any) -> Any:
        leaves, treedef = jax.tree.flatten(as_numpy(params, dtype))
        per_step = [jax.tree.leaves(as_numpy(g, dtype)) for g in grads]
        streams = [[step[i] for step in per_step] for i in range(len(leaves))]
        final = treedef.unflatten([rule(p, gs, **hyperparams) for p, gs in zip(leaves, streams)])
        return _check_dtype(final, dtype)

    return run


def accumulate(transform: Callable[..., Any]) -> Callable[..., Any]:
    """Turns a one-step ``transform(updates, params, **hp) -> updates`` on trees into a run.

    The run applies ``params <- params + transform(grads_t, params)`` for each
    gradient tree in turn, which is what applying a gradtx transformation's
    updates with ``apply_updates`` does. Tree-level transforms (global-norm
    clipping) need every leaf at once, hence a separate helper.
    """

    @functools.wraps(transform)
    def run(params: Any, grads: list, *, dtype: Any = np.float64, **hyperparams: Any) -> Any:
        params = as_numpy(params, dtype)
        for g in grads:
            updates = transform(as_numpy(g, dtype), params, **hyperparams)
            params = jax.tree.map(np.add, params, updates)
        return _check_dtype(params, dtype)

    return run
