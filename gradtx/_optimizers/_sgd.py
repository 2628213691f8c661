"""Stochastic gradient descent and its momentum variants."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.validation import check_beta
from gradtx._optimizers._common import coupled_l2, is_on
from gradtx._transforms._momentum import add_momentum, scale_by_aggmo
from gradtx._transforms._noise import add_noise
from gradtx._transforms._scaling import scale_by_learning_rate


@shared_docs
def sgd(
    learning_rate: HyperParam,
    momentum: HyperParam = 0.0,
    *,
    nesterov: bool = False,
    dampening: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional momentum and L2 weight decay.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1}, \quad
        b_t = \mu b_{t-1} + (1-d) g_t \;(b_1 = g_1), \quad
        \theta_t = \theta_{t-1} - \eta_t \cdot
        \begin{cases} g_t + \mu b_t & \text{Nesterov} \\ b_t & \text{momentum} \\ g_t & \mu = 0 \end{cases}

    Equals ``torch.optim.SGD`` with the same arguments. For a constant
    learning rate this is the course's :math:`v \leftarrow \gamma v + \eta g;\ \theta \leftarrow \theta - v`.

    Args:
        learning_rate: {learning_rate}
        momentum: :math:`\mu` in [0, 1); 0 keeps no momentum buffer.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and no dampening).
        dampening: :math:`d` in [0, 1], torch's dampening of the momentum.
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}

    {hyperparams_note}

    References:
        Robbins & Monro, 1951; Polyak, 1964; Sutskever et al., ICML 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.sgd(0.1, momentum=0.9, nesterov=True)
        >>> params = {"w": jnp.array([1.0, -1.0])}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> gradtx.apply_updates(params, updates)["w"]
        Array([ 0.81, -0.81], dtype=float32)
    """
    check_beta("momentum", momentum)
    if nesterov and not is_on(momentum):
        raise ValueError("nesterov=True needs momentum > 0")
    if nesterov and is_on(dampening):
        raise ValueError("nesterov=True needs dampening == 0")
    moment = (add_momentum(momentum, nesterov=nesterov, dampening=dampening, mu_dtype=mu_dtype),)
    return coupled_l2(
        weight_decay, *(moment if is_on(momentum) else ()), scale_by_learning_rate(learning_rate)
    )


@shared_docs
def noisy_sgd(
    learning_rate: HyperParam,
    eta: HyperParam = 0.01,
    gamma: HyperParam = 0.55,
    key: Any = 0,
) -> GradientTransformation:
    r"""SGD on gradients with annealed Gaussian noise added.

    .. math::
        \theta_t = \theta_{t-1} - \eta_t
        \left(g_t + \mathcal{N}\!\left(0, \frac{\eta_{noise}}{(1+t)^\gamma}\right)\right)

    Equals ``optax.noisy_sgd`` in distribution (random streams differ).

    Args:
        learning_rate: {learning_rate}
        eta: base variance of the noise >= 0.
        gamma: decay exponent of the variance >= 0.
        key: an int seed or a ``jax.random`` key.

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very
        Deep Networks", 2015.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.noisy_sgd(0.1, eta=0.0)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([-0.1, -0.1], dtype=float32)
    """
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))


@shared_docs
def aggmo(
    learning_rate: HyperParam = 0.1,
    betas: tuple[float, ...] = (0.0, 0.9, 0.99),
    *,
    weight_decay: HyperParam = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Aggregated momentum: several heavy-ball velocities, averaged.

    .. math::
        v^{(i)}_t = \beta_i v^{(i)}_{t-1} + g_t, \qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t}{K} \sum_{i=1}^K v^{(i)}_t

    Args:
        learning_rate: {learning_rate}
        betas: the damping coefficients :math:`\beta_i`, each in [0, 1).
        weight_decay: {weight_decay}
        mu_dtype: {mu_dtype}

    References:
        Lucas, Sun, Zemel & Grosse, "Aggregated Momentum: Stability Through
        Passive Damping", ICLR 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.aggmo(0.1, betas=(0.0, 0.9))
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([-0.1, -0.1], dtype=float32)
    """
    return coupled_l2(
        weight_decay, scale_by_aggmo(betas, mu_dtype=mu_dtype), scale_by_learning_rate(learning_rate)
    )
