r"""Float64 NumPy references for the sign-based and Adam-variant optimizers, from the papers.

Same interface as :mod:`tests.reference.optimizers`:
``name(params, grads, **hyperparams) -> final params`` (lifted by :func:`leafwise`),
keyword names and defaults those of gradtx's API, steps counted from ``t = 1``.
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference._tree import leafwise


@leafwise
def sign_sgd(p, grads, learning_rate=1e-3):
    r"""signSGD (Bernstein et al., ICML 2018, Algorithm 1): x <- x - lr * sign(g)."""
    for g in grads:
        p = p - learning_rate * np.sign(g)
    return p


@leafwise
def signum(p, grads, learning_rate=1e-3, beta=0.9):
    r"""Signum (Bernstein et al., ICML 2018, Algorithm 3).

    .. math::
        m_k = (1-\beta) g_k + \beta m_{k-1}, \qquad x_{k+1} = x_k - \delta\,\mathrm{sign}(m_k)
    """
    m = np.zeros_like(p)
    for g in grads:
        m = (1 - beta) * g + beta * m
        p = p - learning_rate * np.sign(m)
    return p


@leafwise
def lion(p, grads, learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=1e-3):
    r"""Lion (Chen et al., 2023, Algorithm 2).

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        \theta_t = \theta_{t-1} - \eta (\mathrm{sign}(c_t) + \lambda\theta_{t-1}), \quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t
    """
    m = np.zeros_like(p)
    for g in grads:
        c = b1 * m + (1 - b1) * g
        p = p - learning_rate * (np.sign(c) + weight_decay * p)
        m = b2 * m + (1 - b2) * g
    return p


@leafwise
def adabelief(p, grads, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0):
    r"""AdaBelief (Zhuang et al., NeurIPS 2020, Algorithm 2), eps inside s_t as the paper writes it.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon, \quad
        \theta_t = \theta_{t-1} - \alpha \frac{\hat m_t}{\sqrt{\hat s_t} + \epsilon}
    """
    m = np.zeros_like(p)
    s = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        m_hat = m / (1 - b1**t)
        s_hat = s / (1 - b2**t)
        p = p - learning_rate * m_hat / (np.sqrt(s_hat) + eps)
    return p


@leafwise
def yogi(
    p,
    grads,
    learning_rate=1e-2,
    b1=0.9,
    b2=0.999,
    eps=1e-3,
    eps_root=0.0,
    initial_accumulator_value=1e-6,
    weight_decay=0.0,
):
    r"""Yogi (Zaheer et al., NeurIPS 2018, Algorithm 2), with optax's bias corrections and m_0 = v_0.

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2, \quad
        \theta_t = \theta_{t-1} - \eta \frac{m_t/(1-\beta_1^t)}
        {\sqrt{v_t/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}
    """
    m = np.full_like(p, initial_accumulator_value)
    v = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - learning_rate * m_hat / (np.sqrt(v_hat + eps_root) + eps)
    return p


@leafwise
def radam(p, grads, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, threshold=5.0, weight_decay=0.0):
    r"""RAdam (Liu et al., ICLR 2020, Algorithm 2), eps added to sqrt(v_t) as in the authors' code.

    .. math::
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}; \quad
        \rho_t > \text{threshold}:\ \theta_t = \theta_{t-1} - \alpha r_t \hat m_t l_t,\
        l_t = \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}; \quad
        \text{else}\ \theta_t = \theta_{t-1} - \alpha \hat m_t
    """
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > threshold:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            l = math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)  # noqa: E741 (the paper's name)
            p = p - learning_rate * r * m_hat * l
        else:
            p = p - learning_rate * m_hat
    return p
