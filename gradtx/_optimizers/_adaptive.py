"""AdaGrad, RMSProp and Adadelta."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.validation import check_beta
from gradtx._optimizers._common import coupled_l2, is_on
from gradtx._transforms._adaptive import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from gradtx._transforms._momentum import add_momentum
from gradtx._transforms._scaling import scale_by_learning_rate


@shared_docs
def adagrad(
    learning_rate: HyperParam = 1e-2,
    initial_accumulator_value: float = 0.0,
    eps: HyperParam = 1e-10,
    *,
    weight_decay: HyperParam = 0.0,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdaGrad: per-parameter rates from the accumulated squared gradients.

    .. math::
        r_t = r_{t-1} + g_t^2, \qquad \theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{r_t} + \epsilon}

    Equals ``torch.optim.Adagrad`` (eps outside the root, :math:`r_0` = 0 by
    default). optax's ``adagrad`` puts eps inside the root and starts at 0.1.

    Args:
        learning_rate: {learning_rate}
        initial_accumulator_value: :math:`r_0` >= 0.
        eps: {eps}
        weight_decay: {weight_decay}
        nu_dtype: dtype of the accumulator :math:`r`; ``None`` uses each parameter's dtype.

    {hyperparams_note}

    References:
        Duchi, Hazan & Singer, JMLR 2011.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adagrad(0.1)
        >>> tx.update(jnp.array([3.0, -0.5]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    return coupled_l2(
        weight_decay,
        scale_by_adagrad(initial_accumulator_value, eps, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@shared_docs
def rmsprop(
    learning_rate: HyperParam = 1e-3,
    decay: HyperParam = 0.9,
    eps: HyperParam = 1e-8,
    *,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: HyperParam = 0.0,
    nesterov: bool = False,
    initial_scale: float = 0.0,
    weight_decay: HyperParam = 0.0,
    nu_dtype: Any = None,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""RMSProp: a leaky AdaGrad, optionally centered and with (Nesterov) momentum.

    .. math::
        \nu_t = \rho\,\nu_{t-1} + (1-\rho)\,g_t^2, \quad
        s_t = \frac{g_t}{\sqrt{\nu_t + \epsilon}}, \quad
        b_t = \mu b_{t-1} + s_t, \quad
        \theta_t = \theta_{t-1} - \eta_t\, b_t

    ``eps_in_sqrt=False`` uses :math:`\sqrt{\nu_t} + \epsilon` (torch's form);
    ``centered=True`` uses the variance :math:`\nu_t - m_t^2`; momentum with
    ``nesterov=True`` is "Nesterov RMSProp". With ``eps_in_sqrt=False`` this
    equals ``torch.optim.RMSprop(alpha=decay, ...)``. Momentum is applied before
    the learning rate, as torch does (optax applies it after; the two agree for
    a constant learning rate).

    Args:
        learning_rate: {learning_rate}
        decay: :math:`\rho` in [0, 1) (torch's ``alpha``).
        eps: {eps}
        eps_in_sqrt: whether eps goes inside the square root.
        centered: normalise by the estimated standard deviation.
        momentum: :math:`\mu` in [0, 1); 0 keeps no momentum buffer.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        initial_scale: :math:`\nu_0`.
        weight_decay: {weight_decay}
        nu_dtype: dtype of :math:`\nu`; ``None`` uses each parameter's dtype.
        mu_dtype: dtype of the momentum buffer :math:`b` and the centered
            mean; ``None`` uses each parameter's dtype.

    {hyperparams_note}

    References:
        Tieleman & Hinton, 2012; Graves, 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.rmsprop(0.1, decay=0.75, eps=0.0)
        >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
        Array([-0.2], dtype=float32)
    """
    check_beta("momentum", momentum)
    if nesterov and not is_on(momentum):
        raise ValueError("nesterov=True needs momentum > 0")
    rms = scale_by_rms(
        decay,
        eps,
        eps_in_sqrt=eps_in_sqrt,
        centered=centered,
        initial_scale=initial_scale,
        nu_dtype=nu_dtype,
        mu_dtype=mu_dtype,
    )
    moment = (add_momentum(momentum, nesterov=nesterov, mu_dtype=mu_dtype),) if is_on(momentum) else ()
    return coupled_l2(weight_decay, rms, *moment, scale_by_learning_rate(learning_rate))


@shared_docs
def adadelta(
    learning_rate: HyperParam = 1.0,
    rho: HyperParam = 0.9,
    eps: HyperParam = 1e-6,
    *,
    weight_decay: HyperParam = 0.0,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adadelta: RMS of past updates over RMS of gradients replaces the learning rate.

    .. math::
        \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \qquad
        \theta_t = \theta_{t-1} - \eta_t \Delta_t

    The paper has no learning rate (:math:`\eta = 1`, the default); torch and
    optax add one. Equals ``torch.optim.Adadelta``.

    Args:
        learning_rate: {learning_rate}
        rho: decay rate in [0, 1).
        eps: {eps}
        weight_decay: {weight_decay}
        nu_dtype: dtype of both squared averages; ``None`` uses each parameter's dtype.

    {hyperparams_note}

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adadelta(rho=0.0, eps=1.0)
        >>> tx.update(jnp.array([0.0]), tx.init(jnp.zeros(1)))[0]
        Array([-0.], dtype=float32)
    """
    return coupled_l2(
        weight_decay, scale_by_adadelta(rho, eps, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )
