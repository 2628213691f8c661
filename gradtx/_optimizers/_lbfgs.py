"""L-BFGS: the two-loop preconditioner followed by a strong-Wolfe line search."""

from __future__ import annotations

from typing import Any

from gradtx._core.base import GradientTransformation, chain
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam
from gradtx._transforms._lbfgs import scale_by_lbfgs
from gradtx._transforms._linesearch import scale_by_zoom_linesearch
from gradtx._transforms._scaling import scale, scale_by_learning_rate

_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(20, initial_guess_strategy="one")


@shared_docs
def lbfgs(
    learning_rate: HyperParam | None = None,
    memory_size: int = 10,
    *,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
) -> GradientTransformation:
    r"""L-BFGS with a strong-Wolfe zoom line search.

    .. math::
        w_{k+1} = w_k - \eta_k \, \alpha_k H_k g_k

    where :math:`H_k g_k` is the two-loop recursion over the last ``memory_size``
    curvature pairs (:func:`scale_by_lbfgs`), :math:`\alpha_k` the step found by
    the line search (:func:`scale_by_zoom_linesearch`, trying
    :math:`\alpha = 1` first) and :math:`\eta_k` the learning rate (1 when
    ``None``). It is ``chain(scale_by_lbfgs(...), scale(-1) or
    scale_by_learning_rate(lr), linesearch)``, the composition of
    ``optax.lbfgs``, and takes the same extra arguments in ``update``::

        updates, state = tx.update(grad, state, params, value=loss, grad=grad, value_fn=loss_fn)

    :func:`gradtx.minimize` runs that loop under ``jax.lax.while_loop``.

    Args:
        learning_rate: ``None`` (the default) leaves the step to the line
            search; otherwise {learning_rate}
        memory_size: number of curvature pairs kept, >= 1.
        scale_init_precond: scale the initial inverse Hessian by
            :math:`s^\top y / y^\top y` (see :func:`scale_by_lbfgs`).
        linesearch: a transformation choosing the step along the direction,
            or ``None`` for none (a fixed step, then set ``learning_rate``).

    Returns:
        A transformation whose ``update`` needs ``params`` and, with a line
        search, ``value_fn`` (``value`` and ``grad`` are computed if omitted).

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006,
        Algorithms 7.4, 7.5, 3.5, 3.6; Liu & Nocedal, "On the limited memory
        BFGS method for large scale optimization", Math. Programming 45, 1989.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> f = lambda w: jnp.sum((w - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> x, info = gradtx.minimize(f, jnp.zeros(2), gradtx.lbfgs())
        >>> x, int(info.num_steps)
        (Array([1., 1.], dtype=float32), 6)
    """
    step = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    tail = () if linesearch is None else (linesearch,)
    return chain(scale_by_lbfgs(memory_size, scale_init_precond=scale_init_precond), step, *tail)
