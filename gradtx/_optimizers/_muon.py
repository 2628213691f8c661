"""Muon: orthogonalised momentum for matrices, AdamW for everything else."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._core.validation import check_beta, check_nonnegative
from gradtx._optimizers._adam import adamw
from gradtx._optimizers._common import is_on
from gradtx._transforms._muon import NS_COEFFS, ScaleByWidth, scale_by_muon
from gradtx._transforms._scaling import scale_by_learning_rate
from gradtx._transforms._weight_decay import Mask, add_decayed_weights
from gradtx._wrappers._partition import partition


def muon_labels(params: Any) -> Any:
    """``"muon"`` for two-dimensional leaves, ``"adam"`` for the others (optax's rule)."""
    return jax.tree.map(lambda x: "muon" if np.ndim(x) == 2 else "adam", params)


@shared_docs
def muon(
    learning_rate: HyperParam = 0.02,
    ns_coeffs: tuple[float, float, float] = NS_COEFFS,
    ns_steps: int = 5,
    beta: HyperParam = 0.95,
    eps: HyperParam = 1e-8,
    weight_decay: HyperParam = 0.0,
    weight_decay_mask: Mask | None = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    adam_b1: HyperParam = 0.9,
    adam_b2: HyperParam = 0.999,
    adam_eps_root: HyperParam = 0.0,
    adam_weight_decay: HyperParam = 0.0,
    adam_learning_rate: HyperParam | None = None,
) -> GradientTransformation:
    r"""Muon for matrices (2-D leaves), AdamW for the other leaves.

    For a matrix leaf of shape :math:`(n_{in}, n_{out})`, with :math:`u_t` the
    output of :func:`gradtx.scale_by_muon` (Newton-Schulz-orthogonalised
    Nesterov momentum):

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \left( \sqrt{\max(1, n_{out}/n_{in})}\; u_t
        + \lambda\,\theta_{t-1} \right)

    Every other leaf (vectors, scalars, higher-rank arrays) is trained by
    :func:`gradtx.adamw` with ``adam_*`` hyperparameters, the same ``eps`` and
    ``nesterov``, and the learning rate ``adam_learning_rate`` (``None``: the
    same as Muon's). The groups are a :func:`gradtx.partition` by
    :func:`muon_labels`; both hold a ``learning_rate``, so read or set them by
    the full paths listed by :func:`gradtx.get_hyperparams`.

    Equals ``optax.contrib.muon`` with the same arguments (its default
    ``'frobenius'`` preconditioning and width scaling, ``consistent_rms=None``).
    optax requires ``learning_rate``; the default 0.02 here is the Muon
    authors'. optax's other preconditionings, coefficient presets and
    dimension-number specs for higher-rank leaves are not offered.

    Args:
        learning_rate: {learning_rate}
        ns_coeffs: the Newton-Schulz quintic's :math:`(a, b, c)`.
        ns_steps: number of Newton-Schulz steps, an integer >= 0.
        beta: decay rate of Muon's momentum, in [0, 1).
        eps: {eps} Used by both groups.
        weight_decay: decoupled decay :math:`\lambda` >= 0 of the matrix leaves.
        weight_decay_mask: {mask} (Matrix leaves only.)
        mu_dtype: {mu_dtype}
        nesterov: Nesterov momentum, in both groups.
        adaptive: scale Muon's update by the dual norm (see :func:`gradtx.scale_by_muon`).
        adam_b1: {b1}
        adam_b2: {b2}
        adam_eps_root: {eps_root}
        adam_weight_decay: AdamW's decoupled decay of the non-matrix leaves, >= 0.
        adam_learning_rate: learning rate of the non-matrix leaves; ``None`` uses ``learning_rate``.

    {hyperparams_note}

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural
        networks", 2024 (kellerjordan.github.io/posts/muon).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.muon(learning_rate=0.1)
        >>> params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update(params, state, params)
        >>> updates["b"]  # AdamW's first step: -learning_rate * sign(g)
        Array([-0.1, -0.1], dtype=float32)
    """
    check_beta("adam_b1", adam_b1)
    check_beta("adam_b2", adam_b2)
    check_nonnegative("adam_eps_root", adam_eps_root)
    check_nonnegative("adam_weight_decay", adam_weight_decay)
    check_nonnegative("weight_decay", weight_decay)
    check_nonnegative("learning_rate", learning_rate)
    if adam_learning_rate is not None:
        check_nonnegative("adam_learning_rate", adam_learning_rate)
    rescale = scale_by_muon(
        beta, eps, ns_coeffs, ns_steps, nesterov=nesterov, adaptive=adaptive, mu_dtype=mu_dtype
    )
    decay = (add_decayed_weights(weight_decay, weight_decay_mask),) if is_on(weight_decay) else ()
    matrices = chain(rescale, ScaleByWidth(), *decay, scale_by_learning_rate(learning_rate))
    others = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1,
        adam_b2,
        eps,
        eps_root=adam_eps_root,
        weight_decay=adam_weight_decay,
        nesterov=nesterov,
        mu_dtype=mu_dtype,
    )
    return partition({"muon": matrices, "adam": others}, muon_labels)
