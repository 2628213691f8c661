"""Schedules defined piece by piece: constant pieces, interpolated pieces, and joins."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from gradtx.schedules._common import (
    ScheduleBase,
    check_boundaries,
    check_choice,
    check_real,
    check_steps,
    float_dtype,
    interpolate,
)


def _cumulative(init_value: float, scales: Sequence[float]) -> tuple[float, ...]:
    values = [init_value]
    for scale in scales:
        values.append(values[-1] * scale)
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class PiecewiseConstant(ScheduleBase):
    init_value: float
    boundaries_and_scales: tuple[tuple[int, float], ...]

    def evaluate(self, s):
        scales = [scale for _, scale in self.boundaries_and_scales]
        values = _cumulative(self.init_value, scales)
        out = jnp.full(jnp.shape(s), values[0], float_dtype())
        for (boundary, _), v in zip(self.boundaries_and_scales, values[1:], strict=True):
            out = jnp.where(s >= boundary, v, out)
        return out


def piecewise_constant(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> ScheduleBase:
    r"""Constant pieces: from each boundary step on, the value is multiplied by its scale.

    .. math::
        v(t) = I \prod_{i:\, t \ge b_i} s_i

    Equals ``optax.piecewise_constant_schedule``;
    ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)`` is
    ``{m: gamma for m in milestones}`` and ``ConstantLR(factor, total_iters)``
    is ``piecewise_constant(factor * lr, {total_iters: 1 / factor})``.
    A boundary at step 0 applies from the first step.

    Args:
        init_value: value before the first boundary.
        boundaries_and_scales: ``{step: scale}`` with integer steps >= 0 and
            scales >= 0 (or a sequence of ``(step, scale)`` pairs).

    Returns:
        A schedule: a hashable callable ``step -> jax.Array``.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.piecewise_constant(1.0, {100: 0.1, 200: 0.5})
        >>> sched(99), sched(100), sched(200)
        (Array(1., dtype=float32), Array(0.1, dtype=float32), Array(0.05, dtype=float32))
    """
    return PiecewiseConstant(
        check_real("init_value", init_value),
        check_boundaries("boundaries_and_scales", boundaries_and_scales),
    )


@dataclasses.dataclass(frozen=True)
class PiecewiseInterpolate(ScheduleBase):
    interpolate_type: str
    init_value: float
    boundaries_and_scales: tuple[tuple[int, float], ...]

    def evaluate(self, s):
        boundaries = tuple(b for b, _ in self.boundaries_and_scales)
        values = _cumulative(self.init_value, [scale for _, scale in self.boundaries_and_scales])
        shape = "polynomial" if self.interpolate_type == "linear" else "cosine"
        return interpolate(s, (0, *boundaries), values, shape)


def piecewise_interpolate(
    interpolate_type: str, init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> ScheduleBase:
    r"""Linear or cosine interpolation between values that jump by a scale at each boundary.

    With :math:`v_0 = I` at step 0 and :math:`v_i = v_{i-1} s_i` at boundary
    :math:`b_i`, the value between :math:`b_{i-1}` and :math:`b_i` anneals
    from :math:`v_{i-1}` to :math:`v_i` (linearly or along a half cosine); it
    is :math:`v_n` after the last boundary. The accumulated values are
    interpolated, not the scales. Equals ``optax.piecewise_interpolate_schedule``
    (same argument order).

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: value at step 0.
        boundaries_and_scales: ``{step: scale}`` with integer steps >= 0 and scales >= 0.

    Returns:
        A schedule: a hashable callable ``step -> jax.Array``.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.piecewise_interpolate("linear", 1.0, {4: 0.1, 8: 0.01})
        >>> sched(2), sched(4), sched(100)
        (Array(0.55, dtype=float32), Array(0.1, dtype=float32), Array(0.001, dtype=float32))
    """
    return PiecewiseInterpolate(
        check_choice("interpolate_type", interpolate_type, ("linear", "cosine")),
        check_real("init_value", init_value),
        check_boundaries("boundaries_and_scales", boundaries_and_scales),
    )


@dataclasses.dataclass(frozen=True)
class Join(ScheduleBase):
    schedules: tuple[Callable[[Any], Any], ...]
    boundaries: tuple[int, ...]

    def evaluate(self, s):
        out = jnp.asarray(self.schedules[0](s), float_dtype())
        for boundary, schedule in zip(self.boundaries, self.schedules[1:], strict=True):
            # Each piece sees its own step count from 0; clamped so no piece sees a negative step.
            piece = jnp.asarray(schedule(jnp.maximum(s - boundary, 0)), float_dtype())
            out = jnp.where(s < boundary, out, piece)
        return out


def join(schedules: Sequence[Callable[[Any], Any]], boundaries: Sequence[int]) -> ScheduleBase:
    r"""Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    Each schedule counts its own steps from 0: from boundary :math:`b_i` on,
    :math:`v(t) = f_{i+1}(t - b_i)`. Equals ``optax.join_schedules``. The
    schedules may be gradtx schedules or any ``step -> value`` function;
    equal arguments give equal joins.

    Args:
        schedules: ``n`` schedules.
        boundaries: ``n - 1`` non-decreasing integer steps >= 0.

    Returns:
        A schedule: a hashable callable ``step -> jax.Array``.

    Example:
        >>> import gradtx
        >>> warmup = gradtx.schedules.linear(0.0, 1.0, transition_steps=10)
        >>> decay = gradtx.schedules.cosine_decay(1.0, decay_steps=90)
        >>> sched = gradtx.schedules.join([warmup, decay], [10])
        >>> sched(5), sched(10), sched(100)
        (Array(0.5, dtype=float32), Array(1., dtype=float32), Array(0., dtype=float32))
    """
    schedules = tuple(schedules)
    boundaries = tuple(check_steps(f"boundaries[{i}]", b) for i, b in enumerate(boundaries))
    if not schedules:
        raise ValueError("schedules must not be empty")
    for i, schedule in enumerate(schedules):
        if not callable(schedule):
            raise ValueError(f"schedules[{i}] must be callable, got {schedule!r}")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have one entry fewer than schedules: got {len(boundaries)} "
            f"boundaries for {len(schedules)} schedules"
        )
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"boundaries must be non-decreasing, got {boundaries}")
    return Join(schedules, boundaries)
