"""Adam variants with their own second-moment rule: AdaBelief, Yogi and RAdam."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._optimizers._common import coupled_l2
from gradtx._transforms._adam_variants import scale_by_belief, scale_by_radam, scale_by_yogi
from gradtx._transforms._scaling import scale_by_learning_rate


@shared_docs
def adabelief(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-16,
    *,
    eps_root: HyperParam = 1e-16,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdaBelief: Adam with the second moment of :math:`g_t - m_t` in place of :math:`g_t`.

    .. math::
        s_t = \beta_2 s_{t-1} + (1-\beta_2) (g_t - m_t)^2 + \epsilon_{root}, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    The step is large where the gradient agrees with its running mean (the
    "belief") and small where it does not. Defaults are the paper's and
    optax's; equals ``optax.adabelief``. ``weight_decay`` adds
    :math:`\lambda\theta` to the gradient first (coupled L2; the authors'
    package also offers decoupled decay, available here as
    ``chain(scale_by_belief(), add_decayed_weights(wd), scale_by_learning_rate(lr))``).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: added to :math:`s_t` at every step; must be >= 0.
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
        Observed Gradients", NeurIPS 2020 (Algorithm 2).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adabelief(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(2))
        >>> tx.update(jnp.array([0.5, -2.0]), state)[0]
        Array([-0.11111112,  0.11111112], dtype=float32)
    """
    rescale = scale_by_belief(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))


@shared_docs
def yogi(
    learning_rate: HyperParam = 1e-2,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-3,
    *,
    eps_root: HyperParam = 0.0,
    initial_accumulator_value: float = 1e-6,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Yogi: Adam whose second moment changes additively, so the effective step cannot jump.

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\, \operatorname{sign}(v_{t-1} - g_t^2)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)
        + \epsilon_{root}} + \epsilon}

    Defaults are the paper's (:math:`\eta` = 1e-2, :math:`\epsilon` = 1e-3).
    As ``optax.yogi`` (which this equals), both moments start at
    ``initial_accumulator_value`` and are bias-corrected; the paper's
    Algorithm 2 does neither (see :func:`scale_by_yogi`).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        initial_accumulator_value: starting value of both moments, >= 0.
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex
        Optimization", NeurIPS 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.yogi(learning_rate=0.1, eps=0.0, initial_accumulator_value=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    rescale = scale_by_yogi(
        b1,
        b2,
        eps,
        eps_root,
        initial_accumulator_value=initial_accumulator_value,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))


@shared_docs
def radam(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    *,
    threshold: HyperParam = 5.0,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""RAdam: Adam with the adaptive step rectified until its variance is tractable.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \begin{cases}
            r_t\, \hat m_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > \text{threshold} \\
            \hat m_t & \text{otherwise}
        \end{cases}

    with :math:`\rho_t` and the rectifier :math:`r_t` as in :func:`scale_by_radam`.
    Equals ``torch.optim.RAdam`` (eps added to :math:`\sqrt{v_t}` before bias
    correction, threshold 5, coupled ``weight_decay``). The paper's threshold
    is 4 (``threshold=4.0``); ``optax.radam`` adds eps after bias correction
    and so agrees only for ``eps=0``.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        threshold: the adaptive step is used once :math:`\rho_t` exceeds it; >= 4.
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.radam(learning_rate=0.1)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.05,  0.2 ], dtype=float32)
    """
    rescale = scale_by_radam(b1, b2, eps, threshold, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return coupled_l2(weight_decay, rescale, scale_by_learning_rate(learning_rate))
