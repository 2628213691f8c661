"""Layer-wise rescalings: trust ratios (LARS, LAMB, Fromage), NovoGrad and SM3.

"Layer-wise" means per leaf: every norm below is the L2 (Frobenius) norm of
one leaf of the pytree, accumulated in at least float32.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.frozen import FrozenTree, freeze
from gradtx._core.hyperparams import HyperParam, WithHyperparams, as_hyperparam
from gradtx._core.numerics import (
    Scalars,
    abs_sq,
    as_compute,
    compute_dtype,
    map_unzip,
    real_dtype,
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative, check_range, check_same_structure
from gradtx._transforms._adaptive import decay_scalars, ema
from gradtx._transforms._clipping import global_norm
from gradtx._transforms._scaling import StatelessWithHyperparams
from gradtx._transforms._weight_decay import Mask, _select, resolve_mask


def _require_params(params: Any, updates: Any, where: str) -> None:
    if params is None:
        raise ValueError(f"{where} needs `params`: call update(updates, state, params)")
    check_same_structure(updates, params, "updates", "params")


# --- trust ratio -----------------------------------------------------------------------------


def trust_ratio(
    u: jax.Array, p: jax.Array, min_norm: jax.Array, coefficient: jax.Array, eps: jax.Array
) -> jax.Array:
    r""":math:`c \max(\lVert p\rVert, m) / (\max(\lVert u\rVert, m) + \epsilon)`, 1 if a norm is 0."""
    dtype = real_dtype(compute_dtype(jnp.result_type(u)))
    p_norm = jnp.maximum(global_norm(p).astype(dtype), min_norm.astype(dtype))
    u_norm = jnp.maximum(global_norm(u).astype(dtype), min_norm.astype(dtype))
    zero = (p_norm == 0) | (u_norm == 0)
    den = jnp.where(zero, jnp.ones_like(u_norm), u_norm + eps.astype(dtype))
    return jnp.where(zero, jnp.ones_like(u_norm), coefficient.astype(dtype) * p_norm / den)


TRUST_RATIO_HYPERPARAMS = ("min_norm", "trust_coefficient", "eps")


@dataclasses.dataclass(frozen=True)
class ScaleByTrustRatio(StatelessWithHyperparams):
    """``stored`` names the hyperparameters kept in the state; the others are constants.

    An optimizer stores only the ones it exposes, so that (say) LAMB's state
    has one ``eps`` (Adam's), not a second one from the trust ratio.
    """

    min_norm: HyperParam
    trust_coefficient: HyperParam
    eps: HyperParam
    mask: Callable | FrozenTree | None = None
    stored: tuple[str, ...] = TRUST_RATIO_HYPERPARAMS

    @property
    def hyperparam_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.stored

    def apply(self, updates, hyperparams, params):
        _require_params(params, updates, "scale_by_trust_ratio")
        constants = {
            n: as_hyperparam(getattr(self, n)) for n in TRUST_RATIO_HYPERPARAMS if n not in self.stored
        }
        h = {**constants, **hyperparams}

        def scale(u, p):
            ratio = trust_ratio(u, p, h["min_norm"], h["trust_coefficient"], h["eps"])
            return (as_compute(u) * ratio).astype(u.dtype)

        mask = resolve_mask(self.mask, params)
        if mask is None:
            return jax.tree.map(scale, updates, params)
        return jax.tree.map(lambda u, p, m: _select(m, scale(u, p), u), updates, params, mask)


@shared_docs
def scale_by_trust_ratio(
    min_norm: HyperParam = 0.0,
    trust_coefficient: HyperParam = 1.0,
    eps: HyperParam = 0.0,
    *,
    mask: Mask | None = None,
) -> GradientTransformation:
    r"""Rescales each leaf by the ratio of its parameter norm to its update norm.

    .. math::
        u_\ell \leftarrow u_\ell \cdot
        \frac{c\, \max(\lVert\theta_\ell\rVert_2, m)}{\max(\lVert u_\ell\rVert_2, m) + \epsilon}

    per leaf :math:`\ell`; the ratio is 1 where either clipped norm is 0 (a
    zero-initialised layer, or a zero update), never 0/0. This is the layer
    adaptation of LARS and LAMB (and, with ``min_norm``, of Fromage), and
    equals ``optax.scale_by_trust_ratio``; ``mask`` plays the role of
    wrapping it in ``optax.masked``.

    Args:
        min_norm: :math:`m` >= 0, a lower bound on both norms.
        trust_coefficient: :math:`c` >= 0.
        eps: :math:`\epsilon` >= 0, added to the update norm.
        mask: {mask}

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional
        Networks", 2017; You et al., "Large Batch Optimization for Deep
        Learning: Training BERT in 76 minutes", ICLR 2020.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_trust_ratio()
        >>> params = jnp.array([3.0, 4.0])
        >>> tx.update(jnp.array([0.0, 0.5]), tx.init(params), params)[0]
        Array([0., 5.], dtype=float32)
    """
    check_nonnegative("min_norm", min_norm)
    check_nonnegative("trust_coefficient", trust_coefficient)
    check_nonnegative("eps", eps)
    return ScaleByTrustRatio(
        min_norm, trust_coefficient, eps, mask if mask is None or callable(mask) else freeze(mask)
    )


@dataclasses.dataclass(frozen=True)
class FromageStep(StatelessWithHyperparams):
    r"""Fromage's step after the trust ratio: :math:`\theta \leftarrow (\theta - \eta u)/\sqrt{1+\eta^2}`."""

    learning_rate: HyperParam
    hyperparam_names = ("learning_rate",)

    def apply(self, updates, hyperparams, params):
        _require_params(params, updates, "fromage")
        lr = hyperparams["learning_rate"]
        root = jnp.sqrt(1 + lr * lr)
        # 1/root - 1 written without cancellation: small learning rates keep full precision.
        scalars = Scalars(step=-lr / root, shrink=-(lr * lr) / (root * (1 + root)))

        def step(u, p):
            s = scalars.for_leaf(u)
            return (s["step"] * as_compute(u) + s["shrink"] * as_compute(p)).astype(u.dtype)

        return jax.tree.map(step, updates, params)


# --- NovoGrad --------------------------------------------------------------------------------


class ScaleByNovogradState(NamedTuple):
    count: jax.Array
    mu: Any
    nu: Any  # one scalar per leaf: the moving average of the squared leaf norm
    hyperparams: dict[str, jax.Array]


def _scalar_zeros(params: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda p: jnp.zeros([], dtype or real_dtype(compute_dtype(p.dtype))), params)


def _is_zero_constant(value: Any) -> bool:
    return not callable(value) and not isinstance(value, jax.core.Tracer) and float(value) == 0.0


@dataclasses.dataclass(frozen=True)
class ScaleByNovograd(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    eps_root: HyperParam
    weight_decay: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps", "eps_root", "weight_decay")

    def init(self, params):
        return ScaleByNovogradState(
            zero_count(),
            zeros_like(params, self.mu_dtype),
            _scalar_zeros(params, self.nu_dtype),
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        if params is None:
            if not _is_zero_constant(self.weight_decay):
                raise ValueError("scale_by_novograd with weight_decay needs `params`")
            params = jax.tree.map(lambda _: None, updates)
        else:
            check_same_structure(updates, params, "updates", "params")
        first = state.count == 0
        h = state.hyperparams
        scalars = Scalars(
            eps=h["eps"],
            eps_root=h["eps_root"],
            wd=h["weight_decay"],
            **decay_scalars(b1=h["b1"], b2=h["b2"]),
        )

        def step(g, mu, nu, p):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            sq = jnp.sum(abs_sq(gc)).astype(s["b2"].dtype)
            new_nu = jnp.where(first, sq, ema(sq, nu, s["b2"], s["one_minus_b2"]))
            normalised = safe_div(gc, (jnp.sqrt(new_nu + s["eps_root"]) + s["eps"]).astype(gc.dtype))
            if p is not None:
                normalised = normalised + s["wd"] * as_compute(p)
            new_mu = jnp.where(first, normalised, s["b1"] * mu.astype(gc.dtype) + normalised)
            return new_mu.astype(g.dtype), new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

        out, mu, nu = map_unzip(step, 3, updates, state.mu, state.nu, params)
        count = safe_increment(state.count)
        return out, ScaleByNovogradState(count, mu, nu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_novograd(
    b1: HyperParam = 0.9,
    b2: HyperParam = 0.25,
    eps: HyperParam = 1e-8,
    eps_root: HyperParam = 0.0,
    weight_decay: HyperParam = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NovoGrad's rescaling: a second moment per leaf, normalising before the momentum.

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) \lVert g_t\rVert_2^2, \quad
        m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_{root}} + \epsilon} + \lambda\theta_{t-1},
        \quad u_t = m_t

    per leaf, with :math:`v_1 = \lVert g_1\rVert^2` and :math:`m_1` the bracket
    alone (no bias correction, no :math:`1-\beta_1` factor: the paper's
    Algorithm 1). Equals ``optax.scale_by_novograd``, except that ``eps = 0``
    with a zero gradient gives 0 where optax gives NaN.

    Args:
        b1: {b1}
        b2: decay rate of the per-leaf squared-norm average, in [0, 1).
        eps: {eps}
        eps_root: {eps_root}
        weight_decay: :math:`\lambda` >= 0, added inside the momentum (needs ``params``).
        mu_dtype: {mu_dtype}
        nu_dtype: dtype of the per-leaf scalar :math:`v`; ``None`` uses at least
            float32 (a squared norm overflows float16 easily, and it costs one scalar per leaf).

    References:
        Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
        Moments for Training of Deep Networks", 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_novograd(eps=0.0)
        >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]
        Array([0.6, 0.8], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    check_nonnegative("weight_decay", weight_decay)
    reject_quantized("scale_by_novograd", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleByNovograd(b1, b2, eps, eps_root, weight_decay, mu_dtype, nu_dtype)


# --- SM3 -------------------------------------------------------------------------------------


class ScaleBySM3State(NamedTuple):
    count: jax.Array
    mu: Any  # momentum of the normalised gradient
    accumulators: Any  # per leaf, a list: one vector per axis (>= 2-d), or the full accumulator
    hyperparams: dict[str, jax.Array]


def _covers(p: Any, dtype: Any) -> list[jax.Array]:
    """SM3's cover of a leaf: one accumulator per axis for matrices and up, else the whole leaf."""
    dtype = dtype or real_dtype(compute_dtype(p.dtype))
    shape = jnp.shape(p)
    if len(shape) < 2:
        return [jnp.zeros(shape, dtype)]
    return [jnp.zeros((n,), dtype) for n in shape]


def _along(v: jax.Array, axis: int, ndim: int) -> jax.Array:
    """A per-axis vector reshaped to broadcast along ``axis`` of an ``ndim``-d leaf."""
    return v.reshape([1] * axis + [v.shape[0]] + [1] * (ndim - axis - 1))


@dataclasses.dataclass(frozen=True)
class ScaleBySM3(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    eps: HyperParam
    mu_dtype: Any = None
    nu_dtype: Any = None
    hyperparam_names = ("b1", "b2", "eps")

    def init(self, params):
        for leaf in jax.tree.leaves(params):
            if jnp.iscomplexobj(leaf):
                raise TypeError("scale_by_sm3: complex parameters are not supported")
        accumulators = jax.tree.map(lambda p: _covers(p, self.nu_dtype), params)
        return ScaleBySM3State(
            zero_count(), zeros_like(params, self.mu_dtype), accumulators, self.init_hyperparams()
        )

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        h = state.hyperparams
        # b2 = 1 sums squares (the paper's SM3); b2 < 1 averages them (optax's extension).
        new_weight = jnp.where(h["b2"] == 1, jnp.ones_like(h["b2"]), 1 - h["b2"])
        scalars = Scalars(b2=h["b2"], new_weight=new_weight, eps=h["eps"], **decay_scalars(b1=h["b1"]))

        def step(g, mu, covers):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            ndim = gc.ndim
            if ndim < 2:
                previous = covers[0].astype(gc.dtype)
            else:
                previous = functools.reduce(
                    jnp.minimum, [_along(c.astype(gc.dtype), i, ndim) for i, c in enumerate(covers)]
                )
            acc = s["new_weight"] * gc * gc + s["b2"] * previous
            scaled = jnp.where(acc > 0, gc * jax.lax.rsqrt(acc + s["eps"]), jnp.zeros_like(gc))
            new_mu = ema(scaled, mu, s["b1"], s["one_minus_b1"])
            if ndim < 2:
                new_covers = [acc.astype(covers[0].dtype)]
            else:
                others = lambda i: tuple(a for a in range(ndim) if a != i)  # noqa: E731
                # acc >= 0, so initial=0 changes nothing but gives a zero-size leaf's covers a value.
                new_covers = [
                    jnp.max(acc, axis=others(i), initial=0).astype(c.dtype) for i, c in enumerate(covers)
                ]
            return new_mu.astype(g.dtype), new_mu.astype(mu.dtype), new_covers

        out, mu, accumulators = map_unzip(step, 3, updates, state.mu, state.accumulators)
        count = safe_increment(state.count)
        return out, ScaleBySM3State(count, mu, accumulators, self.next_hyperparams(h, count))


@shared_docs
def scale_by_sm3(
    b1: HyperParam = 0.9,
    b2: HyperParam = 1.0,
    eps: HyperParam = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""SM3's memory-efficient AdaGrad-like rescaling, with momentum.

    For a leaf of rank :math:`k \ge 2` SM3 keeps one accumulator vector
    :math:`\mu^{(r)}` per axis :math:`r` (the rows, the columns, ...), instead of
    one per element:

    .. math::
        \nu_t(i) = \min_r \mu^{(r)}_{t-1}(i_r) + g_t(i)^2, \quad
        \mu^{(r)}_t(j) = \max_{i:\, i_r = j} \nu_t(i), \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) \frac{g_t}{\sqrt{\nu_t + \epsilon}}, \quad u_t = m_t

    (the paper's SM3-II). Leaves of rank 0 and 1 keep the full accumulator
    (plain AdaGrad). With ``b2 < 1`` the squares are averaged instead,
    :math:`\nu_t = \beta_2 \min_r \mu^{(r)} + (1-\beta_2) g_t^2` (optax's
    extension). The update is 0 where :math:`\nu_t = 0`.

    Equals ``optax.scale_by_sm3`` on leaves of rank >= 1; optax fails with an
    IndexError on a rank-0 (scalar) leaf, which gradtx treats as rank 1.

    Args:
        b1: momentum decay :math:`\beta_1` in [0, 1) (optax's ``sm3(momentum=...)``).
        b2: decay of the accumulators in (0, 1]; 1 (the default) sums squares.
        eps: added inside the square root; must be >= 0.
        mu_dtype: {mu_dtype}
        nu_dtype: dtype of the accumulators; ``None`` uses at least float32
            (sums of squares overflow float16).

    References:
        Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization",
        NeurIPS 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_sm3(b1=0.0, eps=0.0)
        >>> tx.update(jnp.array([[3.0, -4.0]]), tx.init(jnp.zeros((1, 2))))[0]
        Array([[ 1., -1.]], dtype=float32)
    """
    check_beta("b1", b1)
    check_range("b2", b2, 0.0, 1.0, low_open=True)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_sm3", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return ScaleBySM3(b1, b2, eps, mu_dtype, nu_dtype)
