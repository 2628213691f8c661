"""What every schedule shares: the base class, step handling, shapes and argument checks.

Conventions, written once:

- A schedule is a frozen dataclass called as ``schedule(step)``. Equal
  arguments give equal, hashable schedules, so an optimizer holding one can be
  a static argument of ``jax.jit`` without retracing.
- ``step`` may be a Python number or an integer or float array, traced or not.
  Integer steps stay integers until a fraction is needed, so boundary tests are
  exact up to the int32 maximum; negative steps count as step 0.
- Values are computed in float32 (float64 under ``jax_enable_x64``).
- A transition of ``T`` steps that begins at step ``B`` starts from its first
  value at ``B`` and *reaches* its end value at step ``B + T`` (optax's
  convention: divide by ``T``). ``T = 0`` is the limit of short transitions: the
  end value from step ``B`` on.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.docs import docstring_filler
from gradtx._core.numerics import INT32_MAX
from gradtx._core.validation import check_range

F = TypeVar("F", bound=Callable)


def float_dtype() -> jnp.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def as_step(step: Any) -> jax.Array:
    """``step`` as a non-negative array: integers stay (signed) integers, the rest become floats.

    Unsigned steps saturate at the signed maximum, like gradtx's step counters.
    """
    s = jnp.asarray(step)
    if jnp.issubdtype(s.dtype, jnp.unsignedinteger):
        signed = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.int64))
        return jnp.minimum(s, jnp.iinfo(signed).max).astype(signed)
    if jnp.issubdtype(s.dtype, jnp.signedinteger):
        return jnp.maximum(s, 0)
    return jnp.maximum(s.astype(float_dtype()), 0)


def progress(s: jax.Array, begin: int, length: int) -> jax.Array:
    """The fraction in [0, 1] of a ``length``-step transition from ``begin`` done at step ``s``."""
    if length == 0:
        return jnp.where(s >= begin, 1.0, 0.0).astype(float_dtype())
    done = jnp.clip(s - begin, 0, length)  # exact for integer steps
    # Exactly 1 at the end, even where XLA turns the division into a multiplication by 1 / length.
    return jnp.where(done >= length, 1.0, done.astype(float_dtype()) / length).astype(float_dtype())


def elapsed(s: jax.Array, begin: int, per: int, staircase: bool) -> jax.Array:
    """``max(s - begin, 0) / per`` as a float, floored when ``staircase``; ``per >= 1``."""
    done = jnp.maximum(s - begin, 0)
    if staircase:  # floor division, exact at multiples of ``per`` for floats too
        return (done // per).astype(float_dtype())
    return done.astype(float_dtype()) / per


SHAPES = ("polynomial", "cosine", "1-sqrt")


def _power_pair(done: jax.Array, left: jax.Array, power: float) -> tuple[jax.Array, jax.Array]:
    """``(1 - left**power, left**power)`` for ``left = 1 - done``, both without cancellation."""
    if power == 1:
        return done, left
    return -jnp.expm1(power * jnp.log1p(-done)), left**power


def progress_split(shape: str, frac: jax.Array, power: float = 1.0) -> tuple[jax.Array, jax.Array]:
    r"""``(done, left)`` of a transition at ``frac`` in [0, 1]; ``left = 1 - done`` falls from 1 to 0.

    Shapes, by ``left``:

    - ``"polynomial"``: :math:`\text{left} = (1 - f)^p` (``p = 1`` is linear);
    - ``"cosine"``: :math:`\text{left} = \left(\tfrac12 (1 + \cos \pi f)\right)^p = \cos^{2p}(\pi f / 2)`;
    - ``"1-sqrt"``: :math:`\text{left} = 1 - \sqrt f`.

    Each is computed directly (not as one minus the other), so both are exact
    at the ends and accurate near them.
    """
    if shape == "polynomial":
        return _power_pair(frac, 1 - frac, power)
    if shape == "cosine":  # sin^2 and cos^2 of the half angle: accurate at both ends
        half = 0.5 * jnp.pi * frac
        return _power_pair(jnp.sin(half) ** 2, jnp.where(frac >= 1, 0.0, jnp.cos(half) ** 2), power)
    if shape == "1-sqrt":
        root = jnp.sqrt(frac)
        return root, (1 - frac) / (1 + root)
    raise ValueError(f"unknown transition shape {shape!r}; expected one of {SHAPES}")


def anneal(start: Any, end: Any, frac: jax.Array, shape: str = "polynomial", power: float = 1.0) -> jax.Array:
    """From ``start`` (``frac = 0``) to ``end`` (``frac = 1``) along ``shape``.

    Written ``start * left + end * done`` rather than optax's ``end + (start - end) * left``:
    a warmup from 0 to ``peak`` then keeps full relative precision at its first steps.
    """
    done, left = progress_split(shape, frac, power)
    return start * left + end * done


def interpolate(s: jax.Array, knots: tuple[int, ...], values: tuple, shape: str) -> jax.Array:
    """Anneals between ``values[i]`` at ``knots[i]`` and ``values[i + 1]`` at ``knots[i + 1]``.

    ``knots`` are non-decreasing; a zero-length segment is a jump. Before the
    first knot the value is ``values[0]``, after the last ``values[-1]``.
    """
    out = jnp.full(jnp.shape(s), values[0], float_dtype())
    for k0, k1, v0, v1 in zip(knots[:-1], knots[1:], values[:-1], values[1:], strict=True):
        out = jnp.where(s >= k0, anneal(v0, v1, progress(s, k0, k1 - k0), shape), out)
    return out


class ScheduleBase:
    """Base of gradtx schedules: subclasses are frozen dataclasses implementing ``evaluate``."""

    def __call__(self, step: Any) -> jax.Array:
        return jnp.asarray(self.evaluate(as_step(step))).astype(float_dtype())

    def evaluate(self, s: jax.Array) -> jax.Array:
        """The schedule at a non-negative step array ``s`` (see :func:`as_step`)."""
        raise NotImplementedError


# --- shared docstring text ----------------------------------------------------------------

ARGS: dict[str, str] = {
    "init_value": "value at step 0 (and until the transition begins).",
    "end_value": "value reached at the end of the transition and kept after it.",
    "peak_value": "value reached at the end of the warmup.",
    "transition_steps": ("length of the transition, an integer >= 0; 0 jumps to the end value at once."),
    "transition_begin": "step at which the transition starts, an integer >= 0.",
    "warmup_steps": ("length of the linear warmup from ``init_value`` to ``peak_value``, an integer >= 0."),
    "returns": "A schedule: a hashable callable ``step -> jax.Array`` (float32, float64 under x64).",
    "onecycle_convention": (
        "Convention: the final value is reached at step ``transition_steps`` and the\n"
        "    peak at step :math:`\\lfloor p_s T \\rfloor` (optax's; divide by ``T``).\n"
        "    ``torch.optim.lr_scheduler.OneCycleLR(total_steps=N)`` reaches its final\n"
        "    value at step :math:`N - 1` and its peak at :math:`p_s N - 1`: it equals\n"
        "    gradtx with :math:`T = N - 1` when the peak steps agree, i.e. torch's\n"
        "    ``pct_start`` is :math:`(\\lfloor p_s T \\rfloor + 1) / (T + 1)`. So train for\n"
        "    ``transition_steps + 1`` steps to end on the final value."
    ),
}
schedule_docs = docstring_filler(ARGS)
"""Fills ``{name}`` tokens of a schedule's docstring from :data:`ARGS` (argument text written once)."""


# --- argument checks: each raises ValueError naming the argument ---------------------------


def check_steps(name: str, value: Any) -> int:
    """A step count: an integer in [0, 2**31 - 1] (so that int32 steps compare exactly)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not 0 <= value <= INT32_MAX:
        raise ValueError(f"{name} must be in [0, 2**31 - 1], got {value}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A finite real number, returned as a Python float, in the given range."""
    if callable(value) or isinstance(value, (bool, str)) or np.shape(value) != ():
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if math.isinf(v):
        raise ValueError(f"{name} must be finite, got {v}")
    check_range(name, v, low, high, low_open=low_open, high_open=high_open)
    return v


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_boundaries(name: str, boundaries_and_scales: Any) -> tuple[tuple[int, float], ...]:
    """``{step: scale}`` (or ``(step, scale)`` pairs) as sorted pairs; scales >= 0."""
    if boundaries_and_scales is None:
        return ()
    items = (
        boundaries_and_scales.items() if isinstance(boundaries_and_scales, dict) else boundaries_and_scales
    )
    try:
        pairs = [(check_steps(f"{name} step", b), check_real(f"{name} scale", s, 0.0)) for b, s in items]
    except (TypeError, ValueError) as e:
        if isinstance(e, ValueError) and name in str(e):
            raise
        raise ValueError(f"{name} must be a dict {{step: scale}}, got {boundaries_and_scales!r}") from None
    steps = [b for b, _ in pairs]
    if len(set(steps)) != len(steps):
        raise ValueError(f"{name} repeats a step: {sorted(steps)}")
    return tuple(sorted(pairs))
