"""Sign-based and recent adaptive optimizers: Rprop, Adan, ADOPT, AdEMAMix."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative
from gradtx._optimizers._common import is_on, negate
from gradtx._transforms._modern import ScaleByAdemamix, ScaleByAdopt, scale_by_adan, scale_by_rprop
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._weight_decay import Mask, add_decayed_weights


@shared_docs
def rprop(
    learning_rate: HyperParam = 1e-2,
    etas: tuple[HyperParam, HyperParam] = (0.5, 1.2),
    step_sizes: tuple[HyperParam, HyperParam] = (1e-6, 50.0),
) -> GradientTransformation:
    r"""Rprop: each element moves by its own step size, against the sign of its gradient.

    .. math::
        \Delta_t = \operatorname{clip}(\eta^\pm_t \Delta_{t-1}, \Delta_{min}, \Delta_{max}), \qquad
        \theta_t = \theta_{t-1} - \operatorname{sign}(g'_t)\, \Delta_t

    where :math:`\eta^\pm_t` is :math:`\eta^+` when the gradient kept its sign,
    :math:`\eta^-` when it flipped (and then :math:`g'_t = 0`: the element does
    not move), see :func:`scale_by_rprop`. Meant for full-batch training.

    Arguments and defaults are ``torch.optim.Rprop``'s, and with a constant
    rate so are the results. The step sizes are stored relative to
    ``learning_rate``, so a schedule scales them all (torch uses its ``lr``
    only to initialise them). ``optax.rprop`` differs: each step applies the
    *previous* step's move (its first update is zero).

    Args:
        learning_rate: the initial step size :math:`\Delta_0` > 0 (torch's ``lr``),
            a number or a schedule; stored as ``learning_rate``.
        etas: :math:`(\eta^-, \eta^+)`, with :math:`0 < \eta^- \le 1 \le \eta^+`;
            stored as ``eta_minus`` and ``eta_plus``.
        step_sizes: :math:`(\Delta_{min}, \Delta_{max})`; stored as
            ``min_step_size`` and ``max_step_size``.

    {hyperparams_note}

    References:
        Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation
        Learning: The RPROP Algorithm", ICNN 1993.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.rprop(learning_rate=0.1)
        >>> tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    (eta_minus, eta_plus), (min_step, max_step) = _pair("etas", etas), _pair("step_sizes", step_sizes)
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step, max_step), negate())


def _pair(name: str, value: tuple) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}")
    return tuple(value)


@shared_docs
def adan(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.98,
    b2: HyperParam = 0.92,
    b3: HyperParam = 0.99,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mask: Mask | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adan: adaptive Nesterov momentum.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \left(
        \frac{\hat m_t + \beta_2 \hat d_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}
        + \lambda \theta_{t-1} \right)

    with the bias-corrected moments of :func:`scale_by_adan` (betas as decay
    rates, the authors' code's convention). Defaults are the paper's.

    Differences: ``optax.adan`` weights the gradient difference by
    :math:`1-\beta_2` instead of :math:`\beta_2` (google-deepmind/optax#1715; the
    two agree at ``b2 = 0.5``) and defaults to ``eps_root=1e-8``. The decay is
    AdamW's decoupled form, multiplied by the learning rate, as in optax; the
    paper and the authors' code use the proximal form
    :math:`\theta_t = (\theta_{t-1} - \eta_t u_t) / (1 + \eta_t\lambda)`, which
    differs by :math:`O((\eta\lambda)^2)` per step.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: exponential decay rate of the gradient-difference estimate, in [0, 1).
        b3: {b2}
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: decoupled decay coefficient :math:`\lambda` >= 0.
        mask: {mask}
        mu_dtype: dtype of the two first-moment buffers; ``None`` uses each parameter's dtype.
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm
        for Faster Optimizing Deep Models", IEEE TPAMI 2024 (arXiv:2208.06677).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adan(learning_rate=0.1, eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    rescale = scale_by_adan(b1, b2, b3, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(rescale, *decay, scale_by_learning_rate(learning_rate))


@shared_docs
def adopt(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.9999,
    eps: HyperParam = 1e-6,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_exponent: HyperParam = 0.25,
    weight_decay: HyperParam = 0.0,
    mask: Mask | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""ADOPT: Adam with the second moment taken *before* the current gradient.

    The first gradient only initialises :math:`v_0 = g_0^2` (no step). Then, for :math:`t \ge 1`:

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1)
              \operatorname{clip}\!\left(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}, t^{c}\right), \quad
        \theta_t = \theta_{t-1} - \eta_t (m_t + \lambda\theta_{t-1}), \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2

    where :math:`\operatorname{clip}(x, c)` limits :math:`x` to :math:`[-c, c]`
    (the paper's stabilising clip, :math:`c` = ``clip_exponent`` = 1/4; skipped
    with ``use_clipping=False``; a complex entry keeps its phase and has its
    magnitude limited to :math:`c`). ``nesterov=True`` steps along
    :math:`\beta_1 m_t + (1-\beta_1) \operatorname{clip}(\cdot)` instead. No bias correction.

    Equals ``optax.contrib.adopt``, whose ``clip_value_fn`` (default
    :math:`t^{1/4}`) is here the exponent ``clip_exponent``, a hyperparameter.
    ``weight_decay`` is AdamW's decoupled decay (the authors' ``decouple=True``); it
    acts from the very first update, the one that only initialises :math:`v_0`.

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        eps: lower bound of :math:`\sqrt{v}` in the denominator; must be >= 0.
        nesterov: use the Nesterov form of the momentum.
        use_clipping: clip the normalised gradient to :math:`[-t^c, t^c]`.
        clip_exponent: :math:`c` >= 0 of the clipping bound :math:`t^c`.
        weight_decay: decoupled decay coefficient :math:`\lambda` >= 0.
        mask: {mask}
        mu_dtype: {mu_dtype}
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
        :math:`\beta_2` with the Optimal Rate", NeurIPS 2024.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.adopt(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(2))
        >>> tx.update(jnp.array([0.5, -2.0]), state)[0]  # the first step only sets v
        Array([0., 0.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("clip_exponent", clip_exponent)
    reject_quantized("adopt", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    rescale = ScaleByAdopt(b1, b2, eps, clip_exponent, nesterov, use_clipping, mu_dtype, nu_dtype)
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(rescale, *decay, scale_by_learning_rate(learning_rate))


@shared_docs
def ademamix(
    learning_rate: HyperParam = 1e-3,
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.999,
    b3: HyperParam = 0.9999,
    alpha: HyperParam = 5.0,
    eps: HyperParam = 1e-8,
    *,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mask: Mask | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdEMAMix: AdamW with a second, slow momentum added to the fast one.

    .. math::
        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
        m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \left(
        \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha\, m^{(2)}_t}
             {\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}
        + \lambda\theta_{t-1} \right)

    The slow momentum :math:`m^{(2)}` is not bias-corrected. The paper warms
    up :math:`\alpha` and :math:`\beta_3` with schedules: pass schedules
    ``fn(step)`` for ``alpha`` and ``b3`` (every hyperparameter accepts one).
    Equals ``optax.contrib.ademamix``, defaults included (the paper's, with
    ``learning_rate`` required there).

    Args:
        learning_rate: {learning_rate}
        b1: {b1}
        b2: {b2}
        b3: decay rate of the slow momentum, in [0, 1); a number or a schedule.
        alpha: weight :math:`\alpha` >= 0 of the slow momentum; a number or a schedule.
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: decoupled decay coefficient :math:`\lambda` >= 0.
        mask: {mask}
        mu_dtype: dtype of both momentum buffers; ``None`` uses each parameter's dtype.
        nu_dtype: {nu_dtype}

    {hyperparams_note}

    References:
        Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster,
        Older", ICLR 2025 (arXiv:2409.03137).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.ademamix(learning_rate=0.1, alpha=0.0, eps=0.0)
        >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)
    """
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        check_beta(name, value)
    check_nonnegative("alpha", alpha)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    reject_quantized("ademamix", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    rescale = ScaleByAdemamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype)
    decay = (add_decayed_weights(weight_decay, mask),) if is_on(weight_decay) else ()
    return chain(rescale, *decay, scale_by_learning_rate(learning_rate))
