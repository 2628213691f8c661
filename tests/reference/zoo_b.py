r"""Float64 NumPy references for the layer-wise optimizers, from the papers' equations.

Same interface as :mod:`tests.reference.optimizers`:
``name(params, grads, **hyperparams) -> final params``, one array at a time,
lifted to pytrees by :func:`leafwise` (every norm is a per-leaf norm). Steps
count from ``t = 1``; a trust ratio with a zero norm is 1 (LAMB, LARS, Fromage,
as optax defines it).
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference._tree import leafwise


def _norm(x):
    return np.sqrt(np.sum(x * x))


def _ratio(num, den):
    return num / den if (num > 0 and den > 0) else np.ones((), num.dtype)


@leafwise
def lamb(p, grads, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0):
    r"""LAMB (You et al., ICLR 2020, Algorithm 2, :math:`\phi` = identity).

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} + \lambda\theta, \quad
        \theta \leftarrow \theta - \eta \frac{\lVert\theta\rVert}{\lVert r_t\rVert} r_t
    """
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t) + eps_root) + eps) + weight_decay * p
        p = p - learning_rate * _ratio(_norm(p), _norm(r)) * r
    return p


@leafwise
def lars(
    p, grads, learning_rate, weight_decay=0.0, trust_coefficient=0.001, eps=0.0, momentum=0.9, nesterov=False
):
    r"""LARS (You, Gitman & Ginsburg 2017, Algorithm 1), ratio on the decayed gradient as optax does.

    .. math::
        d = g + \lambda\theta, \quad s = \eta \frac{c \lVert\theta\rVert}{\lVert d\rVert + \epsilon} d, \quad
        b \leftarrow \mu b + s, \quad \theta \leftarrow \theta - (s + \mu b \text{ if Nesterov else } b)
    """
    b = None
    for g in grads:
        d = g + weight_decay * p
        pn, dn = _norm(p), _norm(d)
        ratio = trust_coefficient * pn / (dn + eps) if (pn > 0 and dn > 0) else np.ones((), p.dtype)
        s = learning_rate * ratio * d
        b = s if b is None else momentum * b + s
        p = p - (s + momentum * b if nesterov else b)
    return p


@leafwise
def novograd(p, grads, learning_rate=1e-3, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0):
    r"""NovoGrad (Ginsburg et al. 2019, Algorithm 1).

    .. math::
        v_1 = \lVert g_1\rVert^2, \; v_t = \beta_2 v_{t-1} + (1-\beta_2)\lVert g_t\rVert^2, \quad
        m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_{root}} + \epsilon} + \lambda\theta, \quad
        \theta \leftarrow \theta - \eta m_t
    """
    m = v = None
    for g in grads:
        sq = np.sum(g * g)
        v = sq if v is None else b2 * v + (1 - b2) * sq
        n = g / (np.sqrt(v + eps_root) + eps) + weight_decay * p
        m = n if m is None else b1 * m + n
        p = p - learning_rate * m
    return p


@leafwise
def fromage(p, grads, learning_rate=1e-2, min_norm=1e-6):
    r"""Fromage (Bernstein et al., NeurIPS 2020, Algorithm 1), norms clipped below at ``min_norm``.

    .. math::
        \theta \leftarrow \frac{\theta - \eta \frac{\lVert\theta\rVert}{\lVert g\rVert} g}{\sqrt{1+\eta^2}}
    """
    for g in grads:
        ratio = _ratio(np.maximum(_norm(p), min_norm), np.maximum(_norm(g), min_norm))
        p = (p - learning_rate * ratio * g) / math.sqrt(1 + learning_rate**2)
    return p


@leafwise
def sm3(p, grads, learning_rate=1e-1, b1=0.9, b2=1.0, eps=1e-8):
    r"""SM3-II (Anil et al., NeurIPS 2019, Algorithm 2) with momentum.

    Leaves of rank < 2 keep a full accumulator.

    .. math::
        \nu(i) = \min_r \mu_r(i_r) + g(i)^2, \quad \mu_r(j) = \max_{i_r = j} \nu(i), \quad
        m \leftarrow \beta_1 m + (1-\beta_1) g / \sqrt{\nu + \epsilon}, \quad
        \theta \leftarrow \theta - \eta m
    """
    dt = p.dtype
    covers = [np.zeros(p.shape, dt)] if p.ndim < 2 else [np.zeros(n, dt) for n in p.shape]
    m = np.zeros_like(p)
    w = 1.0 if b2 == 1.0 else 1.0 - b2
    for g in grads:
        if p.ndim < 2:
            prev = covers[0]
        else:
            shaped = [c.reshape([1] * r + [-1] + [1] * (p.ndim - r - 1)) for r, c in enumerate(covers)]
            prev = np.minimum.reduce(np.broadcast_arrays(*shaped))
        nu = w * g * g + b2 * prev
        scaled = np.where(nu > 0, g / np.sqrt(nu + eps), np.zeros((), dt))
        m = b1 * m + (1 - b1) * scaled
        if p.ndim < 2:
            covers = [nu]
        else:
            covers = [nu.max(axis=tuple(a for a in range(p.ndim) if a != r)) for r in range(p.ndim)]
        p = p - learning_rate * m
    return p
