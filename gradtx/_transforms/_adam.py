"""The Adam family's rescalings: Adam (with Nesterov and AMSGrad), AdaMax, QHAdam."""

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
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.quantize import (
    buffer_zeros,
    check_state_dtype,
    leaf_view,
    pack_like,
    reject_quantized,
    unpack,
)
from gradtx._core.validation import check_beta, check_nonnegative, check_range, check_same_structure
from gradtx._transforms._adaptive import decay_scalars, ema, real_zeros_like


class ScaleByAdamState(NamedTuple):
    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any  # running maximum of nu for AMSGrad; None otherwise
    hyperparams: dict[str, jax.Array]


def _moment_buffers(params: Any, mu_dtype: Any, nu_dtype: Any) -> tuple[Any, Any]:
    return buffer_zeros(params, mu_dtype, zeros_like), buffer_zeros(params, nu_dtype, real_zeros_like)


@dataclasses.dataclass(frozen=True)
class ScaleByAdam(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    nesterov: bool
    amsgrad: bool
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "eps_root")

    def init(self, params):
        mu, nu = _moment_buffers(params, self.mu_dtype, self.nu_dtype)
        nu_max = buffer_zeros(params, self.nu_dtype, real_zeros_like) if self.amsgrad else None
        return ScaleByAdamState(zero_count(), mu, nu, nu_max, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, leaf_view(state.mu), "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        nu_max_old = state.nu_max if self.amsgrad else state.nu
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc1_next=bias_correction(h["b1"], safe_increment(count)),
            bc2=bias_correction(h["b2"], count),
            eps=h["eps"],
            eps_root=h["eps_root"],
            **decay_scalars(b1=h["b1"], b2=h["b2"]),
        )

        def step(g, mu, nu, nu_max):  # 8-bit buffers are decoded, used in float32, re-encoded
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, unpack(mu), s["b1"], s["one_minus_b1"])
            new_nu = ema(abs_sq(gc), unpack(nu), s["b2"], s["one_minus_b2"])
            nu_used = new_nu
            if self.amsgrad:  # torch's convention: the max of the uncorrected moment
                nu_used = jnp.maximum(unpack(nu_max).astype(new_nu.dtype), new_nu)
            if self.nesterov:
                mu_hat = s["b1"] * new_mu / s["bc1_next"] + s["one_minus_b1"] * gc / s["bc1"]
            else:
                mu_hat = new_mu / s["bc1"]
            nu_hat = nu_used / s["bc2"]
            den = jnp.sqrt(nu_hat + s["eps_root"]) + s["eps"]
            # den == 0 only when every gradient so far was 0 (then mu_hat == 0 too): a
            # clamp gives 0 instead of 0/0 and compiles smaller than a select.
            out = mu_hat / jnp.maximum(den, jnp.finfo(den.dtype).tiny)
            new_nu_max = pack_like(nu_used, nu_max) if self.amsgrad else nu_max
            return out.astype(g.dtype), pack_like(new_mu, mu), pack_like(new_nu, nu), new_nu_max

        out, mu, nu, nu_max = map_unzip(step, 4, updates, state.mu, state.nu, nu_max_old)
        hyperparams = self.next_hyperparams(h, count)
        return out, ScaleByAdamState(count, mu, nu, nu_max if self.amsgrad else None, hyperparams)


@shared_docs
def scale_by_adam(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    eps_root: HyperParam = 0.0,
    *,
    nesterov: bool = False,
    amsgrad: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam's rescaling, in the form with explicit bias corrections.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
        u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

    gradtx uses this form (as torch and optax do), not the "efficient" one
    that folds both corrections into the step size; the two differ only in
    where eps enters, visible when :math:`\hat v_t` is tiny.

    - ``amsgrad=True``: :math:`v_t` is replaced by its running maximum
      :math:`\max(v^{max}_{t-1}, v_t)` *before* bias correction (torch's
      convention; optax's ``amsgrad`` takes the maximum after it).
    - ``nesterov=True`` (Nadam, Dozat 2016, as in optax):
      :math:`\hat m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`.

    Args:
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        nesterov: use Nesterov momentum (Nadam).
        amsgrad: use the running maximum of the second moment (AMSGrad).
        mu_dtype: {mu_dtype} ``"int8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised; see docs/memory.md.
        nu_dtype: {nu_dtype} ``"uint8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised, as is the AMSGrad maximum.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
        Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018;
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016;
        Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_adam()
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    check_state_dtype("mu_dtype", mu_dtype, signed=True)
    check_state_dtype("nu_dtype", nu_dtype, signed=False)
    return ScaleByAdam(b1, b2, eps, eps_root, nesterov, amsgrad, mu_dtype, nu_dtype)


class MomentsState(NamedTuple):
    """State of a transformation with a first and a second moment (AdaMax, AdaBelief, Yogi, ADOPT, ...)."""

    count: jax.Array
    mu: Any
    nu: Any  # second moment, or AdaMax's exponentially weighted infinity norm
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByAdamax(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps")

    def init(self, params):
        mu, nu = _moment_buffers(params, self.mu_dtype, self.nu_dtype)
        return MomentsState(zero_count(), mu, nu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count), eps=h["eps"], b2=h["b2"], **decay_scalars(b1=h["b1"])
        )

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            mag = jnp.abs(gc)
            new_nu = jnp.maximum(mag + s["eps"], s["b2"] * nu.astype(mag.dtype))
            out = safe_div(new_mu / s["bc1"], new_nu)
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        return out, MomentsState(count, mu, nu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_adamax(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdaMax's rescaling by an exponentially weighted infinity norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u^\infty_t = \max(\beta_2 u^\infty_{t-1}, |g_t| + \epsilon), \quad
        u_t = \frac{m_t}{(1-\beta_1^t)\, u^\infty_t}

    eps is added to :math:`|g_t|` as in torch and optax (they agree).

    Args:
        b1: {b1}
        b2: {b2}
        eps: {eps}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_adamax(eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_adamax", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByAdamax(b1, b2, eps, mu_dtype, nu_dtype)


@dataclasses.dataclass(frozen=True)
class ScaleByQHAdam(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    nu1: HyperParam
    nu2: HyperParam
    eps: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "nu1", "nu2", "eps")

    def init(self, params):
        mu, nu = _moment_buffers(params, self.mu_dtype, self.nu_dtype)
        return ScaleByAdamState(zero_count(), mu, nu, None, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc1=bias_correction(h["b1"], count),
            bc2=bias_correction(h["b2"], count),
            eps=h["eps"],
            **decay_scalars(b1=h["b1"], b2=h["b2"], nu1=h["nu1"], nu2=h["nu2"]),
        )

        def step(g, mu, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            g2 = abs_sq(gc)
            new_mu = ema(gc, mu, s["b1"], s["one_minus_b1"])
            new_nu = ema(g2, nu, s["b2"], s["one_minus_b2"])
            num = s["one_minus_nu1"] * gc + s["nu1"] * (new_mu / s["bc1"])
            den = jnp.sqrt(s["one_minus_nu2"] * g2 + s["nu2"] * (new_nu / s["bc2"])) + s["eps"]
            out = safe_div(num, den)
            return out.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count, mu, nu, None, self.next_hyperparams(h, count))


@shared_docs
def scale_by_qhadam(
    b1: HyperParam = 0.995,
    b2: HyperParam = 0.999,
    nu1: HyperParam = 0.7,
    nu2: HyperParam = 1.0,
    eps: HyperParam = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Quasi-hyperbolic Adam: averages of the plain and the momentum step.

    .. math::
        u_t = \frac{(1-\nu_1)\, g_t + \nu_1 \hat m_t}{\sqrt{(1-\nu_2)\, g_t^2 + \nu_2 \hat v_t} + \epsilon}

    with Adam's bias-corrected moments :math:`\hat m_t, \hat v_t`.
    ``nu1 = nu2 = 1`` recovers Adam.

    Args:
        b1: {b1}
        b2: {b2}
        nu1: immediate-discount factor of the numerator, in [0, 1].
        nu2: immediate-discount factor of the denominator, in [0, 1].
        eps: {eps}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    References:
        Ma & Yarats, "Quasi-hyperbolic momentum and Adam for deep learning", ICLR 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_qhadam(eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_range("nu1", nu1, 0.0, 1.0)
    check_range("nu2", nu2, 0.0, 1.0)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_qhadam", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByQHAdam(b1, b2, nu1, nu2, eps, mu_dtype, nu_dtype)
