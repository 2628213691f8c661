"""Sign-based optimizers: signSGD, Signum and Lion."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._optimizers._common import is_on
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._sign import scale_by_lion, scale_by_sign, scale_by_signum
from gradtx._transforms._weight_decay import Mask, add_decayed_weights


@shared_docs
def sign_sgd(learning_rate: HyperParam = 1e-3) -> GradientTransformation:
    r"""signSGD: a step of fixed size against the sign of each gradient element.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t\, \operatorname{sign}(g_t)

    Equals ``optax.sign_sgd`` (which requires ``learning_rate``).

    Args:
        learning_rate: {learning_rate}

    {hyperparams_note}

    References:
        Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed
        Optimisation for Non-Convex Problems", ICML 2018 (Algorithm 1).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.sign_sgd(learning_rate=0.1)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@shared_docs
def signum(
    learning_rate: HyperParam = 1e-3, beta: HyperParam = 0.9, *, mu_dtype: Any = None
) -> GradientTransformation:
    r"""Signum: signSGD applied to an exponential moving average of the gradients.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
        \theta_t = \theta_{t-1} - \eta_t\, \operatorname{sign}(m_t)

    Equals ``optax.signum`` (whose ``accumulator_dtype`` is ``mu_dtype`` here).

    Args:
        learning_rate: {learning_rate}
        beta: decay rate of the moving average, in [0, 1).
        mu_dtype: {mu_dtype} ``"int8"`` stores it 8-bit block-wise quantised.

    {hyperparams_note}

    References:
        Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed
        Optimisation for Non-Convex Problems", ICML 2018 (Algorithm 3).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.signum(learning_rate=0.1)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    return chain(scale_by_signum(beta, mu_dtype=mu_dtype), scale_by_learning_rate(learning_rate))


@shared_docs
def lion(
    learning_rate: HyperParam = 1e-4,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.99,
    *,
    weight_decay: HyperParam = 1e-3,
    mask: Mask | None = None,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Lion (EvoLved Sign Momentum), with decoupled weight decay.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \left( \operatorname{sign}\left(\beta_1 m_{t-1}
        + (1-\beta_1) g_t\right) + \lambda\, \theta_{t-1} \right), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    The decay is multiplied by the learning rate. Equals ``optax.lion``, whose
    defaults (``b1=0.9, b2=0.99, weight_decay=1e-3``) these are; optax
    requires ``learning_rate``. The paper advises a learning rate 3-10x
    smaller than AdamW's and a weight decay 3-10x larger, since every element
    moves by exactly :math:`\eta_t` per step.

    Args:
        learning_rate: {learning_rate}
        b1: interpolation weight of the momentum in the update direction, in [0, 1).
        b2: decay rate of the stored momentum, in [0, 1).
        weight_decay: the decoupled decay coefficient :math:`\lambda` >= 0.
        mask: {mask}
        mu_dtype: {mu_dtype} ``"int8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised; see docs/memory.md.

    {hyperparams_note}

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023
        (Algorithm 2).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.lion(learning_rate=0.1, weight_decay=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(scale_by_lion(b1, b2, mu_dtype=mu_dtype), *decay, scale_by_learning_rate(learning_rate))
