"""Reduce-on-plateau: scale the updates down when a monitored loss stops improving."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam, WithHyperparams, as_hyperparam, hyperparam_dtype
from gradtx._core.numerics import safe_increment, zero_count
from gradtx._core.validation import check_range
from gradtx._transforms._scaling import scale_tree
from gradtx.schedules._common import check_choice


class ReduceOnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`; ``scale`` is in ``hyperparams``."""

    count: jax.Array  # updates so far (drives scheduled hyperparameters)
    best_value: jax.Array  # the best (mean) loss so far
    num_bad_evals: jax.Array  # evaluations in a row without improvement
    cooldown_counter: jax.Array  # evaluations still ignored after the last reduction
    accum_count: jax.Array  # losses summed since the last evaluation
    accum_value: jax.Array  # their sum
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ReduceOnPlateau(WithHyperparams, GradientTransformation):
    factor: HyperParam
    patience: HyperParam
    cooldown: HyperParam
    threshold: HyperParam
    threshold_mode: str
    mode: str
    min_scale: HyperParam
    accumulation_size: int
    hyperparam_names = ("factor", "patience", "cooldown", "threshold", "min_scale")

    def init(self, params: Any) -> ReduceOnPlateauState:
        hyperparams = {**self.init_hyperparams(), "scale": as_hyperparam(1.0)}
        dtype = hyperparam_dtype(None)
        worst = jnp.asarray(jnp.inf if self.mode == "min" else -jnp.inf, dtype)
        # A fresh buffer per field: aliased leaves could not be donated to a jitted step.
        return ReduceOnPlateauState(
            zero_count(), worst, zero_count(), zero_count(), zero_count(), jnp.zeros([], dtype), hyperparams
        )

    def _improved(self, value: jax.Array, best: jax.Array, threshold: jax.Array) -> jax.Array:
        """torch's ``_is_better``."""
        sign = 1 if self.mode == "min" else -1
        if self.threshold_mode == "rel":
            return sign * value < sign * best * (1 - sign * threshold)
        return sign * value < sign * best - threshold

    def update(self, updates, state, params=None, *, value=None, **extra_args):
        if value is None:
            raise TypeError("reduce_on_plateau needs the monitored loss: call update(..., value=loss)")
        if jnp.shape(value) != ():
            raise ValueError(f"reduce_on_plateau: value must be a scalar, got shape {jnp.shape(value)}")
        hp = state.hyperparams
        scale = hp["scale"]
        # This update uses the stored scale (torch's order: optimizer.step(), then scheduler.step(loss)).
        updates = scale_tree(updates, scale)

        accum_count = state.accum_count + 1
        accum_value = state.accum_value + jnp.asarray(value).astype(state.accum_value.dtype)
        decide = accum_count >= self.accumulation_size
        mean = accum_value / accum_count.astype(accum_value.dtype)

        improved = self._improved(mean, state.best_value, hp["threshold"])
        best = jnp.where(improved, mean, state.best_value)
        bad = jnp.where(improved, 0, safe_increment(state.num_bad_evals))
        in_cooldown = state.cooldown_counter > 0
        cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)  # bad evaluations during a cooldown do not count
        reduce = bad > hp["patience"]
        # Never raises the scale, even if it was set below min_scale by hand.
        reduced = jnp.minimum(scale, jnp.maximum(scale * hp["factor"], hp["min_scale"]))
        new_scale = jnp.where(reduce, reduced, scale)
        cooldown_counter = jnp.where(reduce, hp["cooldown"].astype(cooldown_counter.dtype), cooldown_counter)
        bad = jnp.where(reduce, 0, bad)

        def when_deciding(new, old):
            return jnp.where(decide, new, old).astype(old.dtype)

        count = safe_increment(state.count)
        hyperparams = {**self.next_hyperparams(hp, count), "scale": when_deciding(new_scale, scale)}
        new_state = ReduceOnPlateauState(
            count=count,
            best_value=when_deciding(best, state.best_value),
            num_bad_evals=when_deciding(bad, state.num_bad_evals),
            cooldown_counter=when_deciding(cooldown_counter, state.cooldown_counter),
            accum_count=jnp.where(decide, 0, accum_count).astype(accum_count.dtype),
            accum_value=jnp.where(decide, 0.0, accum_value).astype(accum_value.dtype),
            hyperparams=hyperparams,
        )
        return updates, new_state


def reduce_on_plateau(
    factor: HyperParam = 0.1,
    patience: HyperParam = 10,
    cooldown: HyperParam = 0,
    threshold: HyperParam = 1e-4,
    threshold_mode: str = "rel",
    mode: str = "min",
    min_scale: HyperParam = 0.0,
    accumulation_size: int = 1,
) -> GradientTransformation:
    r"""Multiplies updates by a ``scale`` that drops by ``factor`` when the loss plateaus.

    ``update(updates, state, params, value=loss)`` takes the monitored loss.
    Every ``accumulation_size`` calls the mean of the losses is compared with
    the best so far, as ``torch.optim.lr_scheduler.ReduceLROnPlateau``:
    it improves if it is below ``best * (1 - threshold)`` (``"rel"``) or
    ``best - threshold`` (``"abs"``) for ``mode="min"``, above
    ``best * (1 + threshold)`` or ``best + threshold`` for ``mode="max"``.
    After more than ``patience`` evaluations in a row without improvement,
    :math:`s \leftarrow \max(s \cdot \text{factor}, \text{min\_scale})` and the
    next ``cooldown`` evaluations are not counted.

    Conventions: ``patience`` is torch's (reduce on the ``patience + 1``-th bad
    evaluation; ``optax.contrib.reduce_on_plateau`` reduces on the
    ``patience``-th). Each update is scaled by the stored ``scale``, which the
    loss passed to that update can only change for the *next* one — torch's
    ``optimizer.step(); scheduler.step(loss)`` order and gradtx's rule that a
    state holds the value the next update uses; optax applies the new scale to
    the current update already. Torch's ``eps`` (skip reductions smaller than
    1e-8 in learning-rate units) has no counterpart. ``min_scale`` is relative:
    place it after the learning rate, ``gradtx.chain(gradtx.adam(lr), gradtx.reduce_on_plateau())``,
    and ``min_lr = lr * min_scale``.

    Args:
        factor: multiplier of the scale at each reduction, in (0, 1).
        patience: non-improving evaluations tolerated before a reduction, >= 0.
        cooldown: evaluations ignored after a reduction, >= 0.
        threshold: the margin an improvement must beat, >= 0.
        threshold_mode: ``"rel"`` or ``"abs"``.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        min_scale: the scale never drops below this, in [0, 1].
        accumulation_size: losses averaged per evaluation, >= 1 (for noisy
            minibatch losses; 1 evaluates at every update).

    The numeric arguments and the current ``scale`` live in the state: read
    ``gradtx.get_hyperparam(state, "scale")``, or set it by hand.

    Returns:
        A gradient transformation whose ``update`` needs ``value=``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.chain(gradtx.sgd(0.1), gradtx.reduce_on_plateau(factor=0.5, patience=1))
        >>> params = jnp.zeros(2)
        >>> state = tx.init(params)
        >>> for loss in [3.0, 2.0, 2.0, 2.0]:
        ...     updates, state = tx.update(jnp.ones(2), state, params, value=loss)
        >>> gradtx.get_hyperparam(state, "scale")
        Array(0.5, dtype=float32)
    """
    check_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
    check_range("patience", patience, 0.0)
    check_range("cooldown", cooldown, 0.0)
    check_range("threshold", threshold, 0.0)
    if threshold_mode == "rel":  # best * (1 - threshold) must stay a finite, useful bar
        check_range("threshold", threshold, 0.0, 1.0, high_open=True)
    check_range("min_scale", min_scale, 0.0, 1.0)
    if isinstance(accumulation_size, bool) or not isinstance(accumulation_size, int) or accumulation_size < 1:
        raise ValueError(f"accumulation_size must be an integer >= 1, got {accumulation_size!r}")
    return ReduceOnPlateau(
        factor,
        patience,
        cooldown,
        threshold,
        check_choice("threshold_mode", threshold_mode, ("rel", "abs")),
        check_choice("mode", mode, ("min", "max")),
        min_scale,
        accumulation_size,
    )
