r"""Float64 NumPy references for Adafactor, Rprop, Adan, ADOPT and AdEMAMix, from the papers.

Same interface as :mod:`tests.reference.optimizers`:
``name(params, grads, **hyperparams) -> final params``, keyword names gradtx's,
steps counted from ``t = 1``, ``dtype`` selecting the arithmetic (float64 by default).
"""

from __future__ import annotations

import numpy as np

from tests.reference._tree import leafwise


def _rms(x):
    return np.sqrt(np.mean(x * x))


@leafwise
def adafactor(
    p,
    grads,
    learning_rate=None,
    min_dim_size_to_factor=128,
    decay_rate=0.8,
    decay_offset=0.0,
    multiply_by_parameter_scale=True,
    clipping_threshold=1.0,
    momentum=None,
    eps=1e-30,
    min_param_scale=1e-3,
    factored=True,
    weight_decay=0.0,
):
    r"""Adafactor (Shazeer & Stern, ICML 2018, Algorithms 4 and 5, section 7 for momentum).

    .. math::
        \hat\beta_t = 1 - t^{-c}, \quad
        R_t = \hat\beta_t R_{t-1}
            + (1-\hat\beta_t) \operatorname{mean}_{\text{largest axis}}(G^2 + \epsilon_1),
        \quad C_t \text{ likewise over the second-largest axis}, \quad
        \hat V_t = R_t C_t / \operatorname{mean}(R_t),

    (unfactored: :math:`V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t)(G^2 + \epsilon_1)`),
    :math:`U_t = G_t / \sqrt{\hat V_t}`, :math:`\hat U_t = U_t / \max(1, \operatorname{RMS}(U_t)/d)`,
    :math:`\alpha_t = \rho_t \max(\epsilon_2, \operatorname{RMS}(X_{t-1}))`,
    :math:`X_t = X_{t-1} - \alpha_t \hat U_t`.

    ``learning_rate=None`` is the paper's :math:`\rho_t = \min(10^{-2}, 1/\sqrt t)`.
    With momentum, :math:`\alpha_t \hat U_t` is averaged (optax's placement);
    ``weight_decay`` subtracts :math:`\lambda X_{t-1}` unscaled (optax's).
    """
    shape = p.shape
    dims = None
    if factored and len(shape) >= 2:
        order = np.argsort(shape)
        if shape[order[-2]] >= min_dim_size_to_factor:
            dims = int(order[-2]), int(order[-1])  # (second largest, largest)
    v = np.zeros_like(p)
    if dims is not None:
        d1, d0 = dims
        row = np.zeros(np.delete(shape, d0), p.dtype)
        col = np.zeros(np.delete(shape, d1), p.dtype)
    m = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        beta = 1 - (t - decay_offset) ** (-decay_rate)
        g2 = g * g + eps
        if dims is None:
            v = beta * v + (1 - beta) * g2
            v_hat = v
        else:
            row = beta * row + (1 - beta) * np.mean(g2, axis=d0)
            col = beta * col + (1 - beta) * np.mean(g2, axis=d1)
            row_axis = d1 - 1 if d1 > d0 else d1
            r = row / np.mean(row, axis=row_axis, keepdims=True)
            v_hat = np.expand_dims(r, d0) * np.expand_dims(col, d1)
        u = g / np.sqrt(v_hat)
        if clipping_threshold is not None:
            u = u / max(1, _rms(u) / clipping_threshold)
        rho = min(1e-2, 1 / t**0.5) if learning_rate is None else learning_rate
        alpha = rho * max(min_param_scale, _rms(p)) if multiply_by_parameter_scale else rho
        step = alpha * u
        if momentum is not None:
            m = momentum * m + (1 - momentum) * step
            step = m
        p = p - (step + weight_decay * p)
    return p


@leafwise
def rprop(p, grads, learning_rate=1e-2, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
    r"""Rprop (Riedmiller & Braun, ICNN 1993), the variant without weight-backtracking ("Rprop-").

    Per element, with :math:`\Delta_0` = ``learning_rate`` and :math:`g'_{0} = 0`:

    .. math::
        \Delta_t = \begin{cases}
            \min(\eta^+ \Delta_{t-1}, \Delta_{max}) & g'_{t-1} g_t > 0 \\
            \max(\eta^- \Delta_{t-1}, \Delta_{min}) & g'_{t-1} g_t < 0 \\
            \Delta_{t-1} & \text{otherwise}
        \end{cases}, \quad
        g'_t = \begin{cases} 0 & g'_{t-1} g_t < 0 \\ g_t & \text{otherwise} \end{cases}, \quad
        \theta_t = \theta_{t-1} - \operatorname{sign}(g'_t)\, \Delta_t

    (torch's form: after a sign change the step is skipped and the stored gradient zeroed).
    """
    delta = np.full_like(p, learning_rate)
    prev = np.zeros_like(p)
    for g in grads:
        s = prev * g
        delta = np.where(s > 0, np.minimum(delta * eta_plus, max_step_size), delta)
        delta = np.where(s < 0, np.maximum(delta * eta_minus, min_step_size), delta)
        g = np.where(s < 0, 0, g).astype(p.dtype)
        p = p - np.sign(g) * delta
        prev = g
    return p


@leafwise
def adan(p, grads, learning_rate=1e-3, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0, weight_decay=0.0):
    r"""Adan (Xie et al., arXiv:2208.06677v4, Algorithm 1), in the authors' code's convention.

    The code's betas are decay rates (the paper's :math:`\beta_k` are :math:`1 -` these)
    and it bias-corrects each moment; :math:`g_0 = g_1` (no difference on the first step):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        d_t = \beta_2 d_{t-1} + (1-\beta_2)(g_t - g_{t-1}), \quad
        n_t = \beta_3 n_{t-1} + (1-\beta_3)\big(g_t + \beta_2 (g_t - g_{t-1})\big)^2,

    :math:`\theta_t = \theta_{t-1} - \eta\,\big(\frac{\hat m_t + \beta_2 \hat d_t}{\sqrt{\hat n_t +
    \epsilon_{root}} + \epsilon} + \lambda\theta_{t-1}\big)` (decoupled decay in AdamW's form).
    """
    m, d, n = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    prev = None
    for t, g in enumerate(grads, start=1):
        diff = np.zeros_like(g) if prev is None else g - prev
        m = b1 * m + (1 - b1) * g
        d = b2 * d + (1 - b2) * diff
        n = b3 * n + (1 - b3) * (g + b2 * diff) ** 2
        num = m / (1 - b1**t) + b2 * d / (1 - b2**t)
        u = num / (np.sqrt(n / (1 - b3**t) + eps_root) + eps)
        p = p - learning_rate * (u + weight_decay * p)
        prev = g
    return p


@leafwise
def adopt(
    p,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.9999,
    eps=1e-6,
    nesterov=False,
    use_clipping=True,
    clip_exponent=0.25,
    weight_decay=0.0,
):
    r"""ADOPT (Taniguchi et al., NeurIPS 2024, Algorithm 2 with clipping, section 4).

    :math:`v_0 = g_0^2`; for :math:`t \ge 1`:
    :math:`m_t = \beta_1 m_{t-1}
    + (1-\beta_1)\operatorname{clip}(g_t / \max(\sqrt{v_{t-1}}, \epsilon), t^{1/4})`,
    :math:`\theta_t = \theta_{t-1} - \eta (m_t + \lambda\theta_{t-1})`,
    :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`. Nesterov (optax's form):
    step along :math:`\beta_1 m_t + (1-\beta_1)\operatorname{clip}(\cdot)`.
    """
    m = np.zeros_like(p)
    v = grads[0] * grads[0]
    p = p - learning_rate * weight_decay * p  # the decay also acts on the initialising step
    for t, g in enumerate(grads[1:], start=1):
        x = g / np.maximum(np.sqrt(v), eps)
        if use_clipping:
            x = np.clip(x, -(t**clip_exponent), t**clip_exponent)
        m = b1 * m + (1 - b1) * x
        step = b1 * m + (1 - b1) * x if nesterov else m
        p = p - learning_rate * (step + weight_decay * p)
        v = b2 * v + (1 - b2) * g * g
    return p


@leafwise
def ademamix(
    p,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    b3=0.9999,
    alpha=5.0,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=0.0,
):
    r"""AdEMAMix (Pagliardini, Ablin & Grangier, arXiv:2409.03137, Algorithm 1), constant alpha and b3.

    .. math::
        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
        m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

    :math:`\theta_t = \theta_{t-1} - \eta\big(\frac{\hat m^{(1)}_t + \alpha m^{(2)}_t}
    {\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} + \lambda\theta_{t-1}\big)`.
    """
    m1, m2, v = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m1 / (1 - b1**t) + alpha * m2) / (np.sqrt(v / (1 - b2**t) + eps_root) + eps)
        p = p - learning_rate * (u + weight_decay * p)
    return p
