"""A linear warmup followed by a decay: constant, cosine, exponential, inverse square root, WSD."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from gradtx._core.numerics import INT32_MAX
from gradtx.schedules._common import (
    ScheduleBase,
    check_choice,
    check_real,
    check_steps,
    elapsed,
    schedule_docs,
)
from gradtx.schedules._decay import Constant, Transition, exponential_decay
from gradtx.schedules._piecewise import Join


@schedule_docs
def warmup_constant(init_value: float, peak_value: float, warmup_steps: int) -> ScheduleBase:
    r"""Linear warmup to ``peak_value``, then constant.

    .. math::
        v(t) = I + (P - I)\,\min(t / W, 1)

    Equals ``optax.warmup_constant_schedule`` for ``warmup_steps >= 1``.
    ``warmup_steps=0`` starts at ``peak_value`` (optax stays at ``init_value``).

    Args:
        init_value: {init_value}
        peak_value: {peak_value}
        warmup_steps: {warmup_steps}

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.warmup_constant(0.0, 1.0, warmup_steps=4)
        >>> sched(1), sched(4), sched(10**9)
        (Array(0.25, dtype=float32), Array(1., dtype=float32), Array(1., dtype=float32))
    """
    return _warmup(init_value, peak_value, warmup_steps)


def _warmup(init_value: float, peak_value: float, warmup_steps: int) -> Transition:
    return Transition(
        check_real("init_value", init_value),
        check_real("peak_value", peak_value),
        check_steps("warmup_steps", warmup_steps),
    )


@schedule_docs
def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> ScheduleBase:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    .. math::
        v(t) = \begin{cases}
            I + (P - I)\, t / W & t < W \\
            E + (P - E) \left[\tfrac12 (1 + \cos \pi \tfrac{\min(t, D) - W}{D - W})\right]^p & t \ge W
        \end{cases}

    ``decay_steps`` :math:`D` counts the warmup, as in
    ``optax.warmup_cosine_decay_schedule``, which this equals; the end value is
    reached at step :math:`D` (optax's convention: divide by :math:`D - W`).
    Continuous at :math:`W`. ``warmup_steps=0`` starts at the peak;
    ``decay_steps == warmup_steps`` drops to ``end_value`` right after the
    warmup (optax raises); with ``peak_value=0`` it still heads for ``end_value``
    (optax then stays at 0).

    Args:
        init_value: {init_value}
        peak_value: {peak_value}
        warmup_steps: {warmup_steps}
        decay_steps: :math:`D \ge W`, the total length of warmup and decay.
        end_value: value from step :math:`D` on.
        exponent: :math:`p > 0`, the power of the cosine factor.

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=10, decay_steps=110)
        >>> [float(sched(t)) for t in (5, 10, 60, 110)]
        [0.5, 1.0, 0.5, 0.0]
    """
    warmup = _warmup(init_value, peak_value, warmup_steps)
    decay_steps = check_steps("decay_steps", decay_steps)
    if decay_steps < warmup.steps:
        raise ValueError(f"decay_steps ({decay_steps}) must be >= warmup_steps ({warmup.steps})")
    decay = Transition(
        warmup.end,
        check_real("end_value", end_value),
        decay_steps - warmup.steps,
        shape="cosine",
        power=check_real("exponent", exponent, 0.0, low_open=True),
    )
    return Join((warmup, decay), (warmup.steps,))


@schedule_docs
def warmup_exponential_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> ScheduleBase:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from it.

    The decay counts its steps from the end of the warmup:
    :math:`v(t) = P\, r^{\max(t - W - B, 0)/T}` for :math:`t \ge W`.
    Equals ``optax.warmup_exponential_decay_schedule`` (for ``warmup_steps >= 1``
    and ``decay_rate > 0``; see :func:`exponential_decay` for the degenerate cases).

    Args:
        init_value: {init_value}
        peak_value: {peak_value}
        warmup_steps: {warmup_steps}
        transition_steps: :math:`T`, steps per factor ``decay_rate``, >= 0.
        decay_rate: :math:`r \ge 0`.
        transition_begin: steps :math:`B` after the warmup to hold ``peak_value``.
        staircase: decay in whole steps of ``transition_steps``.
        end_value: the bound of the decay, or ``None``.

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.warmup_exponential_decay(0.0, 1.0, 10, 10, 0.5)
        >>> sched(5), sched(10), sched(20)
        (Array(0.5, dtype=float32), Array(1., dtype=float32), Array(0.5, dtype=float32))
    """
    warmup = _warmup(init_value, peak_value, warmup_steps)
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return Join((warmup, decay), (warmup.steps,))


@dataclasses.dataclass(frozen=True)
class InverseSqrtDecay(ScheduleBase):
    """``peak_value * sqrt(timescale / (timescale + t))``."""

    peak_value: float
    timescale: int

    def evaluate(self, s):
        return self.peak_value * jnp.sqrt(1 / (1 + elapsed(s, 0, self.timescale, False)))


@schedule_docs
def rsqrt(
    peak_value: float,
    warmup_steps: int,
    *,
    init_value: float = 0.0,
    timescale: int | None = None,
) -> ScheduleBase:
    r"""Linear warmup, then inverse-square-root decay (the Transformer / T5 schedule).

    .. math::
        v(t) = \begin{cases}
            I + (P - I)\, t / W & t < W \\
            P \sqrt{\dfrac{\tau}{\tau + t - W}} & t \ge W
        \end{cases}

    With the default :math:`\tau = W` and ``init_value=0`` this is
    :math:`P \min(t / W, \sqrt{W / t})`, the "Noam" schedule of Vaswani et al.
    (their :math:`d^{-1/2} \min(t^{-1/2}, t W^{-3/2})` with :math:`P = (dW)^{-1/2}`),
    and equals Hugging Face's ``get_inverse_sqrt_schedule`` (same default
    :math:`\tau`, 10 000 when :math:`W = 0`). Neither optax nor torch has it.
    Continuous at :math:`W`; decreasing after it.

    Args:
        peak_value: {peak_value}
        warmup_steps: {warmup_steps}
        init_value: {init_value}
        timescale: :math:`\tau \ge 1`, the steps after the warmup over which
            the value falls by :math:`\sqrt 2`; default ``warmup_steps`` (10 000 if that is 0).

    Returns:
        {returns}

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.rsqrt(1.0, warmup_steps=100)
        >>> sched(50), sched(100), sched(400)
        (Array(0.5, dtype=float32), Array(1., dtype=float32), Array(0.5, dtype=float32))
    """
    warmup = _warmup(init_value, peak_value, warmup_steps)
    if timescale is None:
        timescale = warmup.steps or 10_000
    timescale = check_steps("timescale", timescale)
    if timescale == 0:
        raise ValueError("timescale must be >= 1, got 0")
    return Join((warmup, InverseSqrtDecay(warmup.end, timescale)), (warmup.steps,))


_WSD_DECAYS = {"linear": ("polynomial", 1.0), "cosine": ("cosine", 1.0), "1-sqrt": ("1-sqrt", 1.0)}


@schedule_docs
def warmup_stable_decay(
    peak_value: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    *,
    init_value: float = 0.0,
    end_value: float = 0.0,
    decay_type: str = "linear",
) -> ScheduleBase:
    r"""Warmup-stable-decay (WSD): linear warmup, a constant plateau, then a short decay.

    .. math::
        v(t) = \begin{cases}
            I + (P - I)\, t / W & t < W \\
            P & W \le t < W + S \\
            E + (P - E)\, r\!\left(\frac{\min(t - W - S,\, D)}{D}\right) & t \ge W + S
        \end{cases}

    with :math:`r(f) = 1 - f` (``"linear"``), :math:`\tfrac12(1 + \cos \pi f)`
    (``"cosine"``) or :math:`1 - \sqrt f` (``"1-sqrt"``, Hägele et al.). The three
    phases are consecutive: the end value is reached at step :math:`W + S + D`.
    Continuous everywhere. Neither optax nor torch has it.

    Args:
        peak_value: {peak_value}
        warmup_steps: {warmup_steps}
        stable_steps: :math:`S \ge 0`, steps held at ``peak_value``.
        decay_steps: :math:`D \ge 0`, length of the final decay.
        init_value: {init_value}
        end_value: value from step :math:`W + S + D` on.
        decay_type: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.

    Returns:
        {returns}

    References:
        Hu et al., "MiniCPM", 2024; Hägele et al., "Scaling Laws and
        Compute-Optimal Training Beyond Fixed Training Durations", NeurIPS 2024.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.warmup_stable_decay(1.0, 10, 80, 10)
        >>> [float(sched(t)) for t in (5, 50, 95, 100)]
        [0.5, 1.0, 0.5, 0.0]
    """
    warmup = _warmup(init_value, peak_value, warmup_steps)
    stable_steps = check_steps("stable_steps", stable_steps)
    decay_steps = check_steps("decay_steps", decay_steps)
    shape, power = _WSD_DECAYS[check_choice("decay_type", decay_type, tuple(_WSD_DECAYS))]
    if warmup.steps + stable_steps + decay_steps > INT32_MAX:
        raise ValueError("warmup_steps + stable_steps + decay_steps must be <= 2**31 - 1")
    decay = Transition(warmup.end, check_real("end_value", end_value), decay_steps, shape=shape, power=power)
    return Join((warmup, Constant(warmup.end), decay), (warmup.steps, warmup.steps + stable_steps))
