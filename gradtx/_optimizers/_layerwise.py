"""Layer-wise optimizers: LAMB, LARS, NovoGrad, Fromage and SM3."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.frozen import freeze
from gradtx._core.hyperparams import HyperParam
from gradtx._core.validation import check_nonnegative, check_range
from gradtx._optimizers._common import is_on
from gradtx._transforms._adam import scale_by_adam
from gradtx._transforms._layerwise import (
    FromageStep,
    ScaleByTrustRatio,
    scale_by_novograd,
    scale_by_sm3,
)
from gradtx._transforms._momentum import add_momentum
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._weight_decay import Mask, add_decayed_weights


def _frozen(mask: Mask | None) -> Any:
    return mask if mask is None or callable(mask) else freeze(mask)


@shared_docs
def lamb(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-6,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mask: Mask | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""LAMB: Adam's direction plus decoupled decay, rescaled per layer by a trust ratio.

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} + \lambda\theta_{t-1}, \qquad
        \theta_t = \theta_{t-1} - \eta_t \frac{\lVert\theta_{t-1}\rVert_2}{\lVert r_t\rVert_2}\, r_t

    per leaf, with Adam's bias-corrected moments :math:`\hat m_t, \hat v_t` and
    the ratio set to 1 where either norm is 0 (the paper's :math:`\phi` is the
    identity). Equals ``optax.lamb`` (same defaults, eps = 1e-6).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: the decoupled decay :math:`\lambda` >= 0, inside the trust ratio.
        mask: {mask} (Applies to the weight decay only.)
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        You et al., "Large Batch Optimization for Deep Learning: Training BERT
        in 76 minutes", ICLR 2020 (Algorithm 2).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.lamb(learning_rate=0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([1.0, 0.0]), tx.init(params), params)[0]
        Array([-0.5,  0. ], dtype=float32)
    """
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        *decay,
        ScaleByTrustRatio(0.0, 1.0, 0.0, stored=()),  # parameter-free: ||theta|| / ||r||
        scale_by_learning_rate(learning_rate),
    )


@shared_docs
def lars(
    learning_rate: HyperParam,
    weight_decay: HyperParam = 0.0,
    trust_coefficient: HyperParam = 0.001,
    eps: HyperParam = 0.0,
    momentum: HyperParam = 0.9,
    *,
    nesterov: bool = False,
    weight_decay_mask: Mask | None = None,
    trust_ratio_mask: Mask | None = None,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""LARS: SGD with momentum and a per-layer learning rate from a trust ratio.

    .. math::
        d_t = g_t + \lambda\theta_{t-1}, \quad
        b_t = \mu b_{t-1} + \eta_t \frac{c\,\lVert\theta_{t-1}\rVert_2}{\lVert d_t\rVert_2 + \epsilon}\, d_t,
        \quad \theta_t = \theta_{t-1} - b_t

    per leaf, the ratio set to 1 where either norm is 0. Equals ``optax.lars``
    (momentum applied after the learning rate, masks ``None`` = optax's
    ``True``). The paper's ratio divides by
    :math:`\lVert g_t\rVert + \lambda\lVert\theta\rVert` instead of
    :math:`\lVert g_t + \lambda\theta\rVert`; gradtx follows optax.

    Args:
        learning_rate: {learning_rate}
        weight_decay: coupled L2 coefficient :math:`\lambda` >= 0, inside the trust ratio.
        trust_coefficient: :math:`c` >= 0 (the paper's :math:`\eta`, 0.001).
        eps: :math:`\epsilon` >= 0, added to the update norm.
        momentum: :math:`\mu` in [0, 1); 0 switches momentum off.
        nesterov: use Nesterov momentum.
        weight_decay_mask: {mask}
        trust_ratio_mask: {mask} (Typically excludes biases and norm scales.)
        mu_dtype: {mu_dtype}

    {hyperparams_note}

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.lars(learning_rate=1.0, trust_coefficient=0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([1.2, 1.6]), tx.init(params), params)[0]
        Array([-0.3, -0.4], dtype=float32)
    """
    check_range("momentum", momentum, 0.0, 1.0, high_open=True)
    check_nonnegative("trust_coefficient", trust_coefficient)
    check_nonnegative("eps", eps)
    decay = (add_decayed_weights(weight_decay, weight_decay_mask),) if is_on(weight_decay) else ()
    trace = (add_momentum(momentum, nesterov=nesterov, mu_dtype=mu_dtype),) if is_on(momentum) else ()
    return chain(
        *decay,
        ScaleByTrustRatio(
            0.0, trust_coefficient, eps, _frozen(trust_ratio_mask), ("trust_coefficient", "eps")
        ),
        scale_by_learning_rate(learning_rate),
        *trace,
    )


@shared_docs
def novograd(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.25,
    eps: HyperParam = 1e-6,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NovoGrad: momentum of gradients normalised by a per-layer second moment.

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) \lVert g_t\rVert_2^2, \quad
        m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_{root}} + \epsilon} + \lambda\theta_{t-1},
        \quad \theta_t = \theta_{t-1} - \eta_t m_t

    per leaf, starting from :math:`v_1 = \lVert g_1\rVert^2` and :math:`m_1` = the
    normalised gradient (see :func:`scale_by_novograd`). Equals
    ``optax.novograd`` with the same defaults (:math:`\beta` = (0.9, 0.25),
    eps = 1e-6; the paper's experiments use :math:`\beta` = (0.95, 0.98)),
    except that ``eps = 0`` with a zero gradient gives 0, not NaN.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: decay rate of the per-leaf squared-norm average, in [0, 1).
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: :math:`\lambda` >= 0, added to the normalised gradient.
        mu_dtype: {mu_dtype}
        nu_dtype: dtype of the per-leaf scalar :math:`v`; ``None`` uses at least float32.

    {hyperparams_note}

    References:
        Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
        Moments for Training of Deep Networks", 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.novograd(learning_rate=0.1, eps=0.0)
        >>> tx.update(jnp.array([1.0, -1.0, 1.0, -1.0]), tx.init(jnp.zeros(4)))[0]
        Array([-0.05,  0.05, -0.05,  0.05], dtype=float32)
    """
    rescale = scale_by_novograd(b1, b2, eps, eps_root, weight_decay, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return chain(rescale, scale_by_learning_rate(learning_rate))


@shared_docs
def fromage(learning_rate: HyperParam = 1e-2, min_norm: HyperParam = 1e-6) -> GradientTransformation:
    r"""Fromage: a step of relative size :math:`\eta` per layer, then a shrink that keeps norms bounded.

    .. math::
        \theta_t = \frac{1}{\sqrt{1+\eta_t^2}}
        \left(\theta_{t-1} - \eta_t \rho_t g_t\right), \qquad
        \rho_t = \frac{\max(\lVert\theta_{t-1}\rVert_2, m)}{\max(\lVert g_t\rVert_2, m)}

    per leaf. Equals ``optax.fromage``. The shrink
    :math:`1/\sqrt{1+\eta^2} - 1` is computed as
    :math:`-\eta^2 / (\sqrt{1+\eta^2}(1+\sqrt{1+\eta^2}))`, exact for small
    :math:`\eta` in float32, and a scheduled :math:`\eta` is evaluated once per
    step (optax calls the schedule twice).

    Args:
        learning_rate: {learning_rate} The paper recommends 0.01.
        min_norm: :math:`m` >= 0, lower bound on both norms.

    {hyperparams_note}

    References:
        Bernstein, Vahdat, Yue & Liu, "On the distance between two neural
        networks and the stability of learning", NeurIPS 2020.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.fromage(learning_rate=0.75, min_norm=0.0)
        >>> params = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([0.0, 1.0]), tx.init(params), params)[0]
        Array([-0.6, -3.8], dtype=float32)
    """
    check_nonnegative("learning_rate", learning_rate)
    check_nonnegative("min_norm", min_norm)
    return chain(ScaleByTrustRatio(min_norm, 1.0, 0.0, stored=("min_norm",)), FromageStep(learning_rate))


@shared_docs
def sm3(
    learning_rate: HyperParam = 1e-1,
    b1: HyperParam = 0.9,
    b2: HyperParam = 1.0,
    eps: HyperParam = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""SM3: AdaGrad with one accumulator per axis of each leaf instead of per element, plus momentum.

    .. math::
        \nu_t(i) = \min_r \mu^{(r)}_{t-1}(i_r) + g_t(i)^2, \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) \frac{g_t}{\sqrt{\nu_t + \epsilon}}, \quad
        \theta_t = \theta_{t-1} - \eta_t m_t

    with :math:`\mu^{(r)}_t(j) = \max_{i_r = j} \nu_t(i)` (see :func:`scale_by_sm3`).
    Memory is :math:`\sum_r n_r` per leaf rather than :math:`\prod_r n_r`.
    Equals ``optax.sm3(learning_rate, momentum=b1)`` on leaves of rank >= 1;
    optax fails on rank-0 leaves, which gradtx handles as rank 1.

    Args:
        learning_rate: {learning_rate}
        b1: momentum decay in [0, 1) (optax's ``momentum``).
        b2: accumulator decay in (0, 1]; 1 (the paper's SM3) sums squares.
        eps: added inside the square root; must be >= 0.
        mu_dtype: {mu_dtype}
        nu_dtype: dtype of the accumulators; ``None`` uses at least float32.

    {hyperparams_note}

    References:
        Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization", NeurIPS 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.sm3(learning_rate=0.5, b1=0.0, eps=0.0)
        >>> tx.update(jnp.array([[3.0, -4.0]]), tx.init(jnp.zeros((1, 2))))[0]
        Array([[-0.5,  0.5]], dtype=float32)
    """
    rescale = scale_by_sm3(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return chain(rescale, scale_by_learning_rate(learning_rate))
