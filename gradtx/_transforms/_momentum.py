"""Momentum: heavy-ball / Nesterov (with torch's dampening) and aggregated momentum."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, map_unzip, safe_increment, zero_count, zeros_like
from gradtx._core.quantize import (
    buffer_zeros,
    check_state_dtype,
    leaf_view,
    pack_like,
    reject_quantized,
    unpack,
)
from gradtx._core.validation import check_beta, check_range, check_same_structure


class MomentumState(NamedTuple):
    count: jax.Array
    trace: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class AddMomentum(WithHyperparams, GradientTransformation):
    decay: HyperParam
    nesterov: bool
    dampening: HyperParam
    mu_dtype: Any = None
    hyperparam_names = ("momentum", "dampening")

    @property
    def momentum(self) -> HyperParam:
        return self.decay

    def init(self, params):
        trace = buffer_zeros(params, self.mu_dtype, zeros_like)
        return MomentumState(zero_count(), trace, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, leaf_view(state.trace), "updates", "state.trace")
        first = state.count == 0
        h = state.hyperparams
        scalars = Scalars(momentum=h["momentum"], one_minus_dampening=1 - h["dampening"])

        def step(g, t):  # an 8-bit trace is decoded, used in float32, re-encoded
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            m = s["momentum"]
            new = jnp.where(first, gc, m * unpack(t).astype(gc.dtype) + s["one_minus_dampening"] * gc)
            out = (gc + m * new) if self.nesterov else new
            return out.astype(g.dtype), pack_like(new, t)

        out, trace = map_unzip(step, 2, updates, state.trace)
        count = safe_increment(state.count)
        return out, MomentumState(count, trace, self.next_hyperparams(state.hyperparams, count))


@shared_docs
def add_momentum(
    decay: HyperParam = 0.9,
    *,
    nesterov: bool = False,
    dampening: HyperParam = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Heavy-ball or Nesterov momentum, in torch's convention.

    .. math::
        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - d)\, g_t, \qquad
        u_t = \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise} \end{cases}

    With ``dampening = 0`` this equals ``optax.trace`` and the course form
    :math:`v \leftarrow \gamma v + \eta g` (for a constant learning rate).
    The Nesterov variant is the Sutskever/Dozat "apply momentum twice" form.

    Args:
        decay: the momentum :math:`\mu` in [0, 1); stored as ``momentum``.
        nesterov: use Nesterov momentum.
        dampening: :math:`d` in [0, 1]; not applied at the first step (as torch).
        mu_dtype: {mu_dtype} ``"int8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised; see docs/memory.md.

    References:
        Polyak, 1964; Sutskever et al., "On the importance of initialization
        and momentum in deep learning", ICML 2013; Dettmers et al., "8-bit
        Optimizers via Block-wise Quantization", ICLR 2022.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.add_momentum(0.5)
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u
        Array([1.5], dtype=float32)
    """
    check_beta("decay", decay)
    check_range("dampening", dampening, 0.0, 1.0)
    check_state_dtype("mu_dtype", mu_dtype, signed=True)
    return AddMomentum(decay, nesterov, dampening, mu_dtype)


class AggMoState(NamedTuple):
    count: jax.Array
    velocities: tuple
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAggMo(WithHyperparams, GradientTransformation):
    betas: tuple[float, ...]
    mu_dtype: Any = None
    hyperparam_names = ("betas",)

    def init(self, params):
        velocities = tuple(zeros_like(params, self.mu_dtype) for _ in self.betas)
        return AggMoState(zero_count(), velocities, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.velocities[0], "updates", "state.velocities[0]")
        betas = Scalars(betas=state.hyperparams["betas"])
        new_v = tuple(
            jax.tree.map(
                lambda g, v, i=i: (
                    betas.for_leaf(g)["betas"][i] * v.astype(as_compute(g).dtype) + as_compute(g)
                ),
                updates,
                vel,
            )
            for i, vel in enumerate(state.velocities)
        )
        k = len(self.betas)
        out = jax.tree.map(lambda u, *vs: (sum(vs) / k).astype(u.dtype), updates, *new_v)
        stored = tuple(
            jax.tree.map(lambda v, old: v.astype(old.dtype), nv, ov)
            for nv, ov in zip(new_v, state.velocities)
        )
        count = safe_increment(state.count)
        return out, AggMoState(count, stored, self.next_hyperparams(state.hyperparams, count))


def scale_by_aggmo(
    betas: tuple[float, ...] = (0.0, 0.9, 0.99), *, mu_dtype: Any = None
) -> GradientTransformation:
    r"""Aggregated momentum: the average of several heavy-ball velocities.

    .. math::
        v^{(i)}_t = \beta_i\, v^{(i)}_{t-1} + g_t, \qquad u_t = \frac{1}{K} \sum_{i=1}^{K} v^{(i)}_t

    Args:
        betas: the K damping coefficients, each in [0, 1); stored as the
            vector hyperparameter ``betas``.
        mu_dtype: dtype of the velocity buffers; ``None`` uses the parameters'.

    References:
        Lucas, Sun, Zemel & Grosse, "Aggregated Momentum: Stability Through
        Passive Damping", ICLR 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_aggmo((0.0, 0.5))
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> u
        Array([1.25], dtype=float32)
    """
    if not isinstance(betas, (tuple, list)):
        raise TypeError(f"betas must be a tuple of damping coefficients, got {betas!r}")
    betas = tuple(float(b) for b in betas)
    if not betas:
        raise ValueError("betas must hold at least one damping coefficient")
    for i, b in enumerate(betas):
        check_beta(f"betas[{i}]", b)
    reject_quantized("scale_by_aggmo", mu_dtype=mu_dtype)
    return ScaleByAggMo(betas, mu_dtype)
