"""Sign-based and recent adaptive rescalings: Rprop, Adan, ADOPT, AdEMAMix."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    abs_sq,
    as_compute,
    bias_correction,
    map_unzip,
    real_dtype,
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import (
    check_beta,
    check_nonnegative,
    check_range,
    check_same_structure,
    reject_complex,
)
from gradtx._transforms._adam import MomentsState
from gradtx._transforms._adaptive import decay_scalars, ema, real_zeros_like


class ScaleByRpropState(NamedTuple):
    count: jax.Array
    step_scales: Any  # per element: the step size divided by the learning rate
    prev_grads: Any  # the previous gradient, zeroed where its sign flipped
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByRprop(WithHyperparams, GradientTransformation):
    learning_rate: HyperParam
    eta_minus: HyperParam
    eta_plus: HyperParam
    min_step_size: HyperParam
    max_step_size: HyperParam
    hyperparam_names = ("learning_rate", "eta_minus", "eta_plus", "min_step_size", "max_step_size")

    def init(self, params):
        reject_complex(params, "scale_by_rprop", "Rprop compares gradient signs")
        scales = jax.tree.map(lambda p: jnp.ones_like(p, real_dtype(p.dtype)), params)
        return ScaleByRpropState(zero_count(), scales, zeros_like(params), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.prev_grads, "updates", "state.prev_grads")
        h = state.hyperparams
        lr = h["learning_rate"]
        positive = lr > 0  # with a zero rate, keep the scales (min/lr would be inf)
        scalars = Scalars(
            lr=lr,
            eta_minus=h["eta_minus"],
            eta_plus=h["eta_plus"],
            lo=jnp.where(positive, h["min_step_size"] / jnp.where(positive, lr, 1), 0),
            hi=jnp.where(positive, h["max_step_size"] / jnp.where(positive, lr, 1), jnp.inf),
        )

        def step(g, scale, prev):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            product = gc * prev.astype(gc.dtype)
            eta = jnp.where(product > 0, s["eta_plus"], jnp.where(product < 0, s["eta_minus"], 1))
            new_scale = jnp.clip(scale.astype(eta.dtype) * eta, s["lo"], s["hi"])
            g_used = jnp.where(product < 0, jnp.zeros((), gc.dtype), gc)
            out = jnp.sign(g_used) * (s["lr"] * new_scale)
            return out.astype(g.dtype), new_scale.astype(scale.dtype), g_used.astype(prev.dtype)

        out, scales, prev = map_unzip(step, 3, updates, state.step_scales, state.prev_grads)
        count = safe_increment(state.count)
        return out, ScaleByRpropState(count, scales, prev, self.next_hyperparams(h, count))


@shared_docs
def scale_by_rprop(
    learning_rate: HyperParam = 1e-2,
    eta_minus: HyperParam = 0.5,
    eta_plus: HyperParam = 1.2,
    min_step_size: HyperParam = 1e-6,
    max_step_size: HyperParam = 50.0,
) -> GradientTransformation:
    r"""Rprop's per-element step sizes, adapted from sign agreement of successive gradients.

    With :math:`g'_0 = 0`, :math:`s_0 = 1` and the learning rate :math:`\eta_t`
    (the initial step size):

    .. math::
        \eta^\pm_t = \begin{cases} \eta^+ & g'_{t-1} g_t > 0 \\
            \eta^- & g'_{t-1} g_t < 0 \\ 1 & \text{else} \end{cases},
        \quad
        s_t = \operatorname{clip}\!\left(\eta^\pm_t s_{t-1},
            \frac{\Delta_{min}}{\eta_t}, \frac{\Delta_{max}}{\eta_t}\right),
        \quad
        g'_t = \begin{cases} 0 & g'_{t-1} g_t < 0 \\ g_t & \text{else} \end{cases},
        \quad
        u_t = \operatorname{sign}(g'_t)\, \eta_t s_t

    The step size :math:`\Delta_t = \eta_t s_t` is stored relative to the
    learning rate, so a schedule or ``set_hyperparam`` rescales every step
    size at once (torch reads ``lr`` only at the first step); with a constant
    rate it is torch's ``Rprop`` exactly, including its handling of a sign
    change: that element does not move and its stored gradient is zeroed, so
    the next step neither grows nor shrinks its step size. Negate the result
    for descent (:func:`rprop` does).

    Args:
        learning_rate: the initial step size :math:`\Delta_0 = \eta_0` > 0, a number or a schedule.
        eta_minus: :math:`\eta^-` in (0, 1], the factor after a sign change.
        eta_plus: :math:`\eta^+` >= 1, the factor while the sign holds.
        min_step_size: :math:`\Delta_{min}` >= 0.
        max_step_size: :math:`\Delta_{max}` >= ``min_step_size``.

    References:
        Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation
        Learning: The RPROP Algorithm", ICNN 1993.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_rprop(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(2))
        >>> _, state = tx.update(jnp.array([1.0, 1.0]), state)
        >>> tx.update(jnp.array([3.0, -1.0]), state)[0]
        Array([0.12, 0.  ], dtype=float32)
    """
    check_range("learning_rate", learning_rate, 0.0, low_open=True)
    check_range("eta_minus", eta_minus, 0.0, 1.0, low_open=True)
    check_range("eta_plus", eta_plus, 1.0)
    check_nonnegative("min_step_size", min_step_size)
    check_nonnegative("max_step_size", max_step_size)
    lo, hi = (v if isinstance(v, (int, float)) else None for v in (min_step_size, max_step_size))
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"max_step_size must be >= min_step_size, got {hi} < {lo}")
    return ScaleByRprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)


class ScaleByAdanState(NamedTuple):
    count: jax.Array
    mu: Any  # EMA of gradients
    delta: Any  # EMA of gradient differences
    nu: Any  # EMA of squared Nesterov-corrected gradients
    prev_grad: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAdan(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    b3: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "b3", "eps", "eps_root")

    def init(self, params):
        return ScaleByAdanState(
            zero_count(),
            zeros_like(params, self.mu_dtype),
            zeros_like(params, self.mu_dtype),
            real_zeros_like(params, self.nu_dtype),
            zeros_like(params),
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        first = state.count == 0
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc2=bias_correction(h["b2"], count),
            bc3=bias_correction(h["b3"], count),
            eps=h["eps"],
            eps_root=h["eps_root"],
            **decay_scalars(b1=h["b1"], b2=h["b2"], b3=h["b3"]),
        )

        def step(g, mu, delta, nu, prev):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            diff = jnp.where(first, jnp.zeros((), gc.dtype), gc - prev.astype(gc.dtype))
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            new_delta = ema(diff, delta, s["b2"], s["one_minus_b2"])
            new_nu = ema(abs_sq(gc + s["b2"] * diff), nu, s["b3"], s["one_minus_b3"])
            num = new_mu / s["bc1"] + s["b2"] * (new_delta / s["bc2"])
            out = safe_div(num, jnp.sqrt(new_nu / s["bc3"] + s["eps_root"]) + s["eps"])
            new = (new_mu.astype(mu.dtype), new_delta.astype(delta.dtype), new_nu.astype(nu.dtype))
            return (out.astype(g.dtype), *new, g.astype(prev.dtype))

        out, mu, delta, nu, prev = map_unzip(
            step, 5, updates, state.mu, state.delta, state.nu, state.prev_grad
        )
        return out, ScaleByAdanState(count, mu, delta, nu, prev, self.next_hyperparams(h, count))


@shared_docs
def scale_by_adan(
    b1: HyperParam = 0.98,
    b2: HyperParam = 0.92,
    b3: HyperParam = 0.99,
    eps: HyperParam = 1e-8,
    eps_root: HyperParam = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adan's rescaling: Adam with a Nesterov-style gradient-difference term.

    With :math:`\Delta_t = g_t - g_{t-1}` (:math:`\Delta_1 = 0`) and
    :math:`\mathrm{EMA}_\beta(x)_t = \beta\,\mathrm{EMA}_{t-1} + (1-\beta) x_t` from 0:

    .. math::
        m_t = \mathrm{EMA}_{\beta_1}(g)_t, \quad
        d_t = \mathrm{EMA}_{\beta_2}(\Delta)_t, \quad
        n_t = \mathrm{EMA}_{\beta_3}\big((g + \beta_2 \Delta)^2\big)_t, \quad
        u_t = \frac{m_t / (1-\beta_1^t) + \beta_2\, d_t / (1-\beta_2^t)}
              {\sqrt{n_t / (1-\beta_3^t) + \epsilon_{root}} + \epsilon}

    The betas are decay rates (the official code's convention: the paper's
    :math:`\beta_k` are :math:`1 -` these). The difference term is weighted by
    :math:`\beta_2` = 0.92, as in the paper's Algorithm 1 and the authors'
    code; ``optax.scale_by_adan`` weights it by :math:`1-\beta_2` = 0.08 (a
    known optax bug, google-deepmind/optax#1715), so the two agree only at
    ``b2 = 0.5`` or on the first step.

    Args:
        b1: {b1}
        b2: exponential decay rate of the gradient-difference estimate, in [0, 1).
        b3: {b2}
        eps: {eps}
        eps_root: {eps_root}
        mu_dtype: dtype of the two first-moment buffers; ``None`` uses each parameter's dtype.
        nu_dtype: {nu_dtype}

    References:
        Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm
        for Faster Optimizing Deep Models", IEEE TPAMI 2024 (arXiv:2208.06677).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_adan(eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        check_beta(name, value)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    reject_quantized("scale_by_adan", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByAdan(b1, b2, b3, eps, eps_root, mu_dtype, nu_dtype)


@dataclasses.dataclass(frozen=True)
class ScaleByAdopt(WithHyperparams, GradientTransformation):
    """ADOPT's rescaling; see :func:`gradtx.adopt` for the rule."""

    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    clip_exponent: HyperParam
    nesterov: bool
    use_clipping: bool
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "clip_exponent")

    def init(self, params):
        mu = zeros_like(params, self.mu_dtype)
        return MomentsState(zero_count(), mu, real_zeros_like(params, self.nu_dtype), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        first = state.count == 0  # the first gradient only initialises nu
        clip_value = state.count.astype(h["clip_exponent"].dtype) ** h["clip_exponent"]
        b1 = jnp.where(first, 1, h["b1"])
        b2 = jnp.where(first, 0, h["b2"])
        scalars = Scalars(eps=h["eps"], clip=clip_value, **decay_scalars(b1=b1, b2=b2))

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            normed = safe_div(gc, jnp.maximum(jnp.sqrt(nu.astype(s["eps"].dtype)), s["eps"]))
            if self.use_clipping and jnp.iscomplexobj(normed):
                # A complex entry keeps its phase; its magnitude is clipped.
                mag = jnp.abs(normed)
                normed = normed * jnp.where(mag > s["clip"], s["clip"] / jnp.where(mag > 0, mag, 1), 1)
            elif self.use_clipping:
                normed = jnp.clip(normed, -s["clip"], s["clip"])
            new_mu = ema(normed, mu, s["b1"], s["one_minus_b1"])
            out = ema(normed, new_mu, s["b1"], s["one_minus_b1"]) if self.nesterov else new_mu
            new_nu = ema(abs_sq(gc), nu, s["b2"], s["one_minus_b2"])
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        count = safe_increment(state.count)
        return out, MomentsState(count, mu, nu, self.next_hyperparams(h, count))


class ScaleByAdemamixState(NamedTuple):
    count: jax.Array
    mu: Any  # the fast EMA of gradients
    mu_slow: Any  # the slow EMA of gradients, never bias-corrected
    nu: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAdemamix(WithHyperparams, GradientTransformation):
    """AdEMAMix's rescaling; see :func:`gradtx.ademamix` for the rule."""

    b1: HyperParam
    b2: HyperParam
    b3: HyperParam
    alpha: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "b3", "alpha", "eps", "eps_root")

    def init(self, params):
        mu, slow = zeros_like(params, self.mu_dtype), zeros_like(params, self.mu_dtype)
        nu = real_zeros_like(params, self.nu_dtype)
        return ScaleByAdemamixState(zero_count(), mu, slow, nu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc2=bias_correction(h["b2"], count),
            alpha=h["alpha"],
            eps=h["eps"],
            eps_root=h["eps_root"],
            **decay_scalars(b1=h["b1"], b2=h["b2"], b3=h["b3"]),
        )

        def step(g, mu, slow, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            new_slow = ema(gc, slow, s["b3"], s["one_minus_b3"])
            new_nu = ema(abs_sq(gc), nu, s["b2"], s["one_minus_b2"])
            den = jnp.sqrt(new_nu / s["bc2"] + s["eps_root"]) + s["eps"]
            out = safe_div(new_mu / s["bc1"] + s["alpha"] * new_slow, den)
            new = (new_mu.astype(mu.dtype), new_slow.astype(slow.dtype), new_nu.astype(nu.dtype))
            return (out.astype(g.dtype), *new)

        out, mu, slow, nu = map_unzip(step, 4, updates, state.mu, state.mu_slow, state.nu)
        return out, ScaleByAdemamixState(count, mu, slow, nu, self.next_hyperparams(h, count))
