"""Adafactor: factored second moments, update clipping and relative step sizes."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, hyperparam_dtype
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative, check_range
from gradtx._optimizers._common import is_on, negate
from gradtx._transforms._factored import ClipByBlockRms, Ema, ScaleByParamBlockRms, scale_by_factored_rms
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._weight_decay import Mask, add_decayed_weights


def relative_step_size(step: jax.Array) -> jax.Array:
    r"""The paper's step-size schedule :math:`\rho_t = \min(10^{-2}, 1/\sqrt{t})`, ``t = step + 1``."""
    t = jnp.asarray(step, hyperparam_dtype(None)) + 1
    return jnp.minimum(1e-2, jax.lax.rsqrt(t))


@shared_docs
def adafactor(
    learning_rate: HyperParam = relative_step_size,
    min_dim_size_to_factor: int = 128,
    decay_rate: HyperParam = 0.8,
    decay_offset: HyperParam = 0.0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: HyperParam | None = 1.0,
    momentum: HyperParam | None = None,
    *,
    eps: HyperParam = 1e-30,
    min_param_scale: HyperParam = 1e-3,
    factored: bool = True,
    weight_decay: HyperParam = 0.0,
    mask: Mask | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adafactor: Adam-like steps with sublinear memory for the second moment.

    .. math::
        \hat u_t = \frac{g_t}{\sqrt{\hat V_t}}, \quad
        U_t = \frac{\hat u_t}{\max(1, \operatorname{RMS}(\hat u_t) / d)}, \quad
        \theta_t = \theta_{t-1} - \rho_t \max(\epsilon_2, \operatorname{RMS}(\theta_{t-1}))\, U_t

    :math:`\hat V_t` is the factored (for leaves with two axes of size >=
    ``min_dim_size_to_factor``) or full second-moment estimate with decay
    :math:`\hat\beta_t = 1 - t^{-0.8}`, see :func:`scale_by_factored_rms`. RMS is taken
    over each whole leaf; :math:`d` = ``clipping_threshold`` (``None`` skips
    the clipping), :math:`\epsilon_2` = ``min_param_scale`` and the factor
    :math:`\max(\epsilon_2, \operatorname{RMS}(\theta_{t-1}))` is dropped when
    ``multiply_by_parameter_scale=False``. With ``momentum`` :math:`\beta_1`,
    :math:`\rho_t \max(\epsilon_2, \operatorname{RMS}(\theta_{t-1})) U_t` is
    replaced by its running average :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1)(\cdot)`
    (from :math:`m_0 = 0`, no bias correction). ``weight_decay`` :math:`\lambda`
    then subtracts :math:`\lambda\theta_{t-1}`, *not* multiplied by the learning rate.

    The default learning rate is the paper's relative step size
    :math:`\rho_t = \min(10^{-2}, 1/\sqrt t)`, a schedule. Otherwise this is
    ``optax.adafactor`` with the same order of operations and defaults, except:

    - optax's ``learning_rate=None`` means :math:`\rho_t = 1`: pass ``learning_rate=1.0``;
    - optax's ``weight_decay_rate`` / ``weight_decay_mask`` are ``weight_decay`` / ``mask``;
    - optax keeps the momentum in float32 (``dtype_momentum``); gradtx in ``mu_dtype``,
      by default the parameters' dtype;
    - optax computes :math:`\hat\beta_t` in float32 even under ``jax_enable_x64``.

    Args:
        learning_rate: {learning_rate}
        min_dim_size_to_factor: factor a leaf's second moment only if its two
            largest axes have at least this size.
        decay_rate: exponent :math:`c` of :math:`\hat\beta_t = 1 - t^{-c}`, >= 0.
        decay_offset: subtracted from the step count in :math:`\hat\beta_t` (fine-tuning).
        multiply_by_parameter_scale: scale steps by :math:`\max(\epsilon_2, \operatorname{RMS}(\theta))`.
        clipping_threshold: :math:`d` > 0 of the update clipping, or ``None`` for none.
        momentum: :math:`\beta_1` in [0, 1) of the optional first moment, or ``None`` for none.
        eps: :math:`\epsilon_1` added to :math:`g^2`; must be >= 0.
        min_param_scale: :math:`\epsilon_2` >= 0, the smallest parameter scale.
        factored: factor the second moments at all.
        weight_decay: decoupled decay coefficient :math:`\lambda` >= 0 (not scaled by the learning rate).
        mask: {mask}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear
        Memory Cost", ICML 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adafactor(learning_rate=0.1, min_dim_size_to_factor=2)
        >>> params = {"w": jnp.full((2, 3), 2.0)}
        >>> updates, _ = tx.update({"w": jnp.ones((2, 3))}, tx.init(params), params)
        >>> updates["w"]
        Array([[-0.2, -0.2, -0.2],
               [-0.2, -0.2, -0.2]], dtype=float32)
    """
    check_range("learning_rate", learning_rate, 0.0)
    check_range("min_param_scale", min_param_scale, 0.0)
    check_nonnegative("weight_decay", weight_decay)
    if clipping_threshold is not None:
        check_range("clipping_threshold", clipping_threshold, 0.0, low_open=True)
    if momentum is not None:
        check_beta("momentum", momentum)
    reject_quantized("adafactor", mu_dtype=mu_dtype)
    rescale = scale_by_factored_rms(
        decay_rate,
        decay_offset,
        eps,
        factored=factored,
        min_dim_size_to_factor=min_dim_size_to_factor,
        nu_dtype=nu_dtype,
    )
    clip = (ClipByBlockRms(clipping_threshold),) if clipping_threshold is not None else ()
    param_scale = (ScaleByParamBlockRms(min_param_scale),) if multiply_by_parameter_scale else ()
    average = (Ema(momentum, mu_dtype),) if momentum is not None else ()
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(
        rescale,
        *clip,
        scale_by_learning_rate(learning_rate, flip_sign=False),
        *param_scale,
        *average,
        *decay,
        negate(),
    )
