"""The jitted, donating training step most loops need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from gradtx._core.base import apply_updates


def make_step(
    loss_fn: Callable[..., Any],
    tx: Any,
    *,
    has_aux: bool = False,
    donate: bool = True,
    jit: bool = True,
) -> Callable[..., tuple]:
    """Builds ``step(params, state, *batch) -> (params, state, loss[, aux])``.

    The step computes the loss and its gradient with ``jax.value_and_grad``,
    calls ``tx.update(grads, state, params, value=loss)`` (so loss-aware
    transformations such as :func:`gradtx.reduce_on_plateau` get the loss) and
    applies the updates. It is jitted with ``params`` and ``state`` donated, so
    the new parameters and optimizer state reuse the old buffers: peak memory
    stays at one copy of each. Do not use ``params`` or ``state`` again after
    passing them in.

    Args:
        loss_fn: ``loss_fn(params, *batch) -> loss``, or ``-> (loss, aux)`` with
            ``has_aux=True``.
        tx: any gradtx (or optax) transformation.
        has_aux: whether ``loss_fn`` also returns auxiliary data.
        donate: donate ``params`` and ``state`` to the step.
        jit: compile the step (``False`` runs it eagerly, for debugging).

    Returns:
        The step function.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> loss = lambda p, x: jnp.sum((p - x) ** 2)
        >>> tx = gradtx.sgd(0.25)
        >>> step = gradtx.make_step(loss, tx)
        >>> params = jnp.zeros(2)
        >>> params, state, value = step(params, tx.init(params), jnp.ones(2))
        >>> params
        Array([0.5, 0.5], dtype=float32)
    """
    if not callable(loss_fn):
        raise TypeError(f"make_step: loss_fn must be callable, got {loss_fn!r}")
    grad_fn = jax.value_and_grad(loss_fn, has_aux=has_aux)

    def step(params, state, *batch):
        out, grads = grad_fn(params, *batch)
        loss = out[0] if has_aux else out
        updates, state = tx.update(grads, state, params, value=loss)
        params = apply_updates(params, updates)
        return (params, state, *out) if has_aux else (params, state, loss)

    if not jit:
        return step
    return jax.jit(step, donate_argnums=(0, 1) if donate else ())
