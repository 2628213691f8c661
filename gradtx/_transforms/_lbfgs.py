"""L-BFGS preconditioning: the two-loop recursion over the last m curvature pairs."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx._core.base import GradientTransformation
from gradtx._core.numerics import safe_increment, zero_count
from gradtx._core.validation import reject_complex
from gradtx._transforms._linesearch import _scalar_dtype


class ScaleByLBFGSState(NamedTuple):
    count: jax.Array
    params: Any  # parameters at the previous update
    grad: Any  # incoming updates (gradient) at the previous update
    s: Any  # parameter differences s_i, stacked on a leading axis of size m, oldest first
    y: Any  # gradient differences y_i, stacked likewise
    rho: jax.Array  # 1 / <s_i, y_i>; 0 marks an empty slot


def _push(stack: Any, new: Any) -> Any:
    """Drops the oldest entry of each stacked leaf and appends ``new`` last."""
    return jax.tree.map(lambda b, x: jnp.concatenate([b[1:], x[None].astype(b.dtype)]), stack, new)


def two_loop(grad: Any, s: Any, y: Any, rho: jax.Array, gamma: jax.Array) -> Any:
    """:math:`H_k g` by Algorithm 7.4 of Nocedal & Wright, with :math:`H_k^0 = \\gamma I`.

    ``s``, ``y`` are stacked oldest first; slots with ``rho = 0`` are skipped
    (they contribute nothing to either loop).
    """

    def backward(q, pair):
        s_i, y_i, rho_i = pair
        alpha = rho_i * jnp.real(tree.vdot(s_i, q))
        return tree.add_scaled(q, -alpha, y_i), alpha

    def forward(r, pair):
        s_i, y_i, rho_i, alpha = pair
        beta = rho_i * jnp.real(tree.vdot(y_i, r))
        return tree.add_scaled(r, alpha - beta, s_i), None

    q, alphas = jax.lax.scan(backward, grad, (s, y, rho), reverse=True)
    r, _ = jax.lax.scan(forward, tree.scale(gamma, q), (s, y, rho, alphas))
    return r


@dataclasses.dataclass(frozen=True)
class ScaleByLBFGS(GradientTransformation):
    memory_size: int
    scale_init_precond: bool

    def init(self, params):
        reject_complex(params, "scale_by_lbfgs", "the curvature pairs assume a real inner product")
        stacked = jax.tree.map(lambda p: jnp.zeros((self.memory_size, *jnp.shape(p)), p.dtype), params)
        return ScaleByLBFGSState(
            zero_count(),
            tree.zeros_like(params),
            tree.zeros_like(params),
            stacked,
            jax.tree.map(jnp.copy, stacked),
            jnp.zeros([self.memory_size], _scalar_dtype(params)),
        )

    def update(self, updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_lbfgs needs params: call update(updates, state, params)")
        dtype = state.rho.dtype
        s_new, y_new = tree.sub(params, state.params), tree.sub(updates, state.grad)
        sy = jnp.real(tree.vdot(s_new, y_new)).astype(dtype)
        keep = (state.count > 0) & (sy > 0)  # a pair with s'y <= 0 would break positive definiteness
        s = tree.where(keep, _push(state.s, s_new), state.s)
        y = tree.where(keep, _push(state.y, y_new), state.y)
        rho_pushed = jnp.concatenate([state.rho[1:], (1 / jnp.where(keep, sy, 1))[None]])
        rho = jnp.where(keep, rho_pushed, state.rho)
        gamma = self._initial_scale(updates, s, y, rho)
        direction = two_loop(updates, s, y, rho, gamma)
        new_state = ScaleByLBFGSState(safe_increment(state.count), params, updates, s, y, rho)
        return direction, jax.tree.map(lambda n, o: jnp.asarray(n).astype(o.dtype), new_state, state)

    def _initial_scale(self, grad, s, y, rho) -> jax.Array:
        """:math:`\\gamma_k = s^\\top y / y^\\top y` of the newest pair; ``min(1, 1/||g||)`` before any."""
        dtype = rho.dtype
        if not self.scale_init_precond:
            return jnp.ones([], dtype)
        newest = lambda t: jax.tree.map(lambda b: b[-1], t)  # noqa: E731
        s_k, y_k = newest(s), newest(y)
        yy = jnp.real(tree.vdot(y_k, y_k)).astype(dtype)
        sy = jnp.real(tree.vdot(s_k, y_k)).astype(dtype)
        first = jnp.minimum(1.0, 1.0 / tree.norm(grad).astype(dtype))
        return jnp.where((rho[-1] > 0) & (yy > 0), sy / jnp.where(yy > 0, yy, 1), first)


def scale_by_lbfgs(memory_size: int = 10, *, scale_init_precond: bool = True) -> GradientTransformation:
    r"""Multiplies the gradient by the L-BFGS approximation of the inverse Hessian.

    With :math:`s_i = w_{i+1} - w_i`, :math:`y_i = g_{i+1} - g_i` and
    :math:`\rho_i = 1 / (s_i^\top y_i)` for the last :math:`m` steps, the
    output is :math:`H_k g_k` with

    .. math::
        H_k = V_{k-1}^\top \cdots V_{k-m}^\top H_k^0 V_{k-m} \cdots V_{k-1}
        + \sum_{j=k-m}^{k-1} \rho_j \Big(\prod_{l=j+1}^{k-1} V_l\Big)^{\!\top}
        s_j s_j^\top \Big(\prod_{l=j+1}^{k-1} V_l\Big),
        \quad V_j = I - \rho_j y_j s_j^\top,
        \quad H_k^0 = \gamma_k I, \quad
        \gamma_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}},

    evaluated by the two-loop recursion (Algorithm 7.4), in :math:`O(mn)`.
    The pair :math:`(s_{k-1}, y_{k-1})` is formed at the start of ``update``
    from the previous call's ``params`` and gradient, so chain a line search
    *after* this transformation (as :func:`lbfgs` does). A pair with
    :math:`s^\top y \le 0` is not stored (a strong Wolfe line search
    never produces one). Before the first pair, :math:`\gamma_0 =
    \min(1, 1/\|g_0\|)` (optax's choice; N&W leave it open), so the first
    step has length at most 1. A zero gradient gives a zero direction.

    The state stacks the pairs on a leading axis of length ``memory_size``
    (oldest first) for every parameter leaf: memory is ``2 m`` copies of the
    parameters.

    Args:
        memory_size: the number :math:`m` of pairs kept, >= 1.
        scale_init_precond: use :math:`\gamma_k` above; ``False`` uses
            :math:`H_k^0 = I`.

    Returns:
        A transformation whose ``update`` needs ``params``.

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006,
        Section 7.2, Algorithm 7.4; Liu & Nocedal, "On the limited memory
        BFGS method for large scale optimization", Math. Programming 45, 1989.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_lbfgs(memory_size=5)
        >>> w = jnp.array([3.0, 4.0])
        >>> tx.update(w, tx.init(w), w)[0]  # first step: g / max(1, ||g||)
        Array([0.6, 0.8], dtype=float32)
    """
    if not isinstance(memory_size, int) or isinstance(memory_size, bool) or memory_size < 1:
        raise ValueError(f"memory_size must be an int >= 1, got {memory_size!r}")
    return ScaleByLBFGS(memory_size, bool(scale_init_precond))
