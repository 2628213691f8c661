"""gradtx.schedules and gradtx.reduce_on_plateau.

- parity with optax.schedules and torch.optim.lr_scheduler at every step of a
  sweep (step 0, each boundary and its neighbours, far past the end);
- parity with float64 NumPy references where neither oracle has the schedule;
- degenerate arguments never give NaN or inf; invalid ones raise ValueError
  naming the argument;
- hypothesis properties: bounds, monotonicity, continuity at joins;
- jit with traced steps of every dtype, equality and hashing, use in optimizers;
- reduce_on_plateau against torch's ReduceLROnPlateau and optax.contrib.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

try:  # torch is an optional oracle: its comparisons skip cleanly without it
    import torch
    from torch.optim import lr_scheduler as L
except ImportError:
    torch = L = None

import gradtx
from gradtx import schedules as S

requires_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

INT32_MAX = 2**31 - 1
FAR = [10**6, 10**9, INT32_MAX]


def sweep(last: int) -> list[int]:
    """Every step from 0 to ``last`` (so every boundary and its neighbours) and far past the end."""
    return list(range(last + 1)) + FAR


PAD = 512  # steps are padded to one length, so eager JAX reuses its compiled kernels across tests


def padded(steps) -> tuple[jax.Array, int]:
    steps = np.asarray(list(steps), np.int64)
    assert len(steps) <= PAD
    return jnp.asarray(np.pad(steps, (0, PAD - len(steps))), jnp.int32), len(steps)


def values(schedule: Callable, steps) -> np.ndarray:
    array, n = padded(steps)
    return np.asarray(schedule(array), np.float64)[:n]


# --------------------------------------------------------------------------------------------
# Oracles
# --------------------------------------------------------------------------------------------


def optax_values(schedule: Callable, steps: list[int]) -> np.ndarray:
    array, n = padded(steps)
    return np.asarray(jax.vmap(schedule)(array), np.float64)[:n]


def _torch_optimizer(lr: float = 2.0, momentum: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)


def torch_values(make: Callable, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Learning rate and momentum of scheduler ``make(optimizer)`` at steps 0 .. n - 1."""
    opt = _torch_optimizer()
    sched = make(opt)
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(sched.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    return np.asarray(lrs), np.asarray(moms)


def torch_far(make: Callable, steps: list[int]) -> np.ndarray:
    """The scheduler's learning rate at far steps, from its closed form (no simulation)."""
    out = []
    for step in steps:
        sched = make(_torch_optimizer())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step(epoch) and get_lr() outside step() warn
            if isinstance(sched, L.CosineAnnealingWarmRestarts):
                sched.step(step)
                out.append(sched.get_last_lr()[0])
            else:
                sched.last_epoch = step
                closed = getattr(sched, "_get_closed_form_lr", None)
                out.append((closed() if closed else sched.get_lr())[0])
    return np.asarray(out)


@dataclasses.dataclass(frozen=True)
class TorchCase:
    """A gradtx schedule, the torch scheduler it equals (base lr 2.0), and how far to sweep."""

    id: str
    schedule: Any
    make: Callable
    last: int  # simulate steps 0 .. last
    far: tuple[int, ...] = tuple(FAR)  # steps checked with the closed form; () if none
    momentum: bool = False


def onecycle_pct(transition_steps: int, pct_start: float) -> float:
    """torch's pct_start equal to gradtx's (see the cosine_onecycle docstring)."""
    return (math.floor(pct_start * transition_steps + 1e-9) + 1) / (transition_steps + 1)


TORCH_CASES = [
    TorchCase("LinearLR-up", S.linear(0.5, 2.0, 10), lambda o: L.LinearLR(o, 0.25, 1.0, 10), 25),
    TorchCase("LinearLR-down", S.linear(2.0, 0.2, 7), lambda o: L.LinearLR(o, 1.0, 0.1, 7), 20),
    TorchCase("LinearLR-1", S.linear(1.0, 2.0, 1), lambda o: L.LinearLR(o, 0.5, 1.0, 1), 5),
    TorchCase("PolynomialLR", S.polynomial(2.0, 0.0, 2.0, 20), lambda o: L.PolynomialLR(o, 20, 2.0), 30),
    TorchCase("PolynomialLR-sqrt", S.polynomial(2.0, 0.0, 0.5, 9), lambda o: L.PolynomialLR(o, 9, 0.5), 15),
    TorchCase("ExponentialLR", S.exponential_decay(2.0, 1, 0.9), lambda o: L.ExponentialLR(o, 0.9), 60),
    TorchCase("StepLR", S.exponential_decay(2.0, 7, 0.5, staircase=True), lambda o: L.StepLR(o, 7, 0.5), 40),
    TorchCase(
        "MultiStepLR",
        S.piecewise_constant(2.0, {0: 0.3, 5: 0.3, 12: 0.3}),
        lambda o: L.MultiStepLR(o, [0, 5, 12], 0.3),
        20,
    ),
    TorchCase("ConstantLR", S.piecewise_constant(0.5, {6: 4.0}), lambda o: L.ConstantLR(o, 0.25, 6), 12),
    TorchCase(
        "CosineAnnealingLR",
        S.cosine_decay(2.0, 20, alpha=0.1),
        lambda o: L.CosineAnnealingLR(o, 20, eta_min=0.2),
        20,  # torch's cosine rises again after T_max; gradtx (and optax) hold the end value
        far=(),
    ),
    TorchCase(
        "CosineAnnealingWarmRestarts",
        S.sgdr(2.0, 5, end_value=0.1),
        lambda o: L.CosineAnnealingWarmRestarts(o, 5, 1, eta_min=0.1),
        40,
    ),
    TorchCase(
        "CosineAnnealingWarmRestarts-mult2",
        S.sgdr(2.0, 3, t_mult=2, end_value=0.1),
        lambda o: L.CosineAnnealingWarmRestarts(o, 3, 2, eta_min=0.1),
        100,
        far=(10**6 + 7, 10**9),
    ),
    TorchCase(
        "CyclicLR-triangular",
        S.cyclic(0.2, 2.0, 4, 6),
        lambda o: L.CyclicLR(o, 0.2, 2.0, 4, 6),
        35,
        momentum=True,
    ),
    TorchCase(
        "CyclicLR-triangular2",
        S.cyclic(0.2, 2.0, 5, mode="triangular2", base_momentum=0.7, max_momentum=0.95),
        lambda o: L.CyclicLR(o, 0.2, 2.0, 5, mode="triangular2", base_momentum=0.7, max_momentum=0.95),
        45,
        far=(3001, 5000),  # torch overflows computing 2.0 ** cycle beyond ~1000 cycles
        momentum=True,
    ),
    TorchCase(
        "CyclicLR-exp_range",
        S.cyclic(0.2, 2.0, 3, 1, mode="exp_range", gamma=0.97),
        lambda o: L.CyclicLR(o, 0.2, 2.0, 3, 1, mode="exp_range", gamma=0.97),
        30,
        momentum=True,
    ),
    TorchCase(
        "OneCycleLR-cos",
        S.cosine_onecycle(100, 2.0, 0.3, base_momentum=0.8, max_momentum=0.9),
        lambda o: L.OneCycleLR(
            o, 2.0, 101, pct_start=onecycle_pct(100, 0.3), base_momentum=0.8, max_momentum=0.9
        ),
        100,
        far=(),  # torch raises past total_steps
        momentum=True,
    ),
    TorchCase(
        "OneCycleLR-cos-odd",
        S.cosine_onecycle(37, 2.0, 0.25, div_factor=10.0, final_div_factor=100.0),
        lambda o: L.OneCycleLR(
            o, 2.0, 38, pct_start=onecycle_pct(37, 0.25), div_factor=10.0, final_div_factor=100.0
        ),
        37,
        far=(),
        momentum=True,
    ),
    TorchCase(
        "OneCycleLR-linear-3phase",
        S.linear_onecycle(100, 2.0, 0.3, 0.6),
        lambda o: L.OneCycleLR(
            o, 2.0, 101, pct_start=onecycle_pct(100, 0.3), anneal_strategy="linear", three_phase=True
        ),
        100,
        far=(),
        momentum=True,
    ),
]


@requires_torch
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_parity_torch(case):
    lrs, moms = torch_values(case.make, case.last + 1)
    steps = list(range(case.last + 1))
    np.testing.assert_allclose(values(case.schedule, steps), lrs, rtol=1e-6, atol=1e-7)
    if case.momentum:
        np.testing.assert_allclose(values(case.schedule.momentum, steps), moms, rtol=1e-6, atol=1e-7)
    if case.far:
        far = list(case.far)
        np.testing.assert_allclose(
            values(case.schedule, far), torch_far(case.make, far), rtol=2e-6, atol=1e-7
        )


@requires_torch
@pytest.mark.parametrize(
    "case",
    [
        c
        for c in TORCH_CASES
        if c.id in ("CyclicLR-exp_range", "CosineAnnealingWarmRestarts-mult2", "OneCycleLR-cos")
    ],
    ids=lambda c: c.id,
)
def test_parity_torch_x64(case, x64):
    """In float64, the parity is to rounding: the formulas are the same, not merely close."""
    lrs, _ = torch_values(case.make, case.last + 1)
    steps = jnp.arange(case.last + 1, dtype=jnp.int64)
    out = case.schedule(steps)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), lrs, rtol=1e-12, atol=1e-14)


@dataclasses.dataclass(frozen=True)
class OptaxCase:
    id: str
    schedule: Any
    oracle: Callable
    last: int


OPTAX_CASES = [
    OptaxCase("constant", S.constant(0.3), optax.constant_schedule(0.3), 3),
    OptaxCase("linear", S.linear(1.0, 0.1, 20, 5), optax.linear_schedule(1.0, 0.1, 20, 5), 30),
    OptaxCase("linear-1", S.linear(1.0, 0.1, 1, 3), optax.linear_schedule(1.0, 0.1, 1, 3), 6),
    OptaxCase(
        "polynomial", S.polynomial(1.0, 0.1, 2.5, 20, 5), optax.polynomial_schedule(1.0, 0.1, 2.5, 20, 5), 30
    ),
    OptaxCase(
        "exponential_decay",
        S.exponential_decay(1.0, 10, 0.5, 5),
        optax.exponential_decay(1.0, 10, 0.5, 5),
        40,
    ),
    OptaxCase(
        "exponential_decay-staircase-end",
        S.exponential_decay(1.0, 7, 0.5, 3, staircase=True, end_value=0.05),
        optax.exponential_decay(1.0, 7, 0.5, 3, staircase=True, end_value=0.05),
        40,
    ),
    OptaxCase(
        "exponential_decay-growth-end",
        S.exponential_decay(0.1, 5, 2.0, end_value=3.0),
        optax.exponential_decay(0.1, 5, 2.0, end_value=3.0),
        40,
    ),
    OptaxCase("cosine_decay", S.cosine_decay(1.0, 30), optax.cosine_decay_schedule(1.0, 30), 40),
    OptaxCase(
        "cosine_decay-alpha-exponent",
        S.cosine_decay(2.0, 25, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(2.0, 25, alpha=0.1, exponent=2.0),
        30,
    ),
    OptaxCase(
        "piecewise_constant",
        S.piecewise_constant(1.0, {0: 0.5, 10: 0.1, 20: 3.0}),
        optax.piecewise_constant_schedule(1.0, {0: 0.5, 10: 0.1, 20: 3.0}),
        25,
    ),
    OptaxCase(
        "piecewise_interpolate-linear",
        S.piecewise_interpolate("linear", 1.0, {4: 0.1, 8: 0.01, 15: 2.0}),
        optax.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01, 15: 2.0}),
        20,
    ),
    OptaxCase(
        "piecewise_interpolate-cosine-0",
        S.piecewise_interpolate("cosine", 1.0, {0: 0.5, 9: 0.1, 10: 4.0}),
        optax.piecewise_interpolate_schedule("cosine", 1.0, {0: 0.5, 9: 0.1, 10: 4.0}),
        15,
    ),
    OptaxCase(
        "warmup_constant", S.warmup_constant(0.1, 1.0, 8), optax.warmup_constant_schedule(0.1, 1.0, 8), 12
    ),
    OptaxCase(
        "warmup_cosine_decay",
        S.warmup_cosine_decay(0.0, 1.0, 10, 50, end_value=0.1, exponent=1.5),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 50, end_value=0.1, exponent=1.5),
        55,
    ),
    OptaxCase(
        "warmup_cosine_decay-0-warmup",
        S.warmup_cosine_decay(0.0, 1.0, 0, 20),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 0, 20),
        25,
    ),
    OptaxCase(
        "warmup_exponential_decay",
        S.warmup_exponential_decay(0.0, 1.0, 10, 5, 0.5, 3, staircase=True, end_value=0.1),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.5, 3, staircase=True, end_value=0.1),
        45,
    ),
    OptaxCase("cosine_onecycle", S.cosine_onecycle(100, 1.0), optax.cosine_onecycle_schedule(100, 1.0), 105),
    OptaxCase(
        "cosine_onecycle-odd",
        S.cosine_onecycle(37, 1.0, 0.25, 10.0, 100.0),
        optax.cosine_onecycle_schedule(37, 1.0, 0.25, 10.0, 100.0),
        40,
    ),
    OptaxCase("linear_onecycle", S.linear_onecycle(100, 1.0), optax.linear_onecycle_schedule(100, 1.0), 105),
    OptaxCase(
        "sgdr",
        S.sgdr(1.0, 10, t_mult=2, peak_decay=0.5, end_value=0.01, num_cycles=3),
        optax.sgdr_schedule(
            [
                dict(
                    init_value=0.5**i,
                    peak_value=0.5**i,
                    warmup_steps=0,
                    decay_steps=10 * 2**i,
                    end_value=0.01,
                )
                for i in range(3)
            ]
        ),
        75,
    ),
    OptaxCase(
        "join",
        S.join([S.constant(0.5), S.linear(1.0, 0.0, 10), S.cosine_decay(0.3, 5)], [3, 8]),
        optax.join_schedules(
            [
                optax.constant_schedule(0.5),
                optax.linear_schedule(1.0, 0.0, 10),
                optax.cosine_decay_schedule(0.3, 5),
            ],
            [3, 8],
        ),
        20,
    ),
]


@pytest.mark.parametrize("case", OPTAX_CASES, ids=lambda c: c.id)
def test_parity_optax(case):
    steps = sweep(case.last)
    np.testing.assert_allclose(
        values(case.schedule, steps), optax_values(case.oracle, steps), rtol=1e-6, atol=1e-7
    )


# --------------------------------------------------------------------------------------------
# float64 NumPy references for what neither oracle has
# --------------------------------------------------------------------------------------------


def ref_inverse_time(init, decay_steps, rate, staircase, t):
    p = t // decay_steps if staircase else t / decay_steps
    return init / (1 + rate * p)


def ref_rsqrt_hf(peak, warmup, timescale, t):
    """Hugging Face's get_inverse_sqrt_schedule, times the peak."""
    timescale = timescale or warmup or 10_000
    if t < warmup:
        return peak * t / max(1, warmup)
    return peak / math.sqrt((t + timescale - warmup) / timescale)


def ref_wsd_hf(peak, warmup, stable, decay, min_ratio, decay_type, t):
    """Hugging Face's get_wsd_schedule (linear warmup), times the peak."""
    if t < warmup:
        return peak * t / max(1, warmup)
    if t < warmup + stable:
        return peak
    if t < warmup + stable + decay:
        f = (t - warmup - stable) / max(1, decay)
        r = {"linear": 1 - f, "cosine": 0.5 * (1 + math.cos(math.pi * f)), "1-sqrt": 1 - math.sqrt(f)}[
            decay_type
        ]
        return peak * (r * (1 - min_ratio) + min_ratio)
    return peak * min_ratio


def ref_sgdr(peak, t0, mult, decay, end, t):
    start, length, i = 0, t0, 0
    if mult == 1:
        i = t // t0
        start = i * t0
    while t >= start + length:
        start, length, i = start + length, length * mult, i + 1
    return end + (peak * decay**i - end) * 0.5 * (1 + math.cos(math.pi * (t - start) / length))


def ref_noam(d_model, warmup, t):
    """Vaswani et al.'s learning rate, defined for t >= 1."""
    return d_model**-0.5 * min(t**-0.5, t * warmup**-1.5)


REFERENCE_CASES = [
    (
        "inverse_time",
        S.inverse_time_decay(2.0, 10, 0.5),
        lambda t: ref_inverse_time(2.0, 10, 0.5, False, t),
        30,
    ),
    (
        "inverse_time-staircase",
        S.inverse_time_decay(2.0, 4, 1.5, staircase=True),
        lambda t: ref_inverse_time(2.0, 4, 1.5, True, t),
        30,
    ),
    ("rsqrt", S.rsqrt(1.0, 10), lambda t: ref_rsqrt_hf(1.0, 10, None, t), 40),
    ("rsqrt-timescale", S.rsqrt(1.0, 5, timescale=20), lambda t: ref_rsqrt_hf(1.0, 5, 20, t), 40),
    ("rsqrt-0-warmup", S.rsqrt(1.0, 0), lambda t: ref_rsqrt_hf(1.0, 0, None, t), 10),
    *[
        (
            f"wsd-{kind}",
            S.warmup_stable_decay(2.0, 5, 10, 8, end_value=0.2, decay_type=kind),
            (lambda kind: lambda t: ref_wsd_hf(2.0, 5, 10, 8, 0.1, kind, t))(kind),
            30,
        )
        for kind in ("linear", "cosine", "1-sqrt")
    ],
    (
        "sgdr-mult3-decay",
        S.sgdr(2.0, 2, t_mult=3, peak_decay=0.7, end_value=0.1),
        lambda t: ref_sgdr(2.0, 2, 3, 0.7, 0.1, t),
        90,
    ),
    ("sgdr-decay", S.sgdr(2.0, 6, peak_decay=0.9), lambda t: ref_sgdr(2.0, 6, 1, 0.9, 0.0, t), 40),
]


@pytest.mark.parametrize("name, schedule, ref, last", REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES])
def test_parity_reference(name, schedule, ref, last):
    steps = list(range(last + 1)) + [10**6 + 3, 10**9]
    expected = np.array([ref(t) for t in steps])
    np.testing.assert_allclose(values(schedule, steps), expected, rtol=1e-6, atol=1e-7)


def test_rsqrt_is_noam():
    d_model, warmup = 512, 4000
    peak = (d_model * warmup) ** -0.5
    steps = [1, 2, 1000, 3999, 4000, 4001, 10**5, 10**9]
    expected = [ref_noam(d_model, warmup, t) for t in steps]
    np.testing.assert_allclose(values(S.rsqrt(peak, warmup), steps), expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Conventions where optax and torch differ, and gradtx's own for degenerate arguments
# --------------------------------------------------------------------------------------------


@requires_torch
def test_onecycle_convention_divides_by_steps():
    """gradtx (like optax) reaches the final value at step T; torch's OneCycleLR(total_steps=T) at T - 1."""
    sched = S.cosine_onecycle(10, 1.0, 0.5, div_factor=10.0, final_div_factor=10.0)
    assert float(sched(10)) == pytest.approx(0.01)
    assert float(sched(9)) > 0.01
    lrs, _ = torch_values(
        lambda o: L.OneCycleLR(o, 1.0, 10, pct_start=0.5, div_factor=10.0, final_div_factor=10.0), 10
    )
    assert lrs[9] == pytest.approx(0.01)  # torch's last step is the final value
    assert float(sched(5)) == pytest.approx(1.0)  # the peak at floor(pct_start * T)


def test_pct_start_rounding_is_robust():
    # 0.29 * 100 = 28.999999999999996: optax puts the peak at step 28, gradtx at 29.
    assert float(S.cosine_onecycle(100, 1.0, 0.29)(29)) == pytest.approx(1.0)


@requires_torch
def test_cosine_holds_end_value_where_torch_rises():
    sched = S.cosine_decay(1.0, 10)
    lrs, _ = torch_values(lambda o: L.CosineAnnealingLR(o, 10), 15)
    assert lrs[14] > lrs[10] == pytest.approx(0.0)
    np.testing.assert_allclose(values(sched, range(10, 15)), 0.0, atol=1e-7)


def test_zero_length_transitions_jump_at_once():
    assert values(S.linear(1.0, 0.5, 0, 3), [0, 2, 3, 4]).tolist() == [1.0, 1.0, 0.5, 0.5]
    assert values(S.warmup_constant(0.0, 1.0, 0), [0, 1]).tolist() == [1.0, 1.0]
    assert values(S.cosine_decay(2.0, 0, alpha=0.25), [0, 5]).tolist() == [0.5, 0.5]
    np.testing.assert_allclose(
        values(S.warmup_cosine_decay(0.0, 1.0, 4, 4, 0.1), [3, 4, 5]), [0.75, 0.1, 0.1]
    )
    assert values(S.exponential_decay(1.0, 0, 0.5, 2), [2, 3]).tolist() == [1.0, 0.0]
    assert values(S.exponential_decay(1.0, 0, 0.5, 2, end_value=0.1), [2, 3]).tolist() == pytest.approx(
        [1.0, 0.1]
    )
    assert values(S.inverse_time_decay(1.0, 0, 2.0), [0, 1]).tolist() == [1.0, 0.0]
    np.testing.assert_allclose(values(S.warmup_stable_decay(1.0, 0, 0, 0, end_value=0.5), [0, 1]), 0.5)
    assert values(S.piecewise_constant(1.0, {0: 0.5}), [0]).tolist() == [0.5]
    # A rise of 0 steps: each cycle starts at the top (torch's CyclicLR divides by zero).
    np.testing.assert_allclose(values(S.cyclic(0.2, 2.0, 0, 4), [0, 1, 4, 5]), [2.0, 1.55, 2.0, 1.55])


DEGENERATE = {
    "linear-0": S.linear(1.0, 0.0, 0),
    "linear-1": S.linear(1.0, 0.0, 1),
    "polynomial-0": S.polynomial(1.0, 0.0, 3.0, 0),
    "polynomial-1": S.polynomial(1.0, 0.0, 0.5, 1, 1),
    "exponential_decay-0": S.exponential_decay(1.0, 0, 0.5),
    "exponential_decay-0-growth": S.exponential_decay(0.0, 0, 3.0),
    "exponential_decay-1-growth": S.exponential_decay(2.0, 1, 3.0),
    "exponential_decay-rate0": S.exponential_decay(1.0, 1, 0.0, staircase=True),
    "exponential_decay-rate0-0": S.exponential_decay(1.0, 0, 0.0),
    "cosine_decay-0": S.cosine_decay(1.0, 0),
    "cosine_decay-1": S.cosine_decay(1.0, 1, exponent=0.5),
    "inverse_time_decay-0": S.inverse_time_decay(1.0, 0, 1.0),
    "inverse_time_decay-0-rate0": S.inverse_time_decay(1.0, 0, 0.0),
    "piecewise_constant-at-0": S.piecewise_constant(1.0, {0: 0.0}),
    "piecewise_constant-empty": S.piecewise_constant(1.0),
    "piecewise_interpolate-at-0": S.piecewise_interpolate("cosine", 1.0, {0: 0.5, 1: 0.0}),
    "piecewise_interpolate-empty": S.piecewise_interpolate("linear", 1.0, {}),
    "warmup_constant-0": S.warmup_constant(0.0, 1.0, 0),
    "warmup_cosine_decay-0-0": S.warmup_cosine_decay(0.0, 1.0, 0, 0),
    "warmup_cosine_decay-1-1": S.warmup_cosine_decay(0.0, 1.0, 1, 1),
    "warmup_cosine_decay-peak0": S.warmup_cosine_decay(0.0, 0.0, 1, 2, end_value=0.1),
    "warmup_exponential_decay-0": S.warmup_exponential_decay(0.0, 1.0, 0, 0, 0.5),
    "rsqrt-0": S.rsqrt(1.0, 0),
    "rsqrt-1": S.rsqrt(1.0, 1, timescale=1),
    "wsd-0": S.warmup_stable_decay(1.0, 0, 0, 0),
    "wsd-1": S.warmup_stable_decay(1.0, 1, 0, 1, decay_type="1-sqrt"),
    "cosine_onecycle-1": S.cosine_onecycle(1, 1.0),
    "cosine_onecycle-pct0": S.cosine_onecycle(10, 1.0, 0.0),
    "cosine_onecycle-pct1": S.cosine_onecycle(10, 1.0, 1.0),
    "linear_onecycle-1": S.linear_onecycle(1, 1.0, 0.5, 0.5),
    "sgdr-1": S.sgdr(1.0, 1),
    "sgdr-1-mult2": S.sgdr(1.0, 1, t_mult=2, peak_decay=0.0),
    "sgdr-1-cycle": S.sgdr(1.0, 1, num_cycles=1),
    "cyclic-1": S.cyclic(0.0, 1.0, 1, 0),
    "cyclic-0-up": S.cyclic(0.0, 1.0, 0, 1, mode="triangular2"),
    "cyclic-exp_range": S.cyclic(0.0, 1.0, 1, mode="exp_range", gamma=1e-30),
    "join-at-0": S.join([S.constant(1.0), S.linear(0.0, 1.0, 0)], [0]),
}

EXTREME_STEPS = [0, 1, 2, 3, 10**6, 10**9, INT32_MAX]


@pytest.mark.parametrize("schedule", DEGENERATE.values(), ids=DEGENERATE.keys())
def test_degenerate_arguments_stay_finite(schedule):
    ints, _ = padded(EXTREME_STEPS + [-5, -1])
    for steps in (ints, ints.astype(jnp.float32)):
        out = schedule(steps)
        assert np.all(np.isfinite(np.asarray(out))), (schedule, steps, out)
        assert out.dtype == jnp.float32


def test_negative_steps_count_as_zero():
    sched = S.warmup_cosine_decay(0.1, 1.0, 10, 100)
    assert values(sched, [-3]).tolist() == values(sched, [0]).tolist()


INVALID = [
    (lambda: S.constant(float("nan")), "value"),
    (lambda: S.constant("a"), "value"),
    (lambda: S.linear(1.0, 0.0, -1), "transition_steps"),
    (lambda: S.linear(1.0, 0.0, 2.5), "transition_steps"),
    (lambda: S.linear(1.0, 0.0, 10, -1), "transition_begin"),
    (lambda: S.linear(1.0, float("inf"), 10), "end_value"),
    (lambda: S.linear(1.0, 0.0, 2**31), "transition_steps"),
    (lambda: S.polynomial(1.0, 0.0, 0.0, 10), "power"),
    (lambda: S.polynomial(1.0, 0.0, -1.0, 10), "power"),
    (lambda: S.exponential_decay(1.0, 10, -0.5), "decay_rate"),
    (lambda: S.exponential_decay(1.0, 10, 0.5, end_value=float("nan")), "end_value"),
    (lambda: S.cosine_decay(1.0, -5), "decay_steps"),
    (lambda: S.cosine_decay(1.0, 5, exponent=0.0), "exponent"),
    (lambda: S.inverse_time_decay(1.0, 10, -1.0), "decay_rate"),
    (lambda: S.piecewise_constant(1.0, {5: -0.1}), "boundaries_and_scales"),
    (lambda: S.piecewise_constant(1.0, {-5: 0.1}), "boundaries_and_scales"),
    (lambda: S.piecewise_constant(1.0, [(5, 0.1), (5, 0.2)]), "boundaries_and_scales"),
    (lambda: S.piecewise_constant(1.0, 3), "boundaries_and_scales"),
    (lambda: S.piecewise_interpolate("cubic", 1.0, {}), "interpolate_type"),
    (lambda: S.warmup_cosine_decay(0.0, 1.0, 10, 5), "decay_steps"),
    (lambda: S.warmup_cosine_decay(0.0, 1.0, -1, 5), "warmup_steps"),
    (lambda: S.warmup_exponential_decay(0.0, 1.0, 10, 5, -1.0), "decay_rate"),
    (lambda: S.rsqrt(1.0, 10, timescale=0), "timescale"),
    (lambda: S.warmup_stable_decay(1.0, 1, 1, 1, decay_type="step"), "decay_type"),
    (lambda: S.warmup_stable_decay(1.0, 2**30, 2**30, 2**30), "decay_steps"),
    (lambda: S.cosine_onecycle(0, 1.0), "transition_steps"),
    (lambda: S.cosine_onecycle(10, 1.0, 1.5), "pct_start"),
    (lambda: S.cosine_onecycle(10, 1.0, div_factor=0.0), "div_factor"),
    (lambda: S.linear_onecycle(10, 1.0, 0.5, 0.4), "pct_final"),
    (lambda: S.linear_onecycle(10, 1.0, final_div_factor=-1.0), "final_div_factor"),
    (lambda: S.sgdr(1.0, 0), "cycle_steps"),
    (lambda: S.sgdr(1.0, 10, t_mult=1.5), "t_mult"),
    (lambda: S.sgdr(1.0, 10, t_mult=0), "t_mult"),
    (lambda: S.sgdr(1.0, 10, peak_decay=1.5), "peak_decay"),
    (lambda: S.sgdr(1.0, 10, num_cycles=0), "num_cycles"),
    (lambda: S.cyclic(0.1, 1.0, 0, 0), "step_size"),
    (lambda: S.cyclic(0.1, 1.0, 10, mode="sine"), "mode"),
    (lambda: S.cyclic(0.1, 1.0, 10, mode="exp_range", gamma=1.5), "gamma"),
    (lambda: S.join([], []), "schedules"),
    (lambda: S.join([S.constant(1.0), 3.0], [1]), "schedules"),
    (lambda: S.join([S.constant(1.0), S.constant(2.0)], []), "boundaries"),
    (lambda: S.join([S.constant(1.0)] * 3, [5, 2]), "boundaries"),
    (lambda: gradtx.reduce_on_plateau(factor=1.0), "factor"),
    (lambda: gradtx.reduce_on_plateau(factor=0.0), "factor"),
    (lambda: gradtx.reduce_on_plateau(patience=-1), "patience"),
    (lambda: gradtx.reduce_on_plateau(cooldown=-1), "cooldown"),
    (lambda: gradtx.reduce_on_plateau(threshold=-0.1), "threshold"),
    (lambda: gradtx.reduce_on_plateau(threshold=1.0), "threshold"),
    (lambda: gradtx.reduce_on_plateau(threshold_mode="pct"), "threshold_mode"),
    (lambda: gradtx.reduce_on_plateau(mode="best"), "mode"),
    (lambda: gradtx.reduce_on_plateau(min_scale=2.0), "min_scale"),
    (lambda: gradtx.reduce_on_plateau(accumulation_size=0), "accumulation_size"),
]


@pytest.mark.parametrize("make, name", INVALID, ids=[f"{i}-{n}" for i, (_, n) in enumerate(INVALID)])
def test_invalid_arguments_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

PROPERTY_STEPS = np.arange(0, 400)
values_ = st.floats(0.0, 10.0, allow_nan=False, width=32)
lengths = st.integers(0, 120)
TOL = 1e-5


def assert_bounded(v, low, high):
    scale = max(abs(low), abs(high), 1.0)
    assert v.min() >= low - TOL * scale and v.max() <= high + TOL * scale, (v.min(), v.max(), low, high)


def assert_monotone(v, increasing: bool):
    if len(v) < 2:
        return
    diffs = np.diff(v) * (1 if increasing else -1)
    assert diffs.min() >= -TOL * max(np.abs(v).max(), 1.0), diffs.min()


def assert_no_jump(v, max_step):
    """Continuity on integer steps: no step changes the value by more than the steepest slope."""
    assert np.abs(np.diff(v)).max() <= max_step * (1 + 1e-4) + TOL * max(np.abs(v).max(), 1.0)


@given(values_, values_, st.floats(0.1, 5.0), lengths, st.integers(0, 50))
def test_polynomial_bounded_monotone(init, end, power, steps, begin):
    v = values(S.polynomial(init, end, power, steps, begin), PROPERTY_STEPS)
    assert_bounded(v, min(init, end), max(init, end))
    assert_monotone(v, increasing=end >= init)


@given(values_, st.floats(0.0, 1.0), st.floats(0.1, 4.0), lengths)
def test_cosine_decay_bounded_monotone(init, alpha, exponent, steps):
    v = values(S.cosine_decay(init, steps, alpha, exponent), PROPERTY_STEPS)
    assert_bounded(v, alpha * init, init)
    assert_monotone(v, increasing=False)


@given(
    values_, st.integers(0, 30), st.floats(0.0, 1.0), st.integers(0, 30), st.booleans(), st.none() | values_
)
def test_exponential_decay_bounded_monotone(init, steps, rate, begin, staircase, end):
    v = values(S.exponential_decay(init, steps, rate, begin, staircase, end), PROPERTY_STEPS)
    low = 0.0 if end is None else min(end, init)
    assert_bounded(v, low, init if end is None else max(init, end))
    assert_monotone(v, increasing=False)


@given(values_, st.integers(0, 30), st.floats(0.0, 5.0), st.booleans())
def test_inverse_time_decay_bounded_monotone(init, steps, rate, staircase):
    v = values(S.inverse_time_decay(init, steps, rate, staircase), PROPERTY_STEPS)
    assert_bounded(v, 0.0, init)
    assert_monotone(v, increasing=False)


@given(values_, st.dictionaries(st.integers(0, 300), st.floats(0.0, 1.0), max_size=4))
def test_piecewise_constant_decreasing_scales_are_monotone(init, boundaries):
    v = values(S.piecewise_constant(init, boundaries), PROPERTY_STEPS)
    assert_bounded(v, 0.0, init)
    assert_monotone(v, increasing=False)


@given(
    st.sampled_from(["linear", "cosine"]),
    values_,
    st.dictionaries(st.integers(0, 300), st.floats(0.0, 3.0), max_size=4),
)
def test_piecewise_interpolate_bounded_by_its_values(kind, init, boundaries):
    v = values(S.piecewise_interpolate(kind, init, boundaries), PROPERTY_STEPS)
    knots = [init]
    for _, scale in sorted(boundaries.items()):
        knots.append(knots[-1] * scale)
    assert_bounded(v, min(knots), max(knots))


@given(values_, values_, values_, st.integers(0, 100), st.integers(0, 200))
def test_warmup_cosine_decay_properties(init, peak, end, warmup, decay):
    decay_steps = warmup + decay
    v = values(S.warmup_cosine_decay(init, peak, warmup, decay_steps, end), PROPERTY_STEPS)
    assert_bounded(v, min(init, peak, end), max(init, peak, end))
    assert_monotone(v[: warmup + 1], increasing=peak >= init)
    assert_monotone(v[warmup : decay_steps + 1], increasing=end >= peak)
    if warmup <= decay_steps - 1:  # continuous at the join: the value at the boundary is the peak
        assert v[warmup] == pytest.approx(peak, rel=1e-6, abs=1e-6)
    slopes = [abs(peak - init) / max(warmup, 1), math.pi / 2 * abs(peak - end) / max(decay, 1)]
    if warmup and decay:
        assert_no_jump(v, max(slopes))


@given(values_, values_, st.integers(1, 60), st.integers(0, 30), st.floats(0.1, 1.0), st.integers(0, 30))
def test_warmup_exponential_decay_continuous(init, peak, warmup, steps, rate, begin):
    v = values(S.warmup_exponential_decay(init, peak, warmup, steps, rate, begin), PROPERTY_STEPS)
    assert v[warmup] == pytest.approx(peak, rel=1e-6, abs=1e-6)
    assert_monotone(v[warmup:], increasing=False)
    assert_monotone(v[: warmup + 1], increasing=peak >= init)


@given(values_, values_, st.integers(0, 100), st.integers(1, 100))
def test_rsqrt_properties(peak, init, warmup, timescale):
    v = values(S.rsqrt(peak, warmup, init_value=init, timescale=timescale), PROPERTY_STEPS)
    assert_bounded(v, 0.0, max(init, peak))
    assert_monotone(v[warmup:], increasing=False)
    assert v[warmup] == pytest.approx(peak, rel=1e-6, abs=1e-6)
    if warmup:
        assert_no_jump(v, max(abs(peak - init) / warmup, peak / (2 * timescale)))


@given(
    values_,
    values_,
    values_,
    st.integers(0, 80),
    st.integers(0, 80),
    st.integers(0, 80),
    st.sampled_from(["linear", "cosine", "1-sqrt"]),
)
def test_wsd_properties(peak, init, end, warmup, stable, decay, kind):
    sched = S.warmup_stable_decay(
        peak, warmup, stable, decay, init_value=init, end_value=end, decay_type=kind
    )
    v = values(sched, PROPERTY_STEPS)
    assert_bounded(v, min(init, peak, end), max(init, peak, end))
    assert_monotone(v[warmup:], increasing=end >= peak)
    plateau = v[warmup : warmup + stable + (1 if decay else 0)]  # a decay of 0 steps jumps at once
    np.testing.assert_allclose(plateau, peak, rtol=1e-6, atol=1e-6)
    if warmup and decay:
        decay_slope = {"linear": 1 / decay, "cosine": math.pi / 2 / decay, "1-sqrt": 1 / math.sqrt(decay)}[
            kind
        ]
        assert_no_jump(v, max(abs(peak - init) / warmup, abs(peak - end) * decay_slope))


@given(
    st.integers(1, 300), st.floats(0.01, 10.0), st.floats(0.0, 1.0), st.floats(1.0, 50.0), st.floats(1.0, 1e4)
)
def test_cosine_onecycle_properties(steps, peak, pct, div, final_div):
    sched = S.cosine_onecycle(steps, peak, pct, div, final_div)
    v = values(sched, PROPERTY_STEPS)
    top = math.floor(pct * steps + 1e-9)
    assert_bounded(v, peak / div / final_div, peak)
    assert_monotone(v[: top + 1] if top < steps else v[:top], increasing=True)  # pct 1: no fall
    assert_monotone(v[top:], increasing=False)
    m = values(sched.momentum, PROPERTY_STEPS)
    assert_bounded(m, 0.85, 0.95)
    if 0 < top < steps:  # continuous: no jump larger than the steepest half cosine
        slopes = [(peak - peak / div) / top, (peak - peak / div / final_div) / (steps - top)]
        assert_no_jump(v, math.pi / 2 * max(slopes))


@given(st.integers(1, 300), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_linear_onecycle_bounded(steps, pct_start, extra):
    pct_final = pct_start + (1 - pct_start) * extra
    v = values(S.linear_onecycle(steps, 1.0, pct_start, pct_final), PROPERTY_STEPS)
    assert_bounded(v, 1.0 / 25 / 1e4, 1.0)


@given(values_, st.integers(1, 50), st.integers(1, 3), st.floats(0.0, 1.0), values_)
def test_sgdr_bounded_and_monotone_within_cycles(peak, cycle, mult, decay, end):
    v = values(S.sgdr(peak, cycle, t_mult=mult, peak_decay=decay, end_value=end), PROPERTY_STEPS)
    start, length, i = 0, cycle, 0
    while start < len(v):  # cycle i anneals from peak * decay**i towards end
        piece, top = v[start : start + length], peak * decay**i
        assert_bounded(piece, min(top, end), max(top, end))
        assert_monotone(piece, increasing=end > top)
        start, length, i = start + length, length * mult, i + 1


@given(
    values_,
    values_,
    st.integers(0, 30),
    st.integers(0, 30),
    st.sampled_from(["triangular", "triangular2", "exp_range"]),
    st.floats(0.5, 1.0),
)
def test_cyclic_bounded(base, top, up, down, mode, gamma):
    if up + down == 0:
        up = 1
    sched = S.cyclic(base, top, up, down, mode, gamma)
    assert_bounded(values(sched, PROPERTY_STEPS), min(base, top), max(base, top))
    assert_bounded(values(sched.momentum, PROPERTY_STEPS), 0.8, 0.9)


@given(st.integers(0, 10**9), st.sampled_from(list(DEGENERATE) + ["wcd"]))
def test_any_step_is_finite(step, which):
    sched = DEGENERATE.get(which) or S.warmup_cosine_decay(0.0, 1.0, 100, 1000)
    assert np.isfinite(float(sched(step)))


def test_join_is_continuous_when_pieces_meet():
    sched = S.join([S.linear(0.0, 1.0, 10), S.constant(1.0), S.cosine_decay(1.0, 40)], [10, 20])
    v = values(sched, range(0, 80))
    assert_no_jump(v, max(0.1, math.pi / 2 / 40))


# --------------------------------------------------------------------------------------------
# jit, step dtypes, equality
# --------------------------------------------------------------------------------------------

EVERY_SCHEDULE = (
    {c.id: c.schedule for c in OPTAX_CASES}
    | {c.id: c.schedule for c in TORCH_CASES}
    | {c[0]: c[1] for c in REFERENCE_CASES}
)
# One of each kind (each compiles once under jit).
ONE_OF_EACH = {
    name: EVERY_SCHEDULE[name]
    for name in [
        "constant",
        "linear",
        "polynomial",
        "exponential_decay-staircase-end",
        "cosine_decay-alpha-exponent",
        "inverse_time",
        "piecewise_constant",
        "piecewise_interpolate-cosine-0",
        "warmup_constant",
        "warmup_cosine_decay",
        "warmup_exponential_decay",
        "cosine_onecycle",
        "linear_onecycle",
        "sgdr",
        "sgdr-decay",
        "CyclicLR-triangular2",
        "CyclicLR-exp_range",
        "rsqrt",
        "wsd-1-sqrt",
        "join",
    ]
}


@pytest.mark.parametrize("schedule", ONE_OF_EACH.values(), ids=ONE_OF_EACH.keys())
def test_jit_traced_step_and_step_types(schedule):
    steps = [0, 7, 30, 10**9, INT32_MAX]
    expected = values(schedule, steps)
    jitted = jax.jit(schedule)
    tol = dict(rel=1e-6, abs=1e-7 * np.abs(expected).max())  # jit may fuse differently: equal to rounding
    for dtype in (jnp.int32, jnp.uint32):
        assert np.asarray(jitted(jnp.asarray(steps, dtype))) == pytest.approx(expected, **tol)
    for i, step in enumerate(steps[:4]):
        assert float(schedule(step)) == pytest.approx(expected[i], **tol)  # Python int
        assert float(jitted(np.int32(step))) == pytest.approx(expected[i], **tol)
        assert float(schedule(float(step))) == pytest.approx(expected[i], **tol)


def test_int64_and_float64_steps_under_x64(x64):
    sched = S.warmup_cosine_decay(0.0, 1.0, 10, INT32_MAX)
    steps = jnp.asarray([0, 5, 10, INT32_MAX - 1, INT32_MAX, 3 * 10**9, 10**12], jnp.int64)
    out = jax.jit(sched)(steps)
    assert out.dtype == jnp.float64
    assert out[4] == out[5] == out[6] == 0.0 and 0 < out[3] < 1e-15
    np.testing.assert_allclose(out, sched(steps.astype(jnp.float64)), rtol=1e-12, atol=1e-30)
    sgdr = S.sgdr(1.0, 3, t_mult=2)
    big = jnp.asarray([3 * (2**40 - 1), 3 * (2**40 - 1) - 1], jnp.int64)  # a restart and the step before
    np.testing.assert_allclose(sgdr(big), [1.0, 0.0], atol=1e-12)


def test_equal_arguments_give_equal_hashable_schedules():
    a = S.warmup_cosine_decay(0.0, 1e-3, 100, 1000)
    b = S.warmup_cosine_decay(0, 0.001, 100, 1000)
    assert a == b and hash(a) == hash(b)
    assert a != S.warmup_cosine_decay(0.0, 1e-3, 100, 1001)
    assert S.linear(1, 0, 10) == S.polynomial(1.0, 0.0, 1, 10)
    assert S.cosine_onecycle(10, 1.0).momentum == S.cosine_onecycle(10, 1.0).momentum
    for schedule in EVERY_SCHEDULE.values():
        hash(schedule)
    assert gradtx.adam(a) == gradtx.adam(b)
    assert hash(gradtx.adam(a)) == hash(gradtx.adam(b))


def test_static_schedule_does_not_retrace():
    traces = []

    def run(schedule, step):
        traces.append(None)
        return schedule(step)

    run = jax.jit(run, static_argnums=0)
    run(S.cosine_onecycle(100, 1.0), 3)
    run(S.cosine_onecycle(100, 1.0), 4)
    run(S.cosine_onecycle(100, 1.0).momentum, 4)
    assert len(traces) == 2


def test_schedules_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.linear(1.0, 0.0, 10).start = 2.0


# --------------------------------------------------------------------------------------------
# With optimizers
# --------------------------------------------------------------------------------------------


def test_learning_rate_hyperparam_follows_schedule():
    sched = S.warmup_cosine_decay(0.0, 1e-2, 5, 20, end_value=1e-4)
    tx = gradtx.adam(sched)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.tree.map(jnp.ones_like, p), s, p))
    for k in range(25):
        # Equal to float32 rounding at the scale of the peak (jit may fuse sin and cos differently).
        assert float(gradtx.get_hyperparam(state, "learning_rate")) == pytest.approx(
            float(sched(k)), abs=1e-9
        )
        _, state = step(params, state)


def test_onecycle_momentum_drives_sgd_momentum():
    sched = S.cosine_onecycle(20, 0.5)
    tx = gradtx.sgd(sched, momentum=sched.momentum)
    params = jnp.zeros(2)
    state = tx.init(params)
    for k in range(25):
        assert float(gradtx.get_hyperparam(state, "momentum")) == float(sched.momentum(k))
        assert float(gradtx.get_hyperparam(state, "learning_rate")) == float(sched(k))
        _, state = tx.update(jnp.ones(2), state, params)


@requires_torch
def test_sgd_onecycle_matches_torch_training():
    """SGD with one-cycle learning rate and momentum, step for step against torch."""
    T, lr = 30, 0.5
    sched = S.cosine_onecycle(T, lr, 0.3)
    tx = gradtx.sgd(sched, momentum=sched.momentum)
    target = np.linspace(-1, 1, 4)
    params = jnp.zeros(4)
    state = tx.init(params)
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=lr, momentum=0.9)
    tsched = L.OneCycleLR(opt, lr, T + 1, pct_start=onecycle_pct(T, 0.3))
    for _ in range(T + 1):
        grads = params - target
        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
        opt.zero_grad()
        w.grad = w.detach() - torch.as_tensor(target)
        opt.step()
        tsched.step() if tsched.last_epoch < T else None
    np.testing.assert_allclose(np.asarray(params), w.detach().numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# reduce_on_plateau
# --------------------------------------------------------------------------------------------

SCRIPTED_LOSSES = [
    10,
    9,
    9,
    9,
    9,
    9,
    9,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    7,
    7,
    7.5,
    7,
    7,
    7,
    6.9996,
    7,
    7,
    7,
    7,
    7,
]


def random_losses(seed: int, n: int = 120) -> list[float]:
    """A noisy, mostly decreasing loss on a 0.1 grid (so no comparison sits on a threshold)."""
    rng = np.random.default_rng(seed)
    walk = 20 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=n))
    return list(np.round(walk / 10 + 1, 1))


def torch_plateau_lrs(losses, mode="min", base_lr=2.0, **kwargs) -> list[float]:
    opt = _torch_optimizer(base_lr)
    sched = L.ReduceLROnPlateau(opt, mode=mode, eps=0.0, **kwargs)  # gradtx has no eps
    out = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        out.append(sched.get_last_lr()[0])
    return out


def gradtx_plateau_scales(tx, losses, *, update=None) -> tuple[list[float], list[float]]:
    """(scale applied to each update, scale stored after each update)."""
    params = {"w": jnp.zeros(2)}
    state = tx.init(params)
    update = update or tx.update
    applied, stored = [], []
    for loss in losses:
        updates, state = update({"w": jnp.ones(2)}, state, params, value=jnp.float32(loss))
        applied.append(float(updates["w"][0]))
        stored.append(float(gradtx.get_hyperparam(state, "scale")))
    return applied, stored


PLATEAU_CONFIGS = [
    dict(),
    dict(factor=0.5, patience=0),
    dict(factor=0.5, patience=1, cooldown=2),
    dict(factor=0.3, patience=2, cooldown=1, min_scale=0.05),
    dict(factor=0.5, patience=1, threshold=0.15, threshold_mode="abs"),
    dict(factor=0.5, patience=1, threshold=0.02, threshold_mode="rel", cooldown=3),
    dict(factor=0.5, patience=2, mode="max"),
    dict(factor=0.7, patience=1, mode="max", threshold=0.15, threshold_mode="abs", cooldown=1),
]


@requires_torch
@pytest.mark.parametrize("config", PLATEAU_CONFIGS, ids=[str(c) for c in PLATEAU_CONFIGS])
def test_reduce_on_plateau_matches_torch(config):
    tx = gradtx.reduce_on_plateau(**config)
    update = jax.jit(tx.update)  # compiled once, run on every loss sequence
    base_lr = 2.0
    torch_kwargs = {k: v for k, v in config.items() if k != "min_scale"}
    for losses in (SCRIPTED_LOSSES, random_losses(0), random_losses(1)):
        expected = torch_plateau_lrs(
            losses, base_lr=base_lr, min_lr=base_lr * config.get("min_scale", 0.0), **torch_kwargs
        )
        applied, stored = gradtx_plateau_scales(tx, losses, update=update)
        np.testing.assert_allclose(np.asarray(stored) * base_lr, expected, rtol=1e-6)
        # Each update uses the scale stored before it: torch's optimizer.step(), then scheduler.step(loss).
        np.testing.assert_allclose(applied, [1.0] + stored[:-1], rtol=1e-6)
        assert len(set(stored)) > 1  # the sequence does exercise reductions


@requires_torch
def test_reduce_on_plateau_has_no_torch_eps():
    """torch skips reductions smaller than eps=1e-8 (in learning-rate units); gradtx always reduces."""
    losses = [1.0] * 40
    torch_lrs = L.ReduceLROnPlateau(_torch_optimizer(1.0), factor=0.5, patience=0)
    for loss in losses:
        torch_lrs.step(loss)
    _, stored = gradtx_plateau_scales(gradtx.reduce_on_plateau(factor=0.5, patience=0), losses)
    assert torch_lrs.get_last_lr()[0] > 1e-8 > stored[-1] > 0


@pytest.mark.parametrize(
    "config, accumulation_size",
    [
        (dict(factor=0.5, patience=1), 1),
        (dict(factor=0.5, patience=0, cooldown=2, min_scale=0.1), 3),
        (dict(threshold=0.15, threshold_mode="abs", patience=2), 2),
    ],
)
def test_reduce_on_plateau_matches_optax(config, accumulation_size):
    """optax's patience p is gradtx's p - 1, and optax applies the new scale one update earlier."""
    losses = random_losses(3, 90)
    rel = config.get("threshold_mode", "rel") == "rel"
    threshold = config.get("threshold", 1e-4)
    oracle = optax.contrib.reduce_on_plateau(
        factor=config.get("factor", 0.1),
        patience=config["patience"] + 1,
        cooldown=config.get("cooldown", 0),
        rtol=threshold if rel else 0.0,
        atol=0.0 if rel else threshold,
        min_scale=config.get("min_scale", 0.0),
        accumulation_size=accumulation_size,
    )
    state = oracle.init(jnp.zeros(2))
    optax_applied = []
    update = jax.jit(oracle.update)
    for loss in losses:
        updates, state = update(jnp.ones(2), state, value=jnp.float32(loss))
        optax_applied.append(float(updates[0]))
    tx = gradtx.reduce_on_plateau(**config, accumulation_size=accumulation_size)
    _, stored = gradtx_plateau_scales(tx, losses, update=jax.jit(tx.update))
    np.testing.assert_allclose(stored, optax_applied, rtol=1e-6)
    assert len(set(stored)) > 1


def test_reduce_on_plateau_hyperparams_in_state():
    tx = gradtx.reduce_on_plateau(factor=0.5, patience=0)
    state = tx.init(jnp.zeros(1))
    assert sorted(gradtx.get_hyperparams(state)) == [
        "cooldown",
        "factor",
        "min_scale",
        "patience",
        "scale",
        "threshold",
    ]
    state = gradtx.set_hyperparam(state, "scale", 0.25)
    updates, state = tx.update(jnp.ones(1), state, value=1.0)
    assert float(updates[0]) == 0.25  # the value set by hand is used
    _, state = tx.update(jnp.ones(1), state, value=1.0)  # no improvement: halved from 0.25
    assert float(gradtx.get_hyperparam(state, "scale")) == 0.125
    state = gradtx.set_hyperparam(state, "factor", 0.1)
    _, state = tx.update(jnp.ones(1), state, value=1.0)
    assert float(gradtx.get_hyperparam(state, "scale")) == pytest.approx(0.0125)


def test_reduce_on_plateau_in_a_chain_under_jit():
    tx = gradtx.chain(gradtx.adam(1e-2), gradtx.reduce_on_plateau(factor=0.5, patience=2))
    assert tx == gradtx.chain(gradtx.adam(1e-2), gradtx.reduce_on_plateau(factor=0.5, patience=2))
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.zeros(())}
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state, loss):
        traces.append(None)
        grads = jax.tree.map(jnp.ones_like, params)
        updates, state = tx.update(grads, state, params, value=loss)
        return gradtx.apply_updates(params, updates), state

    for loss in [1.0, 1.0, 1.0, 1.0, 1.0]:
        params, state = step(params, state, jnp.float32(loss))
    assert len(traces) == 1
    assert params["w"].dtype == jnp.bfloat16
    assert float(gradtx.get_hyperparam(state, "scale")) == 0.5


def test_reduce_on_plateau_needs_a_scalar_value():
    tx = gradtx.reduce_on_plateau()
    state = tx.init(jnp.zeros(1))
    with pytest.raises(TypeError, match="value"):
        tx.update(jnp.ones(1), state)
    with pytest.raises(ValueError, match="scalar"):
        tx.update(jnp.ones(1), state, value=jnp.ones(2))


def test_reduce_on_plateau_min_scale_and_never_increases():
    tx = gradtx.reduce_on_plateau(factor=0.5, patience=0, min_scale=0.3)
    _, stored = gradtx_plateau_scales(tx, [1.0] * 6)
    assert stored == pytest.approx([1.0, 0.5, 0.3, 0.3, 0.3, 0.3])
    state = gradtx.set_hyperparam(tx.init(jnp.zeros(1)), "scale", 0.1)  # below min_scale by hand
    for loss in [1.0, 1.0, 1.0]:
        _, state = tx.update(jnp.ones(1), state, value=loss)
    assert float(gradtx.get_hyperparam(state, "scale")) == pytest.approx(0.1)
