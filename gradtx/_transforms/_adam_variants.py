"""Adam variants with their own second-moment rule: AdaBelief, Yogi and RAdam."""

from __future__ import annotations

import dataclasses
from typing import Any

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
from gradtx._core.validation import check_beta, check_nonnegative, check_range, check_same_structure
from gradtx._transforms._adam import MomentsState
from gradtx._transforms._adaptive import decay_scalars, ema, real_zeros_like


def _zero_moments(transform: Any, params: Any) -> MomentsState:
    mu = zeros_like(params, transform.mu_dtype)
    nu = real_zeros_like(params, transform.nu_dtype)
    return MomentsState(zero_count(), mu, nu, transform.init_hyperparams())


@dataclasses.dataclass(frozen=True)
class ScaleByBelief(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "eps_root")

    def init(self, params):
        return _zero_moments(self, params)

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc2=bias_correction(h["b2"], count),
            eps=h["eps"],
            eps_root=h["eps_root"],
            **decay_scalars(b1=h["b1"], b2=h["b2"]),
        )

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            surprise = abs_sq(gc - new_mu)  # the "belief" in the gradient: its distance from the mean
            new_nu = ema(surprise, nu, s["b2"], s["one_minus_b2"]) + s["eps_root"]
            den = jnp.sqrt(new_nu / s["bc2"]) + s["eps"]
            out = safe_div(new_mu / s["bc1"], den)
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        return out, MomentsState(count, mu, nu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_belief(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-16,
    eps_root: HyperParam = 1e-16,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdaBelief's rescaling: Adam with the variance of the gradient around its mean.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) (g_t - m_t)^2 + \epsilon_{root}, \quad
        u_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    :math:`\epsilon_{root}` is added to the stored :math:`s_t` (so it
    accumulates), as in the paper's Algorithm 2, the authors' code and
    ``optax.scale_by_belief``, which this equals.

    Args:
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: added to :math:`s_t` at every step; must be >= 0.
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
        Observed Gradients", NeurIPS 2020.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_belief()
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1.1111112, -1.1111112], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    reject_quantized("scale_by_belief", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByBelief(b1, b2, eps, eps_root, mu_dtype, nu_dtype)


@dataclasses.dataclass(frozen=True)
class ScaleByYogi(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    initial_accumulator_value: float
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "eps_root")

    def init(self, params):
        v0 = self.initial_accumulator_value
        mu = jax.tree.map(lambda p: jnp.full_like(p, v0, self.mu_dtype or p.dtype), params)
        nu = jax.tree.map(lambda p: jnp.full_like(p, v0, self.nu_dtype or real_dtype(p.dtype)), params)
        return MomentsState(zero_count(), mu, nu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc2=bias_correction(h["b2"], count),
            eps=h["eps"],
            eps_root=h["eps_root"],
            **decay_scalars(b1=h["b1"], b2=h["b2"]),
        )

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            g2 = abs_sq(gc)
            old_nu = nu.astype(g2.dtype)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            new_nu = old_nu - s["one_minus_b2"] * jnp.sign(old_nu - g2) * g2  # moves by at most (1-b2) g^2
            den = jnp.sqrt(new_nu / s["bc2"] + s["eps_root"]) + s["eps"]
            out = safe_div(new_mu / s["bc1"], den)
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        return out, MomentsState(count, mu, nu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_yogi(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-3,
    eps_root: HyperParam = 0.0,
    *,
    initial_accumulator_value: float = 1e-6,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Yogi's rescaling: Adam whose second moment moves additively, by at most :math:`(1-\beta_2) g^2`.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = v_{t-1} - (1-\beta_2)\, \operatorname{sign}(v_{t-1} - g_t^2)\, g_t^2, \quad
        u_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    Both moments start at ``initial_accumulator_value`` and both are
    bias-corrected, as in ``optax.scale_by_yogi``, which this equals. The
    paper's Algorithm 2 has no bias correction (and suggests initialising
    :math:`v_0` from a few squared gradients).

    Args:
        b1: {b1}
        b2: {b2}
        eps: {eps} The paper's default is 1e-3.
        eps_root: {eps_root}
        initial_accumulator_value: starting value of :math:`m_0` and
            :math:`v_0`, >= 0; used by ``init`` only, so it is not stored in
            the state.
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    References:
        Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex
        Optimization", NeurIPS 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    reject_quantized("scale_by_yogi", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByYogi(b1, b2, eps, eps_root, float(initial_accumulator_value), mu_dtype, nu_dtype)


def _radam_scalars(h: dict[str, jax.Array], count: jax.Array) -> Scalars:
    """The step's scalars; ``rect`` is the variance rectification r_t, 0 where rho_t <= threshold."""
    t = count.astype(h["b2"].dtype)
    b2_t = h["b2"] ** t
    bc2 = 1 - b2_t
    rho_inf = 2 / (1 - h["b2"]) - 1
    rho = rho_inf - 2 * t * b2_t / bc2
    ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
    rectified = rho > h["threshold"]
    return Scalars(
        bc1=bias_correction(h["b1"], count),
        sqrt_bc2=jnp.sqrt(bc2),
        rect=jnp.where(rectified, jnp.sqrt(jnp.maximum(ratio, 0)), 0),
        rectified=rectified,
        eps=h["eps"],
        **decay_scalars(b1=h["b1"], b2=h["b2"]),
    )


@dataclasses.dataclass(frozen=True)
class ScaleByRAdam(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    threshold: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "threshold")

    def init(self, params):
        return _zero_moments(self, params)

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = _radam_scalars(h, count)

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            new_nu = ema(abs_sq(gc), nu, s["b2"], s["one_minus_b2"])
            mu_hat = new_mu / s["bc1"]
            adaptive = safe_div(mu_hat * s["sqrt_bc2"], jnp.sqrt(new_nu) + s["eps"])
            out = jnp.where(s["rectified"] != 0, s["rect"] * adaptive, mu_hat)
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        return out, MomentsState(count, mu, nu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_radam(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    threshold: HyperParam = 5.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Rectified Adam's rescaling: Adam's step damped while the variance estimate is unreliable.

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    .. math::
        u_t = \begin{cases}
            r_t\, \hat m_t \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > \text{threshold} \\
            \hat m_t & \text{otherwise}
        \end{cases}

    with Adam's moments :math:`m_t, v_t` and :math:`\hat m_t = m_t / (1-\beta_1^t)`.

    Follows ``torch.optim.RAdam`` (and the authors' code): the threshold is 5
    and eps is added to :math:`\sqrt{v_t}` *before* bias correction. The
    paper's Algorithm 2 uses :math:`\rho_t > 4` (pass ``threshold=4.0``) and
    has no eps. ``optax.scale_by_radam`` adds eps after bias correction,
    :math:`\hat m_t / (\sqrt{v_t/(1-\beta_2^t)} + \epsilon)`, and tests
    :math:`\rho_t \ge` threshold; with ``eps=0`` the two agree.

    Args:
        b1: {b1}
        b2: {b2}
        eps: {eps}
        threshold: the adaptive step is used once :math:`\rho_t` exceeds it;
            >= 4 (below 4, :math:`r_t` is undefined).
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_radam()
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1: plain momentum
        Array([ 0.5, -2. ], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_range("threshold", threshold, 4.0)
    reject_quantized("scale_by_radam", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByRAdam(b1, b2, eps, threshold, mu_dtype, nu_dtype)
