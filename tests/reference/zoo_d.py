"""Float64 NumPy references for Schedule-Free SGD/AdamW, Prodigy, Muon and SAM, from the papers' equations.

Each has the interface ``name(params_tree, grads_list, *, dtype=np.float64, **hp) -> final params``
(see :mod:`tests.reference._tree`); ``dtype=np.float32`` runs the same equations in float32.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from tests.reference._tree import _check_dtype, as_numpy, leafwise

# --- Schedule-Free (Defazio et al. 2024, Algorithm 1, with x kept explicitly) --------------


def _schedule_free(p, grads, direction, learning_rate, warmup_steps, b1, weight_decay, weight_lr_power):
    x = p.copy()
    z = p.copy()
    y = p.copy()
    lr_max, weight_sum = 0.0, 0.0
    state: dict = {}
    for t, g in enumerate(grads, start=1):
        lr = learning_rate * (min(1.0, t / warmup_steps) if warmup_steps else 1.0)
        lr_max = max(lr_max, lr)
        weight = lr_max**weight_lr_power
        weight_sum += weight
        c = weight / weight_sum
        d = direction(g, t, state) + weight_decay * y
        z = z - p.dtype.type(lr) * d
        x = (1 - c) * x + c * z
        y = (1 - b1) * z + b1 * x
    return y


@leafwise
def schedule_free_sgd(
    p, grads, learning_rate=1.0, warmup_steps=None, b1=0.9, weight_decay=0.0, weight_lr_power=2.0
):
    return _schedule_free(
        p, grads, lambda g, t, s: g, learning_rate, warmup_steps, b1, weight_decay, weight_lr_power
    )


@leafwise
def schedule_free_adamw(
    p,
    grads,
    learning_rate=0.0025,
    warmup_steps=None,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    weight_lr_power=2.0,
):
    def rms(g, t, s):
        s["v"] = b2 * s.get("v", np.zeros_like(g)) + (1 - b2) * g * g
        return g / (np.sqrt(s["v"] / (1 - b2**t)) + eps)

    return _schedule_free(p, grads, rms, learning_rate, warmup_steps, b1, weight_decay, weight_lr_power)


# --- Muon (Jordan et al. 2024) for matrices, AdamW (Nesterov as in Dozat 2016) for the rest --


def newton_schulz(x, coeffs=(3.4445, -4.7750, 2.0315), steps=5, eps=1e-8):
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (np.sqrt(np.sum(x * x)) + eps)
    a, b, c = coeffs
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


@leafwise
def muon(
    p,
    grads,
    learning_rate=0.02,
    ns_coeffs=(3.4445, -4.7750, 2.0315),
    ns_steps=5,
    beta=0.95,
    eps=1e-8,
    weight_decay=0.0,
    nesterov=True,
    adam_b1=0.9,
    adam_b2=0.999,
    adam_weight_decay=0.0,
):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if p.ndim == 2:
            m = beta * m + (1 - beta) * g
            if nesterov:
                m_hat = beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
            else:
                m_hat = m / (1 - beta**t)
            u = newton_schulz(m_hat, ns_coeffs, ns_steps, eps) * float(
                np.sqrt(max(1.0, p.shape[1] / p.shape[0]))
            )
            p = p - learning_rate * (u + weight_decay * p)
        else:
            m = adam_b1 * m + (1 - adam_b1) * g
            v = adam_b2 * v + (1 - adam_b2) * g * g
            if nesterov:
                m_hat = adam_b1 * m / (1 - adam_b1 ** (t + 1)) + (1 - adam_b1) * g / (1 - adam_b1**t)
            else:
                m_hat = m / (1 - adam_b1**t)
            u = m_hat / (np.sqrt(v / (1 - adam_b2**t)) + eps)
            p = p - learning_rate * (u + adam_weight_decay * p)
    return p


# --- Prodigy (Mishchenko & Defazio 2023, Algorithm with Adam and bias correction) ------------


def prodigy(
    params: Any,
    grads: list,
    *,
    dtype: Any = np.float64,
    learning_rate=1.0,
    b1=0.9,
    b2=0.999,
    beta3=None,
    eps=1e-8,
    d0=1e-6,
    d_coef=1.0,
    weight_decay=0.0,
    safeguard_warmup=False,
):
    """Prodigy is global (D is one number for the whole tree), so it is written over leaf lists."""
    leaves, treedef = jax.tree.flatten(as_numpy(params, dtype))
    x0 = [x.copy() for x in leaves]
    x = [p.copy() for p in leaves]
    m = [np.zeros_like(p) for p in leaves]
    v = [np.zeros_like(p) for p in leaves]
    s = [np.zeros_like(p) for p in leaves]
    beta3 = float(np.sqrt(b2)) if beta3 is None else beta3
    d, r = dtype(d0), dtype(0.0)
    for t, g_tree in enumerate(grads, start=1):
        g = jax.tree.leaves(as_numpy(g_tree, dtype))
        eta = dtype(d * learning_rate * np.sqrt(1 - b2**t) / (1 - b1**t))
        m = [b1 * mi + (1 - b1) * d * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * (d * gi) ** 2 for vi, gi in zip(v, g)]
        weight = d if safeguard_warmup else eta
        s = [beta3 * si + (weight / d0) * d * gi for si, gi in zip(s, g)]
        r = beta3 * r + (d / d0) * eta * sum(np.sum(gi * (x0i - xi)) for gi, x0i, xi in zip(g, x0, x))
        denom = sum(np.sum(np.abs(si)) for si in s)
        d_next = max(d, d_coef * r / denom) if denom > 0 else d
        x = [
            xi - eta * (mi / (np.sqrt(vi) + d_next * eps) + weight_decay * xi) for xi, mi, vi in zip(x, m, v)
        ]
        d = dtype(d_next)
    return _check_dtype(treedef.unflatten(x), dtype)


# --- SAM (Foret et al. 2021, Algorithm 1) with SGD for both steps -----------------------------


def sam_sgd(
    params: Any, grads: list, *, dtype: Any = np.float64, learning_rate=0.05, rho=0.05, sync_period=2
):
    """``sam(sgd(learning_rate), sgd(rho), sync_period)``: k-1 ascents by rho*g, then descent from w."""
    theta = as_numpy(params, dtype)
    w = theta
    for t, g in enumerate(as_numpy(gi, dtype) for gi in grads):
        phase = t % sync_period
        if phase == 0:
            w = theta
        if phase == sync_period - 1:
            theta = w = jax.tree.map(lambda wi, gi: wi - learning_rate * gi, w, g)
        else:
            theta = jax.tree.map(lambda ti, gi: ti + rho * gi, theta, g)
    return _check_dtype(theta, dtype)
