"""Per-parameter adaptive rescaling: AdaGrad, RMSProp and Adadelta."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    abs_sq,
    as_compute,
    map_unzip,
    real_dtype,
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative, check_same_structure


def ema(new: jax.Array, old: jax.Array, decay: jax.Array, one_minus_decay: jax.Array) -> jax.Array:
    """``(1 - decay) * new + decay * old`` in the dtype of ``new`` (optax's operation order)."""
    return one_minus_decay * new + decay * old.astype(new.dtype)


def decay_scalars(**decays: jax.Array) -> dict[str, jax.Array]:
    """``{name: d, one_minus_name: 1 - d}`` for each decay rate, for :class:`Scalars`."""
    out = {}
    for name, d in decays.items():
        out[name] = d
        out[f"one_minus_{name}"] = 1 - d
    return out


def real_full_like(params: Any, value: float, dtype: Any = None) -> Any:
    """Buffers of squared magnitudes filled with ``value``: real even for complex parameters."""
    return jax.tree.map(lambda p: jnp.full_like(p, value, dtype or real_dtype(p.dtype)), params)


def real_zeros_like(params: Any, dtype: Any = None) -> Any:
    """Zero buffers for squared magnitudes: real even for complex parameters."""
    return real_full_like(params, 0, dtype)


class ScaleByAdagradState(NamedTuple):
    count: jax.Array
    sum_of_squares: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAdagrad(WithHyperparams, GradientTransformation):
    initial_accumulator_value: float
    eps: HyperParam
    nu_dtype: Any = None
    hyperparam_names = ("eps",)

    def init(self, params):
        acc = real_full_like(params, self.initial_accumulator_value, self.nu_dtype)
        return ScaleByAdagradState(zero_count(), acc, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.sum_of_squares, "updates", "state.sum_of_squares")
        scalars = Scalars(eps=state.hyperparams["eps"])

        def step(g, acc):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_acc = acc.astype(real_dtype(gc.dtype)) + abs_sq(gc)
            out = safe_div(gc, jnp.sqrt(new_acc) + s["eps"])
            return out.astype(g.dtype), new_acc.astype(acc.dtype)

        out, acc = map_unzip(step, 2, updates, state.sum_of_squares)
        count = safe_increment(state.count)
        return out, ScaleByAdagradState(count, acc, self.next_hyperparams(state.hyperparams, count))


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: HyperParam = 1e-10, *, nu_dtype: Any = None
) -> GradientTransformation:
    r"""AdaGrad's rescaling by the root of the accumulated squared gradients.

    .. math::
        r_t = r_{t-1} + g_t^2, \qquad u_t = \frac{g_t}{\sqrt{r_t} + \epsilon}

    This is the course's and torch's form (eps outside the root). optax's
    ``scale_by_rss`` puts eps inside it and starts from 0.1.

    Args:
        initial_accumulator_value: :math:`r_0` >= 0 (used at ``init`` only).
        eps: :math:`\epsilon` >= 0.
        nu_dtype: dtype of the accumulator :math:`r`; ``None`` uses each
            parameter's (real) dtype. The update is computed in at least float32.

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
        Learning and Stochastic Optimization", JMLR 2011.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_adagrad()
        >>> tx.update(jnp.array([2.0, -3.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_adagrad", nu_dtype=nu_dtype)
    return ScaleByAdagrad(float(initial_accumulator_value), eps, nu_dtype)


class ScaleByRmsState(NamedTuple):
    count: jax.Array
    nu: Any
    mu: Any  # running mean of the gradient; None unless centered
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByRms(WithHyperparams, GradientTransformation):
    decay: HyperParam
    eps: HyperParam
    eps_in_sqrt: bool
    centered: bool
    initial_scale: float
    nu_dtype: Any = None
    mu_dtype: Any = None
    hyperparam_names = ("decay", "eps")

    def init(self, params):
        nu = real_full_like(params, self.initial_scale, self.nu_dtype)
        mu = zeros_like(params, self.mu_dtype) if self.centered else None
        return ScaleByRmsState(zero_count(), nu, mu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.nu, "updates", "state.nu")
        h = state.hyperparams
        scalars = Scalars(eps=h["eps"], **decay_scalars(decay=h["decay"]))
        mu_old = state.mu if self.centered else jax.tree.map(lambda _: None, state.nu)

        def step(g, nu, mu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_nu = ema(abs_sq(gc), nu, s["decay"], s["one_minus_decay"])
            var = new_nu
            new_mu = None
            if self.centered:
                new_mu = ema(gc, mu, s["decay"], s["one_minus_decay"])
                var = jnp.maximum(new_nu - abs_sq(new_mu), 0)
                new_mu = new_mu.astype(mu.dtype)
            den = jnp.sqrt(var + s["eps"]) if self.eps_in_sqrt else jnp.sqrt(var) + s["eps"]
            return safe_div(gc, den).astype(g.dtype), new_nu.astype(nu.dtype), new_mu

        if self.centered:
            out, nu, mu = map_unzip(step, 3, updates, state.nu, mu_old)
        else:
            out, nu = map_unzip(lambda g, n: step(g, n, None)[:2], 2, updates, state.nu)
            mu = None
        count = safe_increment(state.count)
        return out, ScaleByRmsState(count, nu, mu, self.next_hyperparams(state.hyperparams, count))


def scale_by_rms(
    decay: HyperParam = 0.9,
    eps: HyperParam = 1e-8,
    *,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    initial_scale: float = 0.0,
    nu_dtype: Any = None,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""RMSProp's rescaling by a leaky average of squared gradients.

    .. math::
        \nu_t = \rho\,\nu_{t-1} + (1-\rho)\,g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{\nu_t + \epsilon}} \;\text{or}\; \frac{g_t}{\sqrt{\nu_t} + \epsilon}

    With ``centered=True`` the variance :math:`\nu_t - m_t^2` replaces
    :math:`\nu_t`, where :math:`m_t` is the leaky mean of the gradients.

    Args:
        decay: :math:`\rho` in [0, 1).
        eps: :math:`\epsilon` >= 0.
        eps_in_sqrt: put eps inside the root (the course's and optax's form);
            ``False`` puts it outside (torch's form).
        centered: divide by the estimated standard deviation instead of the RMS.
        initial_scale: :math:`\nu_0` (used at ``init`` only).
        nu_dtype: dtype of :math:`\nu`; ``None`` uses each parameter's (real) dtype.
        mu_dtype: dtype of the centered form's mean; ``None`` uses each parameter's dtype.

    References:
        Tieleman & Hinton, Lecture 6.5 of "Neural Networks for Machine
        Learning", 2012; Graves, "Generating Sequences With Recurrent Neural
        Networks", 2013 (centered form).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_rms(decay=0.75, eps=0.0)
        >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
        Array([2.], dtype=float32)
    """
    check_beta("decay", decay)
    check_nonnegative("eps", eps)
    check_nonnegative("initial_scale", initial_scale)
    reject_quantized("scale_by_rms", nu_dtype=nu_dtype, mu_dtype=mu_dtype)
    return ScaleByRms(decay, eps, eps_in_sqrt, centered, float(initial_scale), nu_dtype, mu_dtype)


class ScaleByAdadeltaState(NamedTuple):
    count: jax.Array
    e_g: Any  # leaky average of squared gradients
    e_x: Any  # leaky average of squared updates
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAdadelta(WithHyperparams, GradientTransformation):
    rho: HyperParam
    eps: HyperParam
    nu_dtype: Any = None
    hyperparam_names = ("rho", "eps")

    def init(self, params):
        e_g, e_x = real_zeros_like(params, self.nu_dtype), real_zeros_like(params, self.nu_dtype)
        return ScaleByAdadeltaState(zero_count(), e_g, e_x, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.e_g, "updates", "state.e_g")
        h = state.hyperparams
        scalars = Scalars(eps=h["eps"], **decay_scalars(rho=h["rho"]))

        def step(g, e_g, e_x):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_e_g = ema(abs_sq(gc), e_g, s["rho"], s["one_minus_rho"])
            # safe_div: with eps = 0 a zero gradient gives 0, not 0/0 = NaN
            delta = (
                safe_div(jnp.sqrt(e_x.astype(new_e_g.dtype) + s["eps"]), jnp.sqrt(new_e_g + s["eps"])) * gc
            )
            new_e_x = ema(abs_sq(delta), e_x, s["rho"], s["one_minus_rho"])
            return delta.astype(g.dtype), new_e_g.astype(e_g.dtype), new_e_x.astype(e_x.dtype)

        out, e_g, e_x = map_unzip(step, 3, updates, state.e_g, state.e_x)
        count = safe_increment(state.count)
        return out, ScaleByAdadeltaState(count, e_g, e_x, self.next_hyperparams(state.hyperparams, count))


def scale_by_adadelta(
    rho: HyperParam = 0.9, eps: HyperParam = 1e-6, *, nu_dtype: Any = None
) -> GradientTransformation:
    r"""Adadelta's unit-correcting rescaling (no learning rate needed).

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
        \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
        E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho) \Delta_t^2

    Args:
        rho: :math:`\rho` in [0, 1).
        eps: :math:`\epsilon` > 0 (with eps = 0 the first update is 0).
        nu_dtype: dtype of both squared averages; ``None`` uses each
            parameter's (real) dtype.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_adadelta(rho=0.0, eps=1.0)
        >>> tx.update(jnp.array([0.0]), tx.init(jnp.zeros(1)))[0]
        Array([0.], dtype=float32)
    """
    check_beta("rho", rho)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_adadelta", nu_dtype=nu_dtype)
    return ScaleByAdadelta(rho, eps, nu_dtype)
