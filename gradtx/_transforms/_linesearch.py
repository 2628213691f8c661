"""The strong-Wolfe zoom line search (Nocedal & Wright, Algorithms 3.5 and 3.6)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import compute_dtype, real_dtype, safe_increment, zero_count
from gradtx._core.validation import _concrete, check_range, reject_complex

_BRACKET, _ZOOM = 0, 1


class ZoomLinesearchInfo(NamedTuple):
    num_linesearch_steps: jax.Array  # function evaluations spent by the last search
    wolfe: jax.Array  # whether the accepted step satisfies the strong Wolfe conditions


class ScaleByZoomLinesearchState(NamedTuple):
    count: jax.Array
    learning_rate: jax.Array  # the accepted step size (the next guess under "keep")
    value: jax.Array  # f at the accepted point
    grad: Any  # gradient at the accepted point
    info: ZoomLinesearchInfo
    hyperparams: dict[str, jax.Array]


class _Point(NamedTuple):
    """A trial step size ``a`` with :math:`\\phi(a)` and :math:`\\phi'(a)`."""

    a: jax.Array
    f: jax.Array
    d: jax.Array


class _Search(NamedTuple):
    count: jax.Array
    phase: jax.Array
    done: jax.Array
    wolfe: jax.Array
    a_next: jax.Array  # next trial of the bracketing phase
    prev: _Point  # last trial of the bracketing phase
    lo: _Point
    hi: _Point
    best: _Point  # the step returned: the Wolfe point, else the lowest sufficient-decrease one
    best_grad: Any


def _select(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _cubic_minimizer(lo: _Point, hi: _Point) -> jax.Array:
    """Minimiser of the cubic through both points (N&W eq. 3.59), bisection if unsafe."""
    d1 = lo.d + hi.d - 3 * (lo.f - hi.f) / (lo.a - hi.a)
    d2 = jnp.sign(hi.a - lo.a) * jnp.sqrt(d1**2 - lo.d * hi.d)
    a = hi.a - (hi.a - lo.a) * (hi.d + d2 - d1) / (hi.d - lo.d + 2 * d2)
    left, right = jnp.minimum(lo.a, hi.a), jnp.maximum(lo.a, hi.a)
    margin = 0.1 * (right - left)  # keep away from the ends so the interval shrinks
    safe = jnp.isfinite(a) & (a >= left + margin) & (a <= right - margin)
    return jnp.where(safe, a, 0.5 * (lo.a + hi.a))


def _kwargs_for(fn: Callable[..., Any], extra_args: dict) -> dict:
    """The extra arguments ``fn`` accepts by name (all of them if it takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(extra_args)
    return {k: v for k, v in extra_args.items() if k in parameters}


def _scalar_dtype(params: Any) -> jnp.dtype:
    dtypes = [real_dtype(compute_dtype(jnp.result_type(x))) for x in jax.tree.leaves(params)]
    return functools.reduce(jnp.promote_types, dtypes, jnp.dtype(jnp.float32))


@dataclasses.dataclass(frozen=True)
class ScaleByZoomLinesearch(WithHyperparams, GradientTransformation):
    max_linesearch_steps: int
    slope_rtol: HyperParam
    curv_rtol: HyperParam
    increase_factor: HyperParam
    max_learning_rate: HyperParam
    initial_guess_strategy: str
    hyperparam_names = ("slope_rtol", "curv_rtol", "increase_factor", "max_learning_rate")

    def init(self, params):
        reject_complex(params, "scale_by_zoom_linesearch", "the Wolfe conditions compare real slopes")
        dtype = _scalar_dtype(params)
        info = ZoomLinesearchInfo(zero_count(), jnp.array(False))
        return ScaleByZoomLinesearchState(
            zero_count(),
            jnp.ones([], dtype),
            jnp.full([], jnp.inf, dtype),
            tree.zeros_like(params),
            info,
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        if params is None:
            raise ValueError(
                "scale_by_zoom_linesearch needs params: call update(updates, state, params, ...)"
            )
        if value_fn is None or not callable(value_fn):
            raise ValueError(
                "scale_by_zoom_linesearch needs value_fn, the objective: "
                "call update(updates, state, params, value=f(params), grad=g, value_fn=f)"
            )
        fn = functools.partial(value_fn, **_kwargs_for(value_fn, extra_args))
        value_and_grad = jax.value_and_grad(fn)
        if value is None or grad is None:
            value, grad = value_and_grad(params)
        dtype = jnp.dtype(state.learning_rate.dtype)
        h = {k: v.astype(dtype) for k, v in state.hyperparams.items()}
        if self.initial_guess_strategy == "keep":
            guess = jnp.where(state.learning_rate > 0, state.learning_rate, 1.0)
        else:
            guess = jnp.ones([], dtype)
        search = self._search(value_and_grad, params, updates, value, grad, guess, h)
        new_updates = tree.scale(search.best.a, updates)
        count = safe_increment(state.count)
        new_state = ScaleByZoomLinesearchState(
            count,
            search.best.a,
            search.best.f,
            _cast_like(search.best_grad, state.grad),
            ZoomLinesearchInfo(search.count, search.wolfe),
            self.next_hyperparams(state.hyperparams, count),
        )
        return new_updates, new_state

    def _search(self, value_and_grad, params, direction, value, grad, guess, h) -> _Search:
        dtype = guess.dtype
        f0 = jnp.asarray(value).astype(dtype)
        d0 = jnp.real(tree.vdot(grad, direction)).astype(dtype)
        zero = jnp.zeros([], dtype)
        start = _Point(zero, f0, d0)
        c1, c2 = h["slope_rtol"], h["curv_rtol"]
        max_lr = h["max_learning_rate"]

        def body(s: _Search) -> _Search:
            in_zoom = s.phase == _ZOOM
            a = jnp.where(in_zoom, _cubic_minimizer(s.lo, s.hi), s.a_next)
            f, g = value_and_grad(tree.add_scaled(params, a, direction))
            cur = _Point(a, jnp.asarray(f).astype(dtype), jnp.real(tree.vdot(g, direction)).astype(dtype))
            armijo = cur.f <= f0 + c1 * a * d0
            curvature = jnp.abs(cur.d) <= c2 * jnp.abs(d0)
            # Algorithm 3.5: widen until a Wolfe point or a bracket is found.
            bracket_right = ~armijo | ((cur.f >= s.prev.f) & (s.count > 0))
            bracket_left = ~bracket_right & ~curvature & (cur.d >= 0)
            # Algorithm 3.6: shrink [lo, hi], which always contains a Wolfe point.
            zoom_hi = ~armijo | (cur.f >= s.lo.f)
            zoom_flip = ~zoom_hi & ~curvature & (cur.d * (s.hi.a - s.lo.a) >= 0)

            accept = jnp.where(in_zoom, ~zoom_hi, ~bracket_right) & curvature
            lo = _select(in_zoom, _select(zoom_hi, s.lo, cur), _select(bracket_right, s.prev, cur))
            hi = _select(
                in_zoom,
                _select(zoom_hi, cur, _select(zoom_flip, s.lo, s.hi)),
                _select(bracket_right, cur, s.prev),
            )
            phase = jnp.where(in_zoom | bracket_right | bracket_left, _ZOOM, _BRACKET)
            better = armijo & (cur.f < s.best.f)
            take = accept | better
            best = _select(take, cur, s.best)
            best_grad = _select(take, _cast_like(g, s.best_grad), s.best_grad)
            width = jnp.abs(hi.a - lo.a)
            stuck = jnp.where(
                phase == _ZOOM,
                width <= jnp.finfo(dtype).eps * jnp.maximum(lo.a, hi.a),
                a >= max_lr,  # cannot widen any further
            )
            return _Search(
                count=s.count + 1,
                phase=jnp.asarray(phase, jnp.int32),
                done=accept | stuck,
                wolfe=accept,
                a_next=jnp.minimum(a * h["increase_factor"], max_lr),
                prev=_select(in_zoom, s.prev, cur),
                lo=lo,
                hi=hi,
                best=best,
                best_grad=best_grad,
            )

        def cond(s: _Search) -> jax.Array:
            return ~s.done & (s.count < self.max_linesearch_steps)

        init = _Search(
            count=zero_count(),
            phase=jnp.asarray(_BRACKET, jnp.int32),
            done=~(d0 < 0),  # not a descent direction (or a zero one): take no step
            wolfe=jnp.array(False),
            a_next=jnp.minimum(guess, max_lr),
            prev=start,
            lo=start,
            hi=start,
            best=start,
            best_grad=_cast_like(grad, direction),
        )
        return jax.lax.while_loop(cond, body, init)


def _cast_like(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), a, b)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int = 20,
    *,
    slope_rtol: HyperParam = 1e-4,
    curv_rtol: HyperParam = 0.9,
    increase_factor: HyperParam = 2.0,
    max_learning_rate: HyperParam | None = None,
    initial_guess_strategy: str = "keep",
) -> GradientTransformation:
    r"""Scales the incoming direction by a step size satisfying the strong Wolfe conditions.

    With :math:`\phi(\eta) = f(w + \eta u)` along the incoming updates
    :math:`u` (a descent direction, :math:`\phi'(0) = \langle \nabla f(w), u\rangle < 0`),
    the search returns :math:`\eta u` where :math:`\eta` satisfies

    .. math::
        \phi(\eta) \le \phi(0) + c_1 \eta \phi'(0), \qquad
        |\phi'(\eta)| \le c_2 |\phi'(0)|

    with :math:`c_1` = ``slope_rtol`` and :math:`c_2` = ``curv_rtol``. It first
    multiplies a guess by ``increase_factor`` until it brackets such a step
    (Algorithm 3.5 of Nocedal & Wright), then shrinks the bracket with
    safeguarded cubic interpolation (Algorithm 3.6, eq. 3.59). Each trial
    costs one ``jax.value_and_grad`` of ``value_fn``; everything runs in one
    ``jax.lax.while_loop``, so it jits.

    ``update`` takes the objective as extra keyword arguments, as optax's
    ``scale_by_zoom_linesearch`` does::

        updates, state = tx.update(direction, state, params,
                                   value=f(params), grad=grad_f(params), value_fn=f,
                                   **data)

    ``value`` and ``grad`` (at ``params``) are computed if omitted. Other
    keyword arguments that ``value_fn`` names in its signature are passed to
    it (``value_fn(params, x=..., y=...)``); the rest are ignored, since a
    ``chain`` hands the same extra arguments to every transformation.

    When no Wolfe step is found within ``max_linesearch_steps`` trials, the
    trial with the lowest value among those with sufficient decrease is taken
    (step 0 if none); ``state.info.wolfe`` says which happened. A direction
    that is not a descent direction (``phi'(0) >= 0``, a zero gradient
    included) gives a zero step. The state keeps the value and gradient at
    the accepted point (``state.value``, ``state.grad``) for reuse.

    Differences from optax: no Hager-Zhang approximate-Wolfe switch
    (optax's ``approx_dec_rtol``), no absolute ``tol``, a different
    interpolation safeguard, and ``max_linesearch_steps`` has a default.

    Args:
        max_linesearch_steps: most function evaluations per search, >= 1.
        slope_rtol: :math:`c_1`, sufficient-decrease constant in (0, 1).
        curv_rtol: :math:`c_2`, curvature constant in (``slope_rtol``, 1).
        increase_factor: growth of the trial step while bracketing, > 1.
        max_learning_rate: largest step tried; ``None`` for no bound.
        initial_guess_strategy: ``"one"`` starts every search at 1 (use with
            quasi-Newton directions such as L-BFGS); ``"keep"`` starts from
            the previous accepted step (use with gradient directions).

    Returns:
        A transformation whose ``update`` needs ``value_fn`` (see above).

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006,
        Algorithms 3.5-3.6.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> f = lambda w: jnp.sum((w - 3.0) ** 2)
        >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.scale_by_zoom_linesearch())
        >>> w = jnp.zeros(2)
        >>> value, grad = jax.value_and_grad(f)(w)
        >>> updates, state = tx.update(grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
        >>> gradtx.apply_updates(w, updates)
        Array([3., 3.], dtype=float32)
    """
    if (
        not isinstance(max_linesearch_steps, int)
        or isinstance(max_linesearch_steps, bool)
        or max_linesearch_steps < 1
    ):
        raise ValueError(f"max_linesearch_steps must be an int >= 1, got {max_linesearch_steps!r}")
    check_range("slope_rtol", slope_rtol, 0.0, 1.0, low_open=True, high_open=True)
    check_range("curv_rtol", curv_rtol, 0.0, 1.0, low_open=True, high_open=True)
    c1, c2 = _concrete(slope_rtol), _concrete(curv_rtol)
    if c1 is not None and c2 is not None and c2 <= c1:
        raise ValueError(f"curv_rtol must exceed slope_rtol, got curv_rtol={c2} <= slope_rtol={c1}")
    check_range("increase_factor", increase_factor, 1.0, low_open=True)
    if max_learning_rate is None:
        max_learning_rate = float("inf")
    check_range("max_learning_rate", max_learning_rate, 0.0, low_open=True)
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(f'initial_guess_strategy must be "one" or "keep", got {initial_guess_strategy!r}')
    return ScaleByZoomLinesearch(
        max_linesearch_steps,
        slope_rtol,
        curv_rtol,
        increase_factor,
        max_learning_rate,
        initial_guess_strategy,
    )
