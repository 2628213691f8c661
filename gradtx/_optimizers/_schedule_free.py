"""Schedule-Free SGD and AdamW (Defazio et al., 2024)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, chain, identity
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.validation import check_beta, check_nonnegative, check_range
from gradtx._optimizers._common import is_on
from gradtx._transforms._schedule_free import ScaleByRmsCorrected, ScheduleFree
from gradtx._transforms._weight_decay import add_decayed_weights
from gradtx._wrappers._shared import check_count

_SF_DOC = r"""

    With :math:`y_t` the parameters (where gradients are taken), :math:`z_t`
    the base iterate and :math:`x_t` the average (where to evaluate), and
    :math:`d_t` the base direction at :math:`y_t` (see above):

    .. math::
        z_{t+1} = z_t - \gamma_t d_t, \qquad
        c_{t+1} = \frac{\gamma_{\max,t}^{r}}{\sum_{s \le t} \gamma_{\max,s}^{r}}, \qquad
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \qquad
        y_{t+1} = (1-\beta_1) z_{t+1} + \beta_1 x_{t+1}

    with :math:`x_0 = z_0 = y_0` the initial parameters, :math:`\gamma_t` the
    learning rate (times :math:`\min(1, t / \text{warmup})` during the linear
    warmup, :math:`t` counted from 1), :math:`\gamma_{\max,t}` its running
    maximum and :math:`r` = ``weight_lr_power``. The state keeps :math:`z`
    only; :math:`x` is recovered from the parameters, so the updates must reach
    ``apply_updates`` unmodified. Evaluate with
    :func:`gradtx.schedule_free_eval_params`."""


def _check_common(learning_rate, b1, weight_decay, weight_lr_power, warmup_steps) -> float:
    check_nonnegative("learning_rate", learning_rate)
    check_range("b1", b1, 0.0, 1.0, low_open=True)
    check_nonnegative("weight_decay", weight_decay)
    check_nonnegative("weight_lr_power", weight_lr_power)
    if warmup_steps is None:
        return 0
    check_count("warmup_steps", warmup_steps, 0)
    return warmup_steps


def _dtype(state_dtype: Any) -> Any:
    return None if state_dtype is None else jnp.dtype(state_dtype)


@shared_docs
def schedule_free_sgd(
    learning_rate: HyperParam = 1.0,
    warmup_steps: int | None = None,
    b1: HyperParam = 0.9,
    weight_decay: HyperParam = 0.0,
    weight_lr_power: HyperParam = 2.0,
    *,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Schedule-Free SGD: the base direction is the gradient plus L2 decay, :math:`d_t = g_t + \lambda y_t`.
    {schedule_free}

    Defaults are optax's (``optax.contrib.schedule_free_sgd``), which this
    equals for a constant learning rate. With ``warmup_steps`` optax evaluates
    its warmup schedule at :math:`t-1` for the :math:`z` step and at :math:`t`
    for the averaging weight; gradtx uses :math:`\min(1, t/\text{warmup})`
    for both, as the authors' PyTorch implementation does. optax's
    ``weight_decay=None`` is gradtx's ``0.0``.

    Args:
        learning_rate: {learning_rate} Schedules multiply the warmup ramp.
        warmup_steps: length of the linear warmup, an integer >= 0 (``None``
            or 0: none); stored as ``warmup_steps``.
        b1: interpolation :math:`\beta_1` between :math:`x` and :math:`z`, in (0, 1].
        weight_decay: coefficient :math:`\lambda` >= 0 of the L2 term, taken at :math:`y_t`.
        weight_lr_power: :math:`r` >= 0, the power of the learning rate in the averaging weights.
        state_dtype: dtype of :math:`z`; ``None`` uses each parameter's dtype.

    {hyperparams_note}

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less
        Scheduled", NeurIPS 2024 (arXiv:2405.15682).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.schedule_free_sgd(learning_rate=0.5)
        >>> params = jnp.array([2.0])
        >>> state = tx.init(params)
        >>> for _ in range(30):
        ...     updates, state = tx.update(jax.grad(lambda p: jnp.sum(p**2))(params), state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> bool(abs(gradtx.schedule_free_eval_params(state, params)[0]) < 0.1)
        True
    """
    warmup = _check_common(learning_rate, b1, weight_decay, weight_lr_power, warmup_steps)
    base = add_decayed_weights(weight_decay) if is_on(weight_decay) else identity()
    return ScheduleFree(base, learning_rate, b1, weight_lr_power, warmup, _dtype(state_dtype))


@shared_docs
def schedule_free_adamw(
    learning_rate: HyperParam = 0.0025,
    warmup_steps: int | None = None,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    eps: HyperParam = 1e-8,
    weight_decay: HyperParam = 0.0,
    weight_lr_power: HyperParam = 2.0,
    *,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Schedule-Free AdamW: the base direction is Adam's without momentum, plus decoupled decay.

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        d_t = \frac{g_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon} + \lambda y_t
    {schedule_free}

    Defaults and the normalisation are optax's
    (``optax.contrib.schedule_free_adamw``), which this equals for a constant
    learning rate. The authors' PyTorch ``AdamWScheduleFree`` instead adds eps
    to the *uncorrected* :math:`\sqrt{v_t}` and folds
    :math:`\sqrt{1-\beta_2^t}` into :math:`\gamma_t` (so also into the
    averaging weights); the two agree once :math:`\beta_2^t \approx 0` and eps
    is negligible. The warmup differs from optax's as in :func:`schedule_free_sgd`.

    Args:
        learning_rate: {learning_rate} Schedules multiply the warmup ramp.
        warmup_steps: length of the linear warmup, an integer >= 0 (``None``
            or 0: none); stored as ``warmup_steps``.
        b1: interpolation :math:`\beta_1` between :math:`x` and :math:`z`, in (0, 1].
        b2: {b2}
        eps: {eps}
        weight_decay: decoupled decay :math:`\lambda` >= 0, taken at :math:`y_t`.
        weight_lr_power: :math:`r` >= 0, the power of the learning rate in the averaging weights.
        state_dtype: dtype of :math:`z`; ``None`` uses each parameter's dtype.

    {hyperparams_note}

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less
        Scheduled", NeurIPS 2024 (arXiv:2405.15682).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.schedule_free_adamw(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([0.5, -2.0])}, state, params)
        >>> gradtx.apply_updates(params, updates)["w"]  # y_1 = z_1 = y_0 - 0.1 * sign(g)
        Array([ 0.9, -0.9], dtype=float32)
    """
    warmup = _check_common(learning_rate, b1, weight_decay, weight_lr_power, warmup_steps)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    rms = ScaleByRmsCorrected(b2, eps)
    base = chain(rms, add_decayed_weights(weight_decay)) if is_on(weight_decay) else rms
    return ScheduleFree(base, learning_rate, b1, weight_lr_power, warmup, _dtype(state_dtype))


for _fn in (schedule_free_sgd, schedule_free_adamw):
    _fn.__doc__ = _fn.__doc__.replace("{schedule_free}", _SF_DOC.strip())
