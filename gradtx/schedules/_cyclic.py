"""Schedules that go up and down: one-cycle, cosine warm restarts (SGDR) and cyclical rates."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from gradtx.schedules._common import (
    ScheduleBase,
    anneal,
    check_choice,
    check_real,
    check_steps,
    float_dtype,
    interpolate,
    schedule_docs,
)


def _fraction_of(steps: int, pct: float) -> int:
    """``floor(pct * steps)``, robust to rounding (0.29 * 100 is 29, not 28 as in optax)."""
    return min(steps, math.floor(pct * steps + 1e-9))


@dataclasses.dataclass(frozen=True)
class Knots(ScheduleBase):
    """Anneals between ``values`` placed at ``knots`` (see ``_common.interpolate``)."""

    knots: tuple[int, ...]
    values: tuple[float, ...]
    shape: str

    def evaluate(self, s):
        return interpolate(s, self.knots, self.values, self.shape)


@dataclasses.dataclass(frozen=True)
class Onecycle(ScheduleBase):
    """The one-cycle schedule; ``.momentum`` is its matching momentum schedule."""

    transition_steps: int
    peak_value: float
    pct_start: float
    pct_final: float | None  # None: two phases (cosine_onecycle)
    div_factor: float
    final_div_factor: float
    base_momentum: float
    max_momentum: float

    def _knots(self) -> tuple[int, ...]:
        middle = () if self.pct_final is None else (_fraction_of(self.transition_steps, self.pct_final),)
        return (0, _fraction_of(self.transition_steps, self.pct_start), *middle, self.transition_steps)

    @property
    def _shape(self) -> str:
        return "cosine" if self.pct_final is None else "polynomial"

    def evaluate(self, s):
        initial = self.peak_value / self.div_factor
        middle = () if self.pct_final is None else (initial,)
        values = (initial, self.peak_value, *middle, initial / self.final_div_factor)
        return interpolate(s, self._knots(), values, self._shape)

    @property
    def momentum(self) -> ScheduleBase:
        """The matching momentum: ``max_momentum``, down to ``base_momentum`` at the peak, and back."""
        middle = () if self.pct_final is None else (self.max_momentum,)
        values = (self.max_momentum, self.base_momentum, *middle, self.max_momentum)
        return Knots(self._knots(), values, self._shape)


def _onecycle_args(
    transition_steps, peak_value, pct_start, div_factor, final_div_factor, base_momentum, max_momentum
):
    steps = check_steps("transition_steps", transition_steps)
    if steps == 0:
        raise ValueError("transition_steps must be >= 1, got 0")
    return (
        steps,
        check_real("peak_value", peak_value),
        check_real("pct_start", pct_start, 0.0, 1.0),
        check_real("div_factor", div_factor, 0.0, low_open=True),
        check_real("final_div_factor", final_div_factor, 0.0, low_open=True),
        check_real("base_momentum", base_momentum),
        check_real("max_momentum", max_momentum),
    )


@schedule_docs
def cosine_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    *,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Onecycle:
    r"""One-cycle schedule, cosine annealed; ``.momentum`` is the matching momentum schedule.

    The value rises from :math:`P / d` at step 0 to :math:`P` at step
    :math:`\lfloor p_s T \rfloor`, then falls to :math:`P / (d\, d_f)` at step
    :math:`T` and stays there, each phase along a half cosine
    :math:`v = b + \tfrac{a - b}{2}(1 + \cos \pi f)`. The momentum schedule
    ``sched.momentum`` does the opposite, as ``OneCycleLR(cycle_momentum=True)``:
    ``max_momentum`` -> ``base_momentum`` at the peak -> ``max_momentum``. Pass it
    as SGD's ``momentum`` or Adam's ``b1``.

    Equals ``optax.cosine_onecycle_schedule`` and torch's ``OneCycleLR`` with
    ``anneal_strategy="cos"`` (learning rate and momentum), up to the step
    convention below.

    {onecycle_convention}

    Args:
        transition_steps: :math:`T \ge 1`.
        peak_value: :math:`P`, the maximum.
        pct_start: :math:`p_s \in [0, 1]`, the fraction of ``T`` spent rising.
        div_factor: :math:`d > 0`; the initial value is :math:`P / d`.
        final_div_factor: :math:`d_f > 0`; the final value is :math:`P / (d\, d_f)`.
        base_momentum: the momentum at the peak of the learning rate.
        max_momentum: the momentum at the start and the end.

    Returns:
        A schedule whose ``momentum`` attribute is the momentum schedule.

    References:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", 2017.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.cosine_onecycle(100, peak_value=1.0, pct_start=0.3)
        >>> sched(0), sched(30), sched.momentum(30)
        (Array(0.04, dtype=float32), Array(1., dtype=float32), Array(0.85, dtype=float32))
        >>> tx = gradtx.sgd(sched, momentum=sched.momentum)
    """
    args = _onecycle_args(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor, base_momentum, max_momentum
    )
    return Onecycle(*args[:3], None, *args[3:])


@schedule_docs
def linear_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    *,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Onecycle:
    r"""One-cycle schedule in three linear phases; ``.momentum`` is the matching momentum schedule.

    Linear from :math:`P / d` (step 0) up to :math:`P` (step :math:`\lfloor p_s T \rfloor`),
    down to :math:`P / d` (step :math:`\lfloor p_f T \rfloor`), then to
    :math:`P / (d\, d_f)` (step :math:`T`, and after). ``sched.momentum`` goes
    ``max_momentum`` -> ``base_momentum`` -> ``max_momentum`` and stays there.

    Equals ``optax.linear_onecycle_schedule`` and torch's ``OneCycleLR`` with
    ``anneal_strategy="linear", three_phase=True`` when :math:`p_f` puts the
    second knot at twice the first (torch's phases are symmetric), up to the
    step convention below.
    {convention}
    Args:
        transition_steps: :math:`T \ge 1`.
        peak_value: :math:`P`, the maximum.
        pct_start: :math:`p_s \in [0, 1]`, the fraction of ``T`` spent rising.
        pct_final: :math:`p_f \in [p_s, 1]`, where the value is back at :math:`P / d`.
        div_factor: :math:`d > 0`; the initial value is :math:`P / d`.
        final_div_factor: :math:`d_f > 0`; the final value is :math:`P / (d\, d_f)`.
        base_momentum: the momentum at the peak of the learning rate.
        max_momentum: the momentum at the start and from :math:`p_f T` on.

    Returns:
        A schedule whose ``momentum`` attribute is the momentum schedule.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.linear_onecycle(100, 1.0, pct_start=0.25, pct_final=0.5, div_factor=10)
        >>> sched(0), sched(25), sched(50)
        (Array(0.1, dtype=float32), Array(1., dtype=float32), Array(0.1, dtype=float32))
    """
    args = _onecycle_args(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor, base_momentum, max_momentum
    )
    pct_final = check_real("pct_final", pct_final, 0.0, 1.0)
    if pct_final < args[2]:
        raise ValueError(f"pct_final ({pct_final}) must be >= pct_start ({args[2]})")
    return Onecycle(*args[:3], pct_final, *args[3:])


@dataclasses.dataclass(frozen=True)
class Sgdr(ScheduleBase):
    peak_value: float
    cycle_steps: int
    t_mult: int
    peak_decay: float
    end_value: float
    num_cycles: int | None

    def _cycles(self, s) -> tuple[np.ndarray, np.ndarray]:
        """First step and length of each cycle, for the cycles starting at a step ``s`` can hold."""
        integer = jnp.issubdtype(s.dtype, jnp.integer)
        limit = jnp.iinfo(s.dtype).max if integer else float(jnp.finfo(s.dtype).max)
        starts, lengths = [0], [self.cycle_steps]
        while starts[-1] + lengths[-1] <= limit and (
            self.num_cycles is None or len(starts) < self.num_cycles
        ):
            starts.append(starts[-1] + lengths[-1])
            lengths.append(lengths[-1] * self.t_mult)
        return np.asarray(starts, s.dtype), np.asarray(lengths, np.float64)

    def evaluate(self, s):
        f = float_dtype()
        if self.t_mult == 1:  # a closed form, exact for integer steps (and float remainders)
            t_cur = jnp.remainder(s, self.cycle_steps)
            cycle = (s - t_cur) // self.cycle_steps
            frac = t_cur.astype(f) / self.cycle_steps
            if self.num_cycles is not None:
                frac = jnp.where(cycle >= self.num_cycles, 1.0, frac)
        else:  # at most ~128 cycles fit in any step dtype: look the cycle up
            starts, lengths = self._cycles(s)
            cycle = jnp.searchsorted(jnp.asarray(starts), s, side="right", method="compare_all") - 1
            start, length = jnp.asarray(starts)[cycle], jnp.asarray(lengths, f)[cycle]
            frac = jnp.minimum((s - start).astype(f) / length, 1.0)  # 1 after the last cycle
        peak = self.peak_value * jnp.power(jnp.asarray(self.peak_decay, f), jnp.asarray(cycle).astype(f))
        return anneal(peak, self.end_value, frac, "cosine")


def sgdr(
    peak_value: float,
    cycle_steps: int,
    *,
    t_mult: int = 1,
    peak_decay: float = 1.0,
    end_value: float = 0.0,
    num_cycles: int | None = None,
) -> ScheduleBase:
    r"""Cosine annealing with warm restarts (SGDR), cycles growing by ``t_mult``.

    Cycle :math:`i = 0, 1, \dots` lasts :math:`T_i = T_0 m^i` steps and anneals
    from :math:`P \gamma^i` to :math:`E` along a half cosine,
    :math:`v = E + (P\gamma^i - E)\tfrac12(1 + \cos \pi t_{cur} / T_i)`, then
    restarts (a jump). The cosine divides by :math:`T_i`, so the end value
    itself is never taken before a restart. After ``num_cycles`` cycles the
    value stays at ``end_value``; ``None`` restarts for ever.

    Equals ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult,
    eta_min)`` (which has no peak decay) and ``optax.sgdr_schedule`` with
    cycles ``dict(init_value=P γ^i, peak_value=P γ^i, warmup_steps=0,
    decay_steps=T_i, end_value=E)``. Cycle boundaries are computed exactly for
    integer steps (torch's ``step(epoch)`` uses a floating-point logarithm).

    Args:
        peak_value: :math:`P`, the value at the start of the first cycle.
        cycle_steps: :math:`T_0 \ge 1`, the length of the first cycle.
        t_mult: :math:`m \ge 1`, an integer: each cycle is ``t_mult`` times longer.
        peak_decay: :math:`\gamma \in [0, 1]`, the factor applied to the peak at each restart.
        end_value: :math:`E`, the value each cycle anneals to.
        num_cycles: the number of cycles, or ``None`` for no end.

    Returns:
        A schedule: a hashable callable ``step -> jax.Array``.

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.sgdr(1.0, cycle_steps=10, t_mult=2, peak_decay=0.5)
        >>> [float(sched(t)) for t in (0, 5, 10, 20)]
        [1.0, 0.5, 0.5, 0.25]
    """
    cycle_steps = check_steps("cycle_steps", cycle_steps)
    if cycle_steps == 0:
        raise ValueError("cycle_steps must be >= 1, got 0")
    t_mult = check_steps("t_mult", t_mult)
    if t_mult == 0:
        raise ValueError("t_mult must be an integer >= 1, got 0")
    if num_cycles is not None and check_steps("num_cycles", num_cycles) == 0:
        raise ValueError("num_cycles must be >= 1 or None, got 0")
    return Sgdr(
        check_real("peak_value", peak_value),
        cycle_steps,
        t_mult,
        check_real("peak_decay", peak_decay, 0.0, 1.0),
        check_real("end_value", end_value),
        None if num_cycles is None else int(num_cycles),
    )


@dataclasses.dataclass(frozen=True)
class Cyclic(ScheduleBase):
    base_value: float
    max_value: float
    step_size_up: int
    step_size_down: int
    mode: str
    gamma: float
    base_momentum: float
    max_momentum: float

    def evaluate(self, s):
        f = float_dtype()
        up, total = self.step_size_up, self.step_size_up + self.step_size_down
        k = jnp.remainder(s, total)  # position in the cycle, in [0, total): exact, even for floats
        cycle = ((s - k) // total).astype(f)
        k = k.astype(f)
        rising = k / max(up, 1)
        falling = (total - k) / max(self.step_size_down, 1)
        height = jnp.where(k < up, rising, jnp.where(k == up, 1.0, falling))
        if self.mode == "triangular2":
            height = height * jnp.power(jnp.asarray(0.5, f), cycle)
        elif self.mode == "exp_range":
            height = height * jnp.power(jnp.asarray(self.gamma, f), s.astype(f))
        return self.base_value + (self.max_value - self.base_value) * height

    @property
    def momentum(self) -> ScheduleBase:
        """The momentum schedule cycling the other way, from ``max_momentum`` down to ``base_momentum``."""
        return dataclasses.replace(self, base_value=self.max_momentum, max_value=self.base_momentum)


def cyclic(
    base_value: float,
    max_value: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    *,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Cyclic:
    r"""Cyclical learning rate, as ``torch.optim.lr_scheduler.CyclicLR``; ``.momentum`` cycles the other way.

    Each cycle rises linearly from ``base_value`` to ``max_value`` over
    ``step_size_up`` steps and falls back over ``step_size_down``; the height
    of cycle :math:`c = 0, 1, \dots` is scaled by 1 (``"triangular"``),
    :math:`2^{-c}` (``"triangular2"``) or :math:`\gamma^t` (``"exp_range"``,
    :math:`t` the step). Equals torch's ``CyclicLR`` with the same arguments;
    ``sched.momentum`` equals its ``cycle_momentum=True`` momentum. Optax has no
    equivalent. A zero-length rise or fall is a jump.

    Args:
        base_value: the low end of each cycle.
        max_value: the high end of the first cycle.
        step_size_up: steps spent rising, >= 0.
        step_size_down: steps spent falling, >= 0; ``None`` means ``step_size_up``.
            The cycle length must be >= 1.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: :math:`\gamma \in (0, 1]` for ``"exp_range"``.
        base_momentum: the momentum where the learning rate peaks.
        max_momentum: the momentum where the learning rate is ``base_value``.

    Returns:
        A schedule whose ``momentum`` attribute is the momentum schedule.

    References:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.

    Example:
        >>> import gradtx
        >>> sched = gradtx.schedules.cyclic(0.1, 1.0, step_size_up=10, mode="triangular2")
        >>> sched(10), sched(20), sched(30)
        (Array(1., dtype=float32), Array(0.1, dtype=float32), Array(0.55, dtype=float32))
        >>> sched.momentum(10)
        Array(0.8, dtype=float32)
    """
    up = check_steps("step_size_up", step_size_up)
    down = up if step_size_down is None else check_steps("step_size_down", step_size_down)
    if up + down == 0:
        raise ValueError("step_size_up + step_size_down must be >= 1")
    return Cyclic(
        check_real("base_value", base_value),
        check_real("max_value", max_value),
        up,
        down,
        check_choice("mode", mode, ("triangular", "triangular2", "exp_range")),
        check_real("gamma", gamma, 0.0, 1.0, low_open=True),
        check_real("base_momentum", base_momentum),
        check_real("max_momentum", max_momentum),
    )
