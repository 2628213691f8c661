"""Adafactor's pieces: the factored second-moment rescaling, block-RMS clipping and scaling."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    abs_sq,
    as_compute,
    map_unzip,
    real_dtype,
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.validation import check_nonnegative, check_range, check_same_structure, reject_complex
from gradtx._transforms._adaptive import decay_scalars, ema
from gradtx._transforms._scaling import StatelessWithHyperparams


def factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """``(d1, d0)``: the second-largest and largest axes, or None if the leaf is not factored.

    The same choice as optax (``np.argsort`` of the shape), so ties break alike.
    """
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


class FactoredRmsState(NamedTuple):
    count: jax.Array
    v_row: Any  # per leaf: the running mean of g^2 over the largest axis, or an empty placeholder
    v_col: Any  # per leaf: the running mean of g^2 over the second-largest axis, or a placeholder
    v: Any  # per leaf: the full running mean of g^2 for unfactored leaves, or a placeholder
    hyperparams: dict[str, jax.Array]


def _placeholder(dtype: Any) -> jax.Array:
    return jnp.zeros((0,), dtype)


@dataclasses.dataclass(frozen=True)
class ScaleByFactoredRms(WithHyperparams, GradientTransformation):
    decay_rate: HyperParam
    decay_offset: HyperParam
    eps: HyperParam
    factored: bool
    min_dim_size_to_factor: int
    nu_dtype: Any = None
    hyperparam_names = ("decay_rate", "decay_offset", "eps")

    def _dims(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        return factored_dims(tuple(shape), self.factored, self.min_dim_size_to_factor)

    def init(self, params):
        reject_complex(
            params, "scale_by_factored_rms", "the factored second moment is a real row/column statistic"
        )

        def buffers(p):
            shape, dtype = jnp.shape(p), self.nu_dtype or real_dtype(p.dtype)
            dims = self._dims(shape)
            if dims is None:
                return _placeholder(dtype), _placeholder(dtype), jnp.zeros_like(p, dtype)
            d1, d0 = dims
            row_shape = tuple(n for i, n in enumerate(shape) if i != d0)
            col_shape = tuple(n for i, n in enumerate(shape) if i != d1)
            return jnp.zeros(row_shape, dtype), jnp.zeros(col_shape, dtype), _placeholder(dtype)

        leaves, treedef = jax.tree.flatten(params)
        columns = list(zip(*[buffers(p) for p in leaves])) if leaves else [()] * 3
        v_row, v_col, v = (treedef.unflatten(list(c)) for c in columns)
        return FactoredRmsState(zero_count(), v_row, v_col, v, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.v, "updates", "state.v", shapes=False)
        h = state.hyperparams
        count = safe_increment(state.count)
        # Steps up to decay_offset count as step 1 (beta = 0) instead of t <= 0, where t^-c is inf or NaN.
        t = jnp.maximum(count.astype(h["decay_offset"].dtype) - h["decay_offset"], 1.0)
        scalars = Scalars(eps=h["eps"], **decay_scalars(decay=1 - t ** (-h["decay_rate"])))

        def step(g, v_row, v_col, v):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            g2 = abs_sq(gc) + s["eps"]
            dims = self._dims(jnp.shape(g))
            if dims is None:
                new_v = ema(g2, v, s["decay"], s["one_minus_decay"])
                out = safe_div(gc, jnp.sqrt(new_v))
                return out.astype(g.dtype), v_row, v_col, new_v.astype(v.dtype)
            d1, d0 = dims
            new_row = ema(jnp.mean(g2, axis=d0), v_row, s["decay"], s["one_minus_decay"])
            new_col = ema(jnp.mean(g2, axis=d1), v_col, s["decay"], s["one_minus_decay"])
            row_axis = d1 - 1 if d1 > d0 else d1
            row_ratio = safe_div(new_row, jnp.mean(new_row, axis=row_axis, keepdims=True))
            v_hat = jnp.expand_dims(row_ratio, d0) * jnp.expand_dims(new_col, d1)
            out = safe_div(gc, jnp.sqrt(v_hat))
            return out.astype(g.dtype), new_row.astype(v_row.dtype), new_col.astype(v_col.dtype), v

        out, v_row, v_col, v = map_unzip(step, 4, updates, state.v_row, state.v_col, state.v)
        return out, FactoredRmsState(count, v_row, v_col, v, self.next_hyperparams(h, count))


@shared_docs
def scale_by_factored_rms(
    decay_rate: HyperParam = 0.8,
    decay_offset: HyperParam = 0.0,
    eps: HyperParam = 1e-30,
    *,
    factored: bool = True,
    min_dim_size_to_factor: int = 128,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Rescaling by a factored estimate of the gradient's root mean square (Adafactor).

    With :math:`t` the step count (from 1) minus ``decay_offset``, at least 1, and
    :math:`\hat\beta_t = 1 - t^{-c}` (:math:`c` = ``decay_rate``; :math:`\hat\beta_1 = 0`):

    .. math::
        V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t)(g_t^2 + \epsilon_1), \qquad
        u_t = g_t / \sqrt{V_t}

    for a leaf that is not factored. A leaf with two axes of size at least
    ``min_dim_size_to_factor`` keeps only the means of :math:`g^2 + \epsilon_1`
    over its largest axis (:math:`R`) and its second-largest axis (:math:`C`),
    and uses :math:`\hat V_t = R_t C_t / \operatorname{mean}(R_t)` in place of
    :math:`V_t` (the paper's rank-one estimate, written with means instead of sums).

    Equals ``optax.scale_by_factored_rms`` except that gradtx computes the decay
    :math:`\hat\beta_t` in the hyperparameters' dtype (float64 under
    ``jax_enable_x64``), where optax always rounds it to float32.

    Args:
        decay_rate: the exponent :math:`c` of the decay schedule, >= 0 (the paper's 0.8).
        decay_offset: subtracted from the step count (for fine-tuning from step ``decay_offset``).
        eps: :math:`\epsilon_1`, added to :math:`g^2`; must be >= 0.
        factored: factor the second moment of leaves with two or more axes.
        min_dim_size_to_factor: factor only when the two largest axes have at least this size.
        nu_dtype: {nu_dtype}

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear
        Memory Cost", ICML 2018 (Algorithms 4 and 5).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_factored_rms(min_dim_size_to_factor=2)
        >>> state = tx.init(jnp.zeros((2, 3)))
        >>> [x.shape for x in (state.v_row, state.v_col)]
        [(2,), (3,)]
        >>> tx.update(jnp.array([[1.0, -1.0, 1.0], [2.0, 2.0, -2.0]]), state)[0]
        Array([[ 1., -1.,  1.],
               [ 1.,  1., -1.]], dtype=float32)
    """
    check_nonnegative("decay_rate", decay_rate)
    check_range("decay_offset", decay_offset)
    check_nonnegative("eps", eps)
    if not isinstance(min_dim_size_to_factor, (int, np.integer)) or min_dim_size_to_factor < 1:
        raise ValueError(f"min_dim_size_to_factor must be an integer >= 1, got {min_dim_size_to_factor!r}")
    return ScaleByFactoredRms(
        decay_rate, decay_offset, eps, bool(factored), int(min_dim_size_to_factor), nu_dtype
    )


def block_rms(x: jax.Array) -> jax.Array:
    """The root mean square of a whole leaf, in its compute dtype."""
    return jnp.sqrt(jnp.mean(abs_sq(as_compute(x))))


@dataclasses.dataclass(frozen=True)
class ClipByBlockRms(StatelessWithHyperparams):
    """``u / max(1, rms(u) / clipping_threshold)`` for each leaf (Adafactor's update clipping)."""

    clipping_threshold: HyperParam
    hyperparam_names = ("clipping_threshold",)

    def apply(self, updates, hyperparams, params):
        scalars = Scalars(threshold=hyperparams["clipping_threshold"])

        def clip_leaf(u):
            uc = as_compute(u)
            denom = jnp.maximum(1, block_rms(uc) / scalars.for_leaf(u)["threshold"])
            return (uc / denom).astype(u.dtype)

        return jax.tree.map(clip_leaf, updates)


@dataclasses.dataclass(frozen=True)
class ScaleByParamBlockRms(StatelessWithHyperparams):
    """``u * max(rms(p), min_param_scale)`` for each leaf (Adafactor's relative step size)."""

    min_param_scale: HyperParam
    hyperparam_names = ("min_param_scale",)

    def apply(self, updates, hyperparams, params):
        if params is None:
            raise ValueError("adafactor with multiply_by_parameter_scale=True needs `params` in update")
        check_same_structure(updates, params, "updates", "params")
        scalars = Scalars(min_scale=hyperparams["min_param_scale"])

        def scale_leaf(u, p):
            uc = as_compute(u)
            factor = jnp.maximum(block_rms(p).astype(uc.dtype), scalars.for_leaf(u)["min_scale"])
            return (uc * factor).astype(u.dtype)

        return jax.tree.map(scale_leaf, updates, params)


class EmaState(NamedTuple):
    count: jax.Array
    mu: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Ema(WithHyperparams, GradientTransformation):
    """``m_t = momentum * m_{t-1} + (1 - momentum) * u_t`` from ``m_0 = 0``, no bias correction."""

    momentum: HyperParam
    mu_dtype: Any = None
    hyperparam_names = ("momentum",)

    def init(self, params):
        return EmaState(zero_count(), zeros_like(params, self.mu_dtype), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        scalars = Scalars(**decay_scalars(momentum=state.hyperparams["momentum"]))

        def step(u, mu):
            s = scalars.for_leaf(u)
            new = ema(as_compute(u), mu, s["momentum"], s["one_minus_momentum"])
            return new.astype(u.dtype), new.astype(mu.dtype)

        out, mu = map_unzip(step, 2, updates, state.mu)
        count = safe_increment(state.count)
        return out, EmaState(count, mu, self.next_hyperparams(state.hyperparams, count))
