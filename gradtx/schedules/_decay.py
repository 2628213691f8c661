"""Single transitions: constant, linear, polynomial, cosine, exponential and inverse-time decay."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from gradtx.schedules._common import (
    ScheduleBase,
    anneal,
    check_real,
    check_steps,
    elapsed,
    float_dtype,
    progress,
    schedule_docs,
)


@dataclasses.dataclass(frozen=True)
class Constant(ScheduleBase):
    value: float

    def evaluate(self, s):
        return jnp.full(jnp.shape(s), self.value, float_dtype())


@dataclasses.dataclass(frozen=True)
class Transition(ScheduleBase):
    """``start`` until ``begin``, then a ``shape``-d transition reaching ``end`` at ``begin + steps``."""

    start: float
    end: float
    steps: int
    begin: int = 0
    shape: str = "polynomial"  # one of _common.SHAPES
    power: float = 1.0

    def evaluate(self, s):
        return anneal(self.start, self.end, progress(s, self.begin, self.steps), self.shape, self.power)


def constant(value: float) -> ScheduleBase:
    """The schedule that is ``value`` at every step (``optax.constant_schedule``).

    Args:
        value: the constant.

    Returns:
        A schedule.

    Example:
        >>> import gradtx
        >>> gradtx.schedules.constant(0.1)(1000)
        Array(0.1, dtype=float32)
    """
    return Constant(check_real("value", value))


@schedule_docs
def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> ScheduleBase:
    r"""Polynomial transition from ``init_value`` to ``end_value``.

    .. math::
        v(t) = E + (I - E)\left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{p}

    Equals ``optax.polynomial_schedule`` and, with ``end_value=0``,
    ``torch.optim.lr_scheduler.PolynomialLR(total_iters=T, power=p)`` times the
    base learning rate. Unlike optax, ``transition_steps=0`` jumps to
    ``end_value`` at ``transition_begin`` (optax then holds ``init_value`` forever).

    Args:
        init_value: {init_value}
        end_value: {end_value}
        power: the exponent :math:`p > 0`.
        transition_steps: {transition_steps}
        transition_begin: {transition_begin}

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.polynomial(1.0, 0.0, power=2, transition_steps=10)
        >>> sched(5)
        Array(0.25, dtype=float32)
    """
    return Transition(
        check_real("init_value", init_value),
        check_real("end_value", end_value),
        check_steps("transition_steps", transition_steps),
        check_steps("transition_begin", transition_begin),
        "polynomial",
        check_real("power", power, 0.0, low_open=True),
    )


@schedule_docs
def linear(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> ScheduleBase:
    r"""Linear transition from ``init_value`` to ``end_value`` (:func:`polynomial` with ``power=1``).

    .. math::
        v(t) = I + (E - I)\,\frac{\min(\max(t - B, 0), T)}{T}

    Equals ``optax.linear_schedule`` and ``torch.optim.lr_scheduler.LinearLR``
    (``start_factor * lr`` to ``end_factor * lr`` over ``total_iters = T``).
    ``transition_steps=0`` jumps to ``end_value`` at ``transition_begin``.

    Args:
        init_value: {init_value}
        end_value: {end_value}
        transition_steps: {transition_steps}
        transition_begin: {transition_begin}

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.linear(1.0, 0.5, transition_steps=10, transition_begin=5)
        >>> sched(0), sched(10), sched(100)
        (Array(1., dtype=float32), Array(0.75, dtype=float32), Array(0.5, dtype=float32))
    """
    return polynomial(init_value, end_value, 1.0, transition_steps, transition_begin)


@schedule_docs
def cosine_decay(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> ScheduleBase:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    .. math::
        v(t) = \alpha I + (1 - \alpha) I \left[\tfrac12\left(1 + \cos\frac{\pi \min(t, T)}{T}\right)\right]^p

    Equals ``optax.cosine_decay_schedule``, and
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=alpha * lr)``
    for :math:`t \le T`: both divide by ``T``. Past ``T`` gradtx holds the end
    value (like optax), where torch's closed form keeps following the cosine
    back up. ``decay_steps=0`` is the end value at every step (optax raises).

    Args:
        init_value: {init_value}
        decay_steps: :math:`T`, an integer >= 0.
        alpha: the final value as a fraction of ``init_value``.
        exponent: :math:`p > 0`, sharpening (> 1) or flattening (< 1) the cosine.

    Returns:
        {returns}

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.cosine_decay(1.0, decay_steps=100, alpha=0.1)
        >>> sched(0), sched(50), sched(10**9)
        (Array(1., dtype=float32), Array(0.55, dtype=float32), Array(0.1, dtype=float32))
    """
    init_value = check_real("init_value", init_value)
    alpha = check_real("alpha", alpha)
    return Transition(
        init_value,
        alpha * init_value,
        check_steps("decay_steps", decay_steps),
        0,
        "cosine",
        check_real("exponent", exponent, 0.0, low_open=True),
    )


@dataclasses.dataclass(frozen=True)
class ExponentialDecay(ScheduleBase):
    init_value: float
    transition_steps: int
    decay_rate: float
    transition_begin: int = 0
    staircase: bool = False
    end_value: float | None = None

    def evaluate(self, s):
        f = float_dtype()
        if self.transition_steps == 0:  # the limit of ever faster decay
            p = jnp.where(s > self.transition_begin, jnp.inf, 0.0).astype(f)
        else:
            p = elapsed(s, self.transition_begin, self.transition_steps, self.staircase)
        # Growth (decay_rate > 1) is capped so that the value stays finite, even times 0.
        factor = jnp.minimum(jnp.power(jnp.asarray(self.decay_rate, f), p), jnp.sqrt(jnp.finfo(f).max))
        out = self.init_value * factor
        if self.end_value is not None:
            out = (jnp.maximum if self.decay_rate < 1 else jnp.minimum)(out, self.end_value)
        return out


@schedule_docs
def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> ScheduleBase:
    r"""Exponential decay, continuous or in stairs, optionally bounded by ``end_value``.

    .. math::
        v(t) = I \cdot r^{\max(t - B, 0) / T}
        \quad(\text{exponent floored when } \texttt{staircase})

    clipped below at ``end_value`` when :math:`r < 1` (above when :math:`r > 1`).
    Equals ``optax.exponential_decay``;
    ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` is ``transition_steps=1``
    and ``StepLR(step_size, gamma)`` is ``staircase=True,
    transition_steps=step_size``. ``transition_steps=0`` is the limit of
    instant decay: ``init_value`` up to step ``B``, then ``end_value`` (or 0
    for :math:`r < 1`); ``decay_rate=0`` gives 0 after the first transition
    (optax turns both into a constant). Growth (:math:`r > 1`) without
    ``end_value`` saturates at a large finite value instead of overflowing.

    Args:
        init_value: {init_value}
        transition_steps: :math:`T`, the number of steps per factor ``decay_rate``, >= 0.
        decay_rate: :math:`r \ge 0`.
        transition_begin: {transition_begin}
        staircase: decay in whole steps of ``transition_steps``.
        end_value: the lower bound when :math:`r < 1`, the upper bound when
            :math:`r > 1`; ``None`` for no bound.

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2)
        >>> [float(sched(t)) for t in (9, 10, 25, 10**9)]
        [1.0, 0.5, 0.25, 0.2]
    """
    return ExponentialDecay(
        check_real("init_value", init_value),
        check_steps("transition_steps", transition_steps),
        check_real("decay_rate", decay_rate, 0.0),
        check_steps("transition_begin", transition_begin),
        bool(staircase),
        None if end_value is None else check_real("end_value", end_value),
    )


@dataclasses.dataclass(frozen=True)
class InverseTimeDecay(ScheduleBase):
    init_value: float
    decay_steps: int
    decay_rate: float
    staircase: bool = False

    def evaluate(self, s):
        if self.decay_steps == 0:  # the limit of ever faster decay
            after = self.init_value if self.decay_rate == 0 else 0.0
            return jnp.where(s > 0, after, self.init_value)
        return self.init_value / (1 + self.decay_rate * elapsed(s, 0, self.decay_steps, self.staircase))


@schedule_docs
def inverse_time_decay(
    init_value: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> ScheduleBase:
    r"""Inverse-time decay, as Keras' ``InverseTimeDecay``.

    .. math::
        v(t) = \frac{I}{1 + r\, t / T} \quad(t / T \text{ floored when } \texttt{staircase})

    Neither optax nor torch has it (torch's ``LambdaLR`` can express it).
    ``decay_steps=0`` is the limit: ``init_value`` at step 0, then 0 (if :math:`r > 0`).

    Args:
        init_value: {init_value}
        decay_steps: :math:`T`, an integer >= 0.
        decay_rate: :math:`r \ge 0`.
        staircase: decay in whole steps of ``decay_steps``.

    Returns:
        {returns}

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.inverse_time_decay(1.0, decay_steps=10, decay_rate=1.0)
        >>> sched(10), sched(30)
        (Array(0.5, dtype=float32), Array(0.25, dtype=float32))
    """
    return InverseTimeDecay(
        check_real("init_value", init_value),
        check_steps("decay_steps", decay_steps),
        check_real("decay_rate", decay_rate, 0.0),
        bool(staircase),
    )
