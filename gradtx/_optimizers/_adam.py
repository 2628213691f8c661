"""The Adam family: Adam, AdamW, AdaMax, Nadam, AMSGrad and QHAdam."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._optimizers._common import coupled_l2, is_on
from gradtx._transforms._adam import scale_by_adam, scale_by_adamax, scale_by_qhadam
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._weight_decay import Mask, add_decayed_weights


@shared_docs
def adam(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    amsgrad: bool = False,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam, with optional coupled L2 weight decay, AMSGrad and Nesterov momentum.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \theta_t = \theta_{t-1} - \eta_t
        \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    The bias corrections are applied to the moments, not folded into the step
    size (see :func:`scale_by_adam`). ``weight_decay`` adds
    :math:`\lambda\theta` to the gradient first (torch's ``Adam``); for
    decoupled decay use :func:`adamw`. Equals ``torch.optim.Adam`` and
    ``optax.adam``.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: {weight_decay}
        amsgrad: keep the running maximum of :math:`v_t` (torch's AMSGrad).
        nesterov: use Nesterov momentum (Nadam).
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adam(learning_rate=0.1)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    rescale = scale_by_adam(
        b1, b2, eps, eps_root, nesterov=nesterov, amsgrad=amsgrad, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))


@shared_docs
def adamw(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 1e-4,
    mask: Mask | None = None,
    amsgrad: bool = False,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam with decoupled weight decay.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \left( \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
        + \lambda\,\theta_{t-1} \right)

    The decay is multiplied by the learning rate, as in ``torch.optim.AdamW``
    and ``optax.adamw`` (both equal this). The default :math:`\lambda` = 1e-4
    is optax's; torch's is 1e-2.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: the decoupled decay coefficient :math:`\lambda` >= 0.
        mask: {mask}
        amsgrad: keep the running maximum of :math:`v_t` (torch's AMSGrad).
        nesterov: use Nesterov momentum.
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adamw(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.array([1.0])
        >>> tx.update(jnp.array([1.0]), tx.init(params), params)[0]
        Array([-0.15], dtype=float32)
    """
    rescale = scale_by_adam(
        b1, b2, eps, eps_root, nesterov=nesterov, amsgrad=amsgrad, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(rescale, *decay, scale_by_learning_rate(learning_rate))


@shared_docs
def adamax(
    learning_rate: HyperParam = 2e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdaMax: Adam with the infinity norm in place of the second moment.

    .. math::
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t}{1-\beta_1^t} \frac{m_t}{u_t}

    Equals ``torch.optim.Adamax`` and ``optax.adamax``.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Kingma & Ba, ICLR 2015, section 7.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adamax(learning_rate=0.1, eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    rescale = scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))


@shared_docs
def nadam(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Nadam: Adam with Nesterov momentum (Dozat's form).

    .. math::
        \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g_t}{1-\beta_1^t}, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

    Equals ``optax.nadam``. torch's ``NAdam`` also multiplies :math:`\beta_1`
    by a momentum-decay schedule :math:`1 - 0.5 \cdot 0.96^{t \psi}`
    (``momentum_decay=4e-3``), so it differs from this rule.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.nadam(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(1))
        >>> tx.update(jnp.array([1.0]), state)[0].shape
        (1,)
    """
    return adam(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
        nesterov=True,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )


@shared_docs
def amsgrad(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AMSGrad: Adam whose second moment never decreases, so the step never grows.

    .. math::
        v^{max}_t = \max(v^{max}_{t-1}, v_t), \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{v^{max}_t / (1-\beta_2^t)} + \epsilon}

    The same as ``adam(..., amsgrad=True)``, in torch's convention (the
    maximum of the *uncorrected* :math:`v_t`). ``optax.amsgrad`` takes the
    maximum after bias correction; the two drift apart (after 60 steps on
    the parity problem, 13% median per element and 25% in total movement).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.amsgrad(learning_rate=0.1)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    return adam(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
        amsgrad=True,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )


@shared_docs
def qhadam(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.995,
    b2: HyperParam = 0.999,
    nu1: HyperParam = 0.7,
    nu2: HyperParam = 1.0,
    eps: HyperParam = 1e-8,
    *,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Quasi-hyperbolic Adam.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t
        \frac{(1-\nu_1) g_t + \nu_1 \hat m_t}{\sqrt{(1-\nu_2) g_t^2 + \nu_2 \hat v_t} + \epsilon}

    Defaults are the paper's recommendation (:math:`\beta` = (0.995, 0.999),
    :math:`\nu` = (0.7, 1.0)).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        nu1: weight of the momentum term in the numerator, in [0, 1].
        nu2: weight of the second moment in the denominator, in [0, 1].
        eps: {eps}
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Ma & Yarats, "Quasi-hyperbolic momentum and Adam for deep learning", ICLR 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.qhadam(learning_rate=0.1, eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    rescale = scale_by_qhadam(b1, b2, nu1, nu2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))
