r"""Float64 NumPy references for the stateless transforms.

Each is written as one step on a whole update tree, ``transform(updates,
params, **hp) -> updates`` (global-norm clipping needs every leaf at once),
and exposed with the uniform interface ``name(params, grads, **hp) -> final
params`` by :func:`accumulate`: the run adds the transformed updates to the
parameters, as ``apply_updates`` does with the transformation alone.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from tests.reference._tree import accumulate


def _norm(leaves: list) -> float:
    return float(np.sqrt(sum(np.sum(x * x) for x in leaves)))


def _rescale(u: np.ndarray, norm: float, max_norm: float) -> np.ndarray:
    """``u * min(1, c / ||u||)``; a zero update is left as it is (never 0/0)."""
    return u * (max_norm / norm) if norm > max_norm else u


@accumulate
def clip(updates, params, max_delta):
    r"""Element-wise clipping to :math:`[-\delta, \delta]`."""
    return jax.tree.map(lambda u: np.clip(u, -max_delta, max_delta), updates)


@accumulate
def clip_by_norm(updates, params, max_norm):
    r"""Global-norm clipping (Pascanu, Mikolov & Bengio, ICML 2013, Algorithm 1).

    .. math::
        \text{if } \lVert g \rVert \ge c: \quad g \leftarrow \frac{c}{\lVert g \rVert}\, g,
        \qquad \lVert g \rVert^2 = \textstyle\sum_{\text{leaves}} \sum g^2
    """
    norm = _norm(jax.tree.leaves(updates))
    return jax.tree.map(lambda u: _rescale(u, norm, max_norm), updates)


@accumulate
def clip_by_block_norm(updates, params, max_norm):
    r"""Pascanu et al.'s rule applied to each leaf (block) with its own norm."""
    return jax.tree.map(lambda u: _rescale(u, _norm([u]), max_norm), updates)


@accumulate
def add_decayed_weights(updates, params, weight_decay=0.0, mask=None):
    r"""Adds the gradient of the L2 penalty :math:`\frac{\lambda}{2}\lVert\theta\rVert^2`.

    .. math::
        u \leftarrow u + \lambda\theta

    ``mask`` (a tree of bools, or a function of the parameters returning one)
    leaves the leaves marked False unchanged.
    """
    if mask is None:
        return jax.tree.map(lambda u, p: u + weight_decay * p, updates, params)
    flags: Any = mask(params) if callable(mask) else mask
    return jax.tree.map(lambda u, p, m: u + weight_decay * p if m else u, updates, params, flags)


@accumulate
def scale_by_learning_rate(updates, params, learning_rate, flip_sign=True):
    r"""Gradient descent's step :math:`-\eta u` (or :math:`\eta u` with ``flip_sign=False``)."""
    factor = -learning_rate if flip_sign else learning_rate
    return jax.tree.map(lambda u: factor * u, updates)
