"""NaN safety: skipping steps with non-finite gradients, and zeroing NaNs."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import WithHyperparams
from gradtx._core.numerics import safe_increment, zero_count


def all_finite(tree: Any) -> jax.Array:
    """Whether every element of every leaf is finite (True for an empty tree)."""
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.stack(flags).all() if flags else jnp.asarray(True)


class ApplyIfFiniteState(NamedTuple):
    """``notfinite_count``: consecutive non-finite steps so far (0 after a finite one);
    ``total_notfinite``: all non-finite steps; ``last_finite``: whether the last
    gradient was finite. Counters saturate at the int32 maximum."""

    inner_state: Any
    notfinite_count: jax.Array
    total_notfinite: jax.Array
    last_finite: jax.Array
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ApplyIfFinite(WithHyperparams, GradientTransformation):
    """Skips steps whose gradient is not finite (see :func:`apply_if_finite`)."""

    tx: Any
    max_consecutive_errors: int
    hyperparam_names = ("max_consecutive_errors",)

    def init(self, params):
        return ApplyIfFiniteState(
            self.tx.init(params), zero_count(), zero_count(), jnp.asarray(True), self.init_hyperparams()
        )

    def update(self, updates, state, params=None, **extra_args):
        finite = all_finite(updates)
        consecutive = jnp.where(finite, 0, safe_increment(state.notfinite_count)).astype(jnp.int32)
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        limit = state.hyperparams["max_consecutive_errors"]
        apply = finite | (consecutive.astype(limit.dtype) > limit)

        def step(_):
            out, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
            return jax.tree.map(lambda o, g: o.astype(g.dtype), out, updates), inner

        def skip(_):
            return jax.tree.map(jnp.zeros_like, updates), state.inner_state

        out, inner_state = jax.lax.cond(apply, step, skip, None)
        return out, ApplyIfFiniteState(inner_state, consecutive, total, finite, state.hyperparams)


def apply_if_finite(tx: Any, max_consecutive_errors: int) -> GradientTransformation:
    """Skips a step whose gradient holds a NaN or an infinity.

    On such a step the updates are zeros and the inner state (its step
    counter included) is left as it was, so the parameters, the optimizer
    and its schedules behave as if the step never happened. The wrapper counts
    the skipped steps: ``notfinite_count`` (consecutive, reset by a finite
    gradient) and ``total_notfinite``.

    *Giving up:* after ``max_consecutive_errors`` consecutive skipped steps,
    the next non-finite gradient is **let through** to ``tx`` (and so is
    every following one until a finite gradient resets the count), as optax's
    ``apply_if_finite`` does: the non-finite values then reach the inner
    state and the parameters, so a run that keeps diverging fails visibly
    instead of silently never training. ``max_consecutive_errors = 0`` skips
    nothing. It is stored in the state as the hyperparameter
    ``max_consecutive_errors``.

    Only the incoming gradient is checked, not the update ``tx`` produces.

    Args:
        tx: the transformation to protect.
        max_consecutive_errors: how many consecutive non-finite steps to skip
            before letting them through; an int >= 0.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.apply_if_finite(gradtx.adam(0.1), max_consecutive_errors=3)
        >>> state = tx.init(jnp.zeros(2))
        >>> u, state = tx.update(jnp.array([1.0, jnp.nan]), state)
        >>> u, int(state.total_notfinite), int(state.inner_state[0].count)
        (Array([0., 0.], dtype=float32), 1, 0)
    """
    _check_transformation(tx, "apply_if_finite: tx")
    if isinstance(max_consecutive_errors, bool) or not isinstance(max_consecutive_errors, numbers.Integral):
        raise TypeError(
            f"apply_if_finite: max_consecutive_errors must be an int, got {max_consecutive_errors!r}"
        )
    if max_consecutive_errors < 0:
        raise ValueError(
            f"apply_if_finite: max_consecutive_errors must be >= 0, got {max_consecutive_errors}"
        )
    return ApplyIfFinite(tx, int(max_consecutive_errors))


class ZeroNansState(NamedTuple):
    """``found_nan``: for each leaf, whether the last update had a NaN in it."""

    found_nan: Any


@dataclasses.dataclass(frozen=True)
class ZeroNans(GradientTransformation):
    """Replaces NaNs by zeros (see :func:`zero_nans`)."""

    def init(self, params):
        return ZeroNansState(jax.tree.map(lambda _: jnp.asarray(False), params))

    def update(self, updates, state, params=None, **extra_args):
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        out = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros((), u.dtype), u), updates)
        return out, ZeroNansState(found)


def zero_nans() -> GradientTransformation:
    """Replaces every NaN in the updates by 0 and records, per leaf, whether it found any.

    Infinities are left alone (clip them, or use :func:`apply_if_finite`).
    A complex element counts as NaN when its real or imaginary part is.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.zero_nans()
        >>> g = {"w": jnp.array([1.0, jnp.nan])}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"], bool(state.found_nan["w"])
        (Array([1., 0.], dtype=float32), True)
    """
    return ZeroNans()
