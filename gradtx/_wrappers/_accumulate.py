"""Gradient accumulation: one optimizer step per ``k`` micro-batches."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import WithHyperparams
from gradtx._core.numerics import INT32_MAX, as_compute, compute_dtype, safe_increment, zero_count
from gradtx._core.validation import check_same_structure

_REDUCTIONS = ("mean", "sum")


class AccumulateState(NamedTuple):
    """``mini_step``: micro-batches summed into ``acc_grads`` in the current window;
    ``count``: windows completed, i.e. updates made by the inner transformation."""

    mini_step: jax.Array
    count: jax.Array
    acc_grads: Any
    inner_state: Any
    hyperparams: dict[str, jax.Array]


def _window_length(every_k: jax.Array) -> jax.Array:
    """The stored (float) ``every_k`` as an int32 >= 1."""
    return jnp.clip(jnp.round(every_k), 1, INT32_MAX).astype(jnp.int32)


def _select_tree(flag: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), on_true, on_false)


@dataclasses.dataclass(frozen=True)
class Accumulate(WithHyperparams, GradientTransformation):
    """Sums ``every_k`` gradients, then calls ``tx`` once (see :func:`accumulate`)."""

    tx: Any
    every_k: int | Callable[[jax.Array], Any]
    reduction: str = "mean"
    hyperparam_names = ("every_k",)

    def init(self, params):
        acc = jax.tree.map(lambda p: jnp.zeros_like(p, compute_dtype(p.dtype)), params)
        return AccumulateState(zero_count(), zero_count(), acc, self.tx.init(params), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.acc_grads, "updates", "state.acc_grads")
        k = _window_length(state.hyperparams["every_k"])
        acc = jax.tree.map(lambda a, g: a + as_compute(g).astype(a.dtype), state.acc_grads, updates)
        mini_step = safe_increment(state.mini_step)
        emit = mini_step >= k

        def step(_):
            if self.reduction == "mean":
                # mini_step == k, unless every_k was lowered by hand mid-window.
                grads = jax.tree.map(
                    lambda a, g: (a / mini_step.astype(a.dtype)).astype(g.dtype), acc, updates
                )
            else:
                grads = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)
            out, inner = call_update(self.tx, grads, state.inner_state, params, extra_args)
            return jax.tree.map(lambda o, g: o.astype(g.dtype), out, updates), inner

        def wait(_):
            return jax.tree.map(jnp.zeros_like, updates), state.inner_state

        out, inner_state = jax.lax.cond(emit, step, wait, None)
        count = jnp.where(emit, safe_increment(state.count), state.count)
        hyperparams = _select_tree(emit, self.next_hyperparams(state.hyperparams, count), state.hyperparams)
        new_state = AccumulateState(
            jnp.where(emit, 0, mini_step).astype(jnp.int32),
            count,
            _select_tree(emit, jax.tree.map(jnp.zeros_like, acc), acc),
            inner_state,
            hyperparams,
        )
        return out, new_state


def accumulate(
    tx: Any, every_k: int | Callable[[jax.Array], Any], *, reduction: str = "mean"
) -> GradientTransformation:
    r"""Gradient accumulation: calls ``tx`` once every ``every_k`` micro-batches.

    .. math::
        u_t = \begin{cases}
            \mathrm{tx}\big(\tfrac{1}{k}\sum_{i=t-k+1}^{t} g_i\big) & \text{at the } k\text{-th micro-step} \\
            0 & \text{otherwise}
        \end{cases}

    In between, the updates are zeros (so the parameters do not move) and the
    inner state is untouched. With ``reduction="mean"`` and equal-sized
    micro-batches, ``k`` micro-steps equal one step of ``tx`` on the whole
    batch: the gradient ``tx`` sees is the big batch's mean gradient, and the
    parameters it sees are those of the window's start. The inner
    transformation's step counter (and hence Adam's bias correction and any
    schedule) counts windows, not micro-batches. The sum is kept in at least
    float32. Extra arguments (``value=`` for instance) reach ``tx`` from the
    micro-step that closes the window.

    This is optax's ``MultiSteps`` (whose ``every_k_schedule`` must be a
    constant per window too).

    Args:
        tx: the transformation to apply to the accumulated gradient.
        every_k: the number ``k`` >= 1 of micro-batches per step, or a
            function ``n -> k`` of the number ``n`` of windows already
            completed (``n = 0`` for the first window). Stored in the state as
            the hyperparameter ``every_k``. *Boundary rule:* a window's ``k``
            is read when it opens and it closes at the micro-step whose
            number of accumulated gradients reaches ``k`` (``>=``, so lowering
            ``every_k`` with :func:`gradtx.set_hyperparam` mid-window closes
            the window at the next micro-step). Values below 1 count as 1.
        reduction: ``"mean"`` (the default) divides the sum by the number
            of gradients in it (``k``), ``"sum"`` passes the sum on.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.accumulate(gradtx.sgd(1.0), every_k=2)
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.array([1.0]), state)
        >>> u
        Array([0.], dtype=float32)
        >>> u, state = tx.update(jnp.array([3.0]), state)
        >>> u
        Array([-2.], dtype=float32)
    """
    _check_transformation(tx, "accumulate: tx")
    if not callable(every_k):
        if isinstance(every_k, bool) or not isinstance(every_k, numbers.Integral):
            raise TypeError(f"accumulate: every_k must be an int or a function n -> k, got {every_k!r}")
        if every_k < 1:
            raise ValueError(f"accumulate: every_k must be >= 1, got {every_k}")
        every_k = int(every_k)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"accumulate: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return Accumulate(tx, every_k, reduction)
