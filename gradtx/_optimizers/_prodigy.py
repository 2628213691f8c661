"""Prodigy: a learning-rate-free AdamW (Mishchenko & Defazio, 2023)."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative, check_range
from gradtx._transforms._prodigy import Prodigy


@shared_docs
def prodigy(
    learning_rate: HyperParam = 1.0,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    beta3: HyperParam | None = None,
    eps: HyperParam = 1e-8,
    d0: HyperParam = 1e-6,
    d_coef: HyperParam = 1.0,
    weight_decay: HyperParam = 0.0,
    *,
    safeguard_warmup: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Prodigy: AdamW on :math:`d_t g_t` with a step size :math:`d_t` estimated from the distance travelled.

    With :math:`x_0` the initial parameters, :math:`\gamma_t` the learning
    rate (a multiplier: keep it 1, or a schedule with peak 1) and
    :math:`\hat\eta_t = d_t \gamma_t \sqrt{1-\beta_2^t} / (1-\beta_1^t)`:

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) d_t g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t^2 g_t^2, \\
        r_t = \beta_3 r_{t-1} + \frac{d_t}{d_0} \hat\eta_t \langle g_t, x_0 - x_t \rangle, \quad
        s_t = \beta_3 s_{t-1} + \frac{\hat\eta_t}{d_0} d_t g_t, \quad
        d_{t+1} = \max\!\left(d_t, \; c \frac{r_t}{\|s_t\|_1}\right), \\
        x_{t+1} = x_t - \hat\eta_t \left( \frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon} + \lambda x_t \right)

    with :math:`\beta_3 = \sqrt{\beta_2}` by default and :math:`c` = ``d_coef``.
    ``safeguard_warmup=True`` uses :math:`d_t` in place of :math:`\hat\eta_t`
    in :math:`s_t`. The sums and :math:`d_t` are global over the whole tree.

    Equals ``optax.contrib.prodigy`` (``betas=(b1, b2)``,
    ``estim_lr0=d0``, ``estim_lr_coef=d_coef``), and the authors' PyTorch
    ``Prodigy`` with bias correction and no growth-rate limit. Two
    differences: while :math:`\|s_t\|_1 = 0` (only zero gradients so far)
    :math:`d` is kept where optax computes 0/0 and turns NaN; and the moment
    buffers are kept in at least float32 (:math:`d_0 g` squared underflows
    float16).

    Args:
        learning_rate: {learning_rate} A multiplier of the estimated step size.
        b1: {b1}
        b2: {b2}
        beta3: decay rate of :math:`r_t` and :math:`s_t`, in [0, 1); ``None``
            uses :math:`\sqrt{\beta_2}` (then not a separate hyperparameter).
        eps: {eps}
        d0: initial estimate :math:`d_0` > 0 (an under-estimate).
        d_coef: :math:`c` > 0, multiplies every estimate.
        weight_decay: decoupled decay :math:`\lambda` >= 0 (AdamW style).
        safeguard_warmup: see above; helps with a learning-rate warmup.
        mu_dtype: dtype of the first-moment buffer; ``None`` uses each
            parameter's dtype promoted to at least float32.
        nu_dtype: dtype of the second-moment buffer; ``None`` as for
            ``mu_dtype``. ``jnp.bfloat16`` halves the memory and keeps
            float32's range; float16 underflows (:math:`(d_0 g)^2`).

    {hyperparams_note}

    References:
        Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive
        Parameter-Free Learner", ICML 2024 (arXiv:2306.06101).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.prodigy()
        >>> params = jnp.array([3.0, -2.0])
        >>> state = tx.init(params)
        >>> for _ in range(200):
        ...     updates, state = tx.update(jax.grad(lambda p: jnp.sum(p**2))(params), state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> bool(gradtx.get_hyperparam(state, "d0") < state.d)  # D has grown from d0
        True
    """
    check_nonnegative("learning_rate", learning_rate)
    check_beta("b1", b1)
    check_beta("b2", b2)
    if beta3 is not None:
        check_beta("beta3", beta3)
    check_nonnegative("eps", eps)
    check_range("d0", d0, 0.0, low_open=True)
    check_range("d_coef", d_coef, 0.0, low_open=True)
    check_nonnegative("weight_decay", weight_decay)
    reject_quantized("prodigy", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return Prodigy(
        learning_rate,
        b1,
        b2,
        beta3,
        eps,
        d0,
        d_coef,
        weight_decay,
        bool(safeguard_warmup),
        mu_dtype,
        nu_dtype,
    )
