"""A jit-able deterministic minimisation loop around any transformation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx._core.base import _check_transformation, apply_updates, call_update
from gradtx._core.validation import _concrete


class MinimizeInfo(NamedTuple):
    """What :func:`minimize` reports next to the solution."""

    num_steps: jax.Array  # updates applied
    value: jax.Array  # fun at the returned point
    grad_norm: jax.Array  # ||grad fun|| at the returned point
    converged: jax.Array  # grad_norm <= tol


def minimize(
    fun: Callable[[Any], jax.Array],
    x0: Any,
    tx: Any,
    max_steps: int = 500,
    tol: float = 1e-6,
) -> tuple[Any, MinimizeInfo]:
    r"""Minimises ``fun`` from ``x0`` by repeated updates of ``tx``.

    Starting from :math:`x_0`, each step computes
    :math:`f_k, g_k = f(x_k), \nabla f(x_k)`, calls

    .. code-block:: python

        updates, state = tx.update(g_k, state, x_k, value=f_k, grad=g_k, value_fn=fun)

    (the extra arguments only reach transformations that accept them, so
    plain optax ones work) and sets :math:`x_{k+1} = x_k + \text{updates}`,
    until :math:`\|g_k\|_2 \le` ``tol`` or ``max_steps`` updates. The loop is a
    ``jax.lax.while_loop``: the whole call jits (pass ``fun`` and ``tx`` as
    static arguments; equal gradtx transformations hash equal) and
    ``max_steps`` and ``tol`` may be traced.

    Args:
        fun: the objective, ``fun(x) -> scalar``, differentiable by JAX.
        x0: the starting point, any pytree of float arrays.
        tx: any gradtx or optax transformation: :func:`lbfgs`, or
            ``gradtx.adam(1e-2)`` and friends.
        max_steps: most updates, >= 0.
        tol: stop when the gradient's global 2-norm is at most this, >= 0.

    Returns:
        ``(x, info)``: the last iterate and a :class:`MinimizeInfo` with
        ``num_steps``, ``value``, ``grad_norm`` and ``converged``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> f = lambda x: jnp.sum((x["a"] - 2.0) ** 2)
        >>> solve = jax.jit(gradtx.minimize, static_argnums=(0, 2))
        >>> x, info = solve(f, {"a": jnp.zeros(3)}, gradtx.lbfgs())
        >>> x["a"], bool(info.converged)
        (Array([2., 2., 2.], dtype=float32), True)
    """
    if not callable(fun):
        raise ValueError(f"minimize: fun must be callable, got {fun!r}")
    _check_transformation(tx, "minimize: tx")
    steps, tolerance = _concrete(max_steps), _concrete(tol)
    if steps is not None and (steps < 0 or steps != int(steps)):
        raise ValueError(f"minimize: max_steps must be an integer >= 0, got {max_steps!r}")
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"minimize: tol must be >= 0, got {tol!r}")
    value_and_grad = jax.value_and_grad(fun)

    def cond(carry):
        _, _, _, grad, k = carry
        return (k < max_steps) & (tree.norm(grad) > tol)

    def body(carry):
        x, state, value, grad, k = carry
        updates, state = call_update(tx, grad, state, x, {"value": value, "grad": grad, "value_fn": fun})
        x = apply_updates(x, updates)
        value, grad = value_and_grad(x)
        return x, state, value, grad, k + 1

    value, grad = value_and_grad(x0)
    carry = (x0, tx.init(x0), value, grad, jnp.zeros([], jnp.int32))
    x, _, value, grad, k = jax.lax.while_loop(cond, body, carry)
    grad_norm = tree.norm(grad)
    return x, MinimizeInfo(k, value, grad_norm, grad_norm <= tol)
