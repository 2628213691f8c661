r"""Float64 NumPy reference optimizers, written from the papers' update equations.

Each function has the interface ``name(params, grads, **hyperparams) -> final params``:
``params`` is a pytree of arrays, ``grads`` a list of gradient pytrees (a given
stream, independent of the parameters), and the result the parameters after
one update per gradient. The rules are written for a single array (``p`` and
its gradients ``grads``) and lifted to pytrees by :func:`leafwise`.

Keyword names and defaults follow gradtx's documented API, so a test can pass
the same keywords to both; where a default differs from the paper's, the
docstring says so. Steps are counted from ``t = 1``. Every reference also takes
``dtype`` (float64 by default; see :mod:`tests.reference._tree`).
"""

from __future__ import annotations

import numpy as np

from tests.reference._tree import leafwise


@leafwise
def sgd(p, grads, learning_rate, momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0):
    r"""SGD with heavy-ball or Nesterov momentum, in torch's convention.

    Robbins & Monro (1951); heavy ball: Polyak (1964); Nesterov in the
    "look-ahead" form of Sutskever et al. (ICML 2013, eq. 3-4), as torch writes it:

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1}, \quad
        b_1 = g_1, \quad b_t = \mu b_{t-1} + (1-d) g_t, \quad
        \theta_t = \theta_{t-1} - \eta \cdot (g_t + \mu b_t \text{ if Nesterov else } b_t)
    """
    buf = None
    for g in grads:
        g = g + weight_decay * p  # coupled L2: the penalty's gradient joins the loss's
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - learning_rate * g
    return p


@leafwise
def adagrad(p, grads, learning_rate=1e-2, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0):
    r"""AdaGrad, diagonal form (Duchi, Hazan & Singer, JMLR 2011, eq. 1 / Fig. 1).

    .. math::
        r_t = r_{t-1} + g_t^2, \qquad \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{r_t} + \epsilon}

    with :math:`r_0` = ``initial_accumulator_value`` (torch's form; the paper has
    :math:`\delta` in place of :math:`\epsilon`, also outside the root).
    """
    r = np.full_like(p, initial_accumulator_value)
    for g in grads:
        g = g + weight_decay * p
        r = r + g * g
        p = p - learning_rate * g / (np.sqrt(r) + eps)
    return p


@leafwise
def rmsprop(
    p,
    grads,
    learning_rate=1e-3,
    decay=0.9,
    eps=1e-8,
    eps_in_sqrt=True,
    centered=False,
    momentum=0.0,
    nesterov=False,
    initial_scale=0.0,
    weight_decay=0.0,
):
    r"""RMSProp (Tieleman & Hinton, Lecture 6.5, 2012), centered form of Graves (2013, eq. 38-40).

    .. math::
        \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2, \quad
        \bar g_t = \rho \bar g_{t-1} + (1-\rho) g_t \text{ (centered)}, \quad
        s_t = \frac{g_t}{\sqrt{\nu_t - \bar g_t^2 + \epsilon}}

    (``eps_in_sqrt=False``: :math:`\sqrt{\cdot} + \epsilon`, torch's form). Momentum
    accumulates the rescaled gradient before the learning rate, as torch does:
    :math:`b_t = \mu b_{t-1} + s_t`, step :math:`b_t`, or :math:`s_t + \mu b_t` with Nesterov.
    """
    nu = np.full_like(p, initial_scale)
    mean = np.zeros_like(p)
    buf = np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        nu = decay * nu + (1 - decay) * g * g
        var = nu
        if centered:
            mean = decay * mean + (1 - decay) * g
            var = nu - mean * mean
        s = g / (np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps)
        if momentum:
            buf = momentum * buf + s
            s = s + momentum * buf if nesterov else buf
        p = p - learning_rate * s
    return p


@leafwise
def adadelta(p, grads, learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    r"""Adadelta (Zeiler 2012, Algorithm 1).

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
        \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
        E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho)\Delta_t^2, \quad
        \theta_t = \theta_{t-1} - \eta\Delta_t

    The paper has no learning rate (:math:`\eta = 1`) and uses :math:`\rho = 0.95`;
    the default 0.9 is torch's. :math:`E[\Delta^2]` accumulates the step before
    :math:`\eta`, as torch does.
    """
    eg2 = np.zeros_like(p)
    edx2 = np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        eg2 = rho * eg2 + (1 - rho) * g * g
        delta = np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * delta * delta
        p = p - learning_rate * delta
    return p


class _AdamDirection:
    r"""Adam's bias-corrected step direction (Kingma & Ba, ICLR 2015, Algorithm 1).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        d_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}

    - AMSGrad (Reddi et al., ICLR 2018, Algorithm 2) in torch's convention:
      :math:`\hat v_t = \max_{s \le t} v_s / (1-\beta_2^t)`, the running maximum of the
      *uncorrected* :math:`v`, then corrected with the current step's factor.
    - Nesterov (Nadam; Dozat 2016, in optax's form):
      :math:`\hat m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`.
    """

    def __init__(self, like, b1, b2, eps, eps_root, amsgrad=False, nesterov=False):
        self.b1, self.b2, self.eps, self.eps_root = b1, b2, eps, eps_root
        self.amsgrad, self.nesterov = amsgrad, nesterov
        self.m, self.v, self.v_max, self.t = np.zeros_like(like), np.zeros_like(like), np.zeros_like(like), 0

    def __call__(self, g):
        b1, b2 = self.b1, self.b2
        self.t += 1
        t = self.t
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        self.v_max = np.maximum(self.v_max, self.v)
        if self.nesterov:
            m_hat = b1 * self.m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = self.m / (1 - b1**t)
        v_hat = (self.v_max if self.amsgrad else self.v) / (1 - b2**t)
        return m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


@leafwise
def adam(
    p,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=0.0,
    amsgrad=False,
    nesterov=False,
):
    r"""Adam (Kingma & Ba, ICLR 2015, Algorithm 1) with coupled L2 weight decay.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1}, \qquad \theta_t = \theta_{t-1} - \eta\, d_t

    with :math:`d_t` the bias-corrected direction of :class:`_AdamDirection`
    (which also gives the AMSGrad and Nesterov variants).
    """
    direction = _AdamDirection(p, b1, b2, eps, eps_root, amsgrad, nesterov)
    for g in grads:
        p = p - learning_rate * direction(g + weight_decay * p)
    return p


@leafwise
def adamw(
    p,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=1e-4,
    amsgrad=False,
    nesterov=False,
):
    r"""AdamW, decoupled weight decay (Loshchilov & Hutter, ICLR 2019, Algorithm 2, line 12).

    .. math::
        \theta_t = \theta_{t-1} - \eta\,(d_t + \lambda\theta_{t-1})

    with the schedule multiplier :math:`\eta_t` of the paper folded into the
    learning rate, as torch and optax do. The default :math:`\lambda` = 1e-4 is gradtx's
    (and optax's); torch's is 1e-2.
    """
    direction = _AdamDirection(p, b1, b2, eps, eps_root, amsgrad, nesterov)
    for g in grads:
        p = p - learning_rate * (direction(g) + weight_decay * p)
    return p


def nadam(
    params,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=0.0,
    *,
    dtype=np.float64,
):
    r"""Nadam (Dozat, "Incorporating Nesterov Momentum into Adam", 2016), optax's form.

    .. math::
        \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g_t}{1-\beta_1^t}, \qquad
        \theta_t = \theta_{t-1} - \eta \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

    (no momentum-decay schedule, unlike torch's ``NAdam``).
    """
    return adam(
        params,
        grads,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
        nesterov=True,
        dtype=dtype,
    )


def amsgrad(
    params,
    grads,
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=0.0,
    *,
    dtype=np.float64,
):
    r"""AMSGrad (Reddi, Kale & Kumar, ICLR 2018, Algorithm 2) with Adam's bias corrections.

    .. math::
        v^{max}_t = \max(v^{max}_{t-1}, v_t), \qquad
        \theta_t = \theta_{t-1} - \eta \frac{m_t / (1-\beta_1^t)}{\sqrt{v^{max}_t / (1-\beta_2^t)} + \epsilon}

    The paper has no bias correction; this is torch's ``Adam(amsgrad=True)``.
    """
    return adam(
        params,
        grads,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
        amsgrad=True,
        dtype=dtype,
    )


@leafwise
def adamax(p, grads, learning_rate=2e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    r"""AdaMax (Kingma & Ba, ICLR 2015, Algorithm 2).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\, \frac{m_t}{u_t}

    The paper has no :math:`\epsilon`; torch and optax add it to :math:`|g_t|`.
    """
    m = np.zeros_like(p)
    u = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - learning_rate / (1 - b1**t) * m / u
    return p


@leafwise
def qhadam(p, grads, learning_rate=1e-3, b1=0.995, b2=0.999, nu1=0.7, nu2=1.0, eps=1e-8, weight_decay=0.0):
    r"""QHAdam (Ma & Yarats, ICLR 2019, Algorithm 2 / eq. 8).

    .. math::
        \theta_t = \theta_{t-1} - \eta\,
        \frac{(1-\nu_1) g_t + \nu_1 \hat m_t}{\sqrt{(1-\nu_2) g_t^2 + \nu_2 \hat v_t} + \epsilon}

    with Adam's bias-corrected moments; defaults are the paper's recommendation.
    """
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        num = (1 - nu1) * g + nu1 * m_hat
        den = np.sqrt((1 - nu2) * g * g + nu2 * v_hat) + eps
        p = p - learning_rate * num / den
    return p


@leafwise
def aggmo(p, grads, learning_rate=0.1, betas=(0.0, 0.9, 0.99), weight_decay=0.0):
    r"""Aggregated momentum (Lucas, Sun, Zemel & Grosse, ICLR 2019, eq. 1), the paper's signs.

    .. math::
        v^{(i)}_t = \beta^{(i)} v^{(i)}_{t-1} - g_t, \qquad
        \theta_t = \theta_{t-1} + \frac{\eta}{K} \sum_{i=1}^{K} v^{(i)}_t
    """
    velocities = [np.zeros_like(p) for _ in betas]
    for g in grads:
        g = g + weight_decay * p
        velocities = [beta * v - g for beta, v in zip(betas, velocities)]
        p = p + learning_rate / len(betas) * sum(velocities)
    return p
