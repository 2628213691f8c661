"""Schedule-Free learning (Defazio et al., 2024): interpolation and averaging in place of momentum."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    abs_sq,
    as_compute,
    bias_correction,
    map_unzip,
    safe_div,
    safe_increment,
    zero_count,
)
from gradtx._core.validation import check_same_structure
from gradtx._transforms._adaptive import decay_scalars, ema, real_zeros_like
from gradtx._wrappers._shared import copy_tree, find_state, require_params


class ScaleByRmsCorrectedState(NamedTuple):
    count: jax.Array
    nu: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByRmsCorrected(WithHyperparams, GradientTransformation):
    """Adam without its first moment: :math:`g_t / (\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon)`."""

    b2: HyperParam
    eps: HyperParam
    hyperparam_names = ("b2", "eps")

    def init(self, params):
        return ScaleByRmsCorrectedState(zero_count(), real_zeros_like(params), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.nu, "updates", "state.nu")
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(bc2=bias_correction(h["b2"], count), eps=h["eps"], **decay_scalars(b2=h["b2"]))

        def step(g, nu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_nu = ema(abs_sq(gc), nu, s["b2"], s["one_minus_b2"])
            out = safe_div(gc, jnp.sqrt(new_nu / s["bc2"]) + s["eps"])
            return out.astype(g.dtype), new_nu.astype(nu.dtype)

        out, nu = map_unzip(step, 2, updates, state.nu)
        return out, ScaleByRmsCorrectedState(count, nu, self.next_hyperparams(h, count))


class ScheduleFreeState(NamedTuple):
    """``z``: the base optimizer's iterate :math:`z_t`; ``weight_sum``: the sum of
    averaging weights so far; ``max_lr``: the largest learning rate seen;
    ``count``: steps taken (saturating). The evaluation point :math:`x_t` is not
    stored: it is recovered from the parameters :math:`y_t` and :math:`z_t`."""

    count: jax.Array
    weight_sum: jax.Array
    max_lr: jax.Array
    z: Any
    inner_state: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScheduleFree(WithHyperparams, GradientTransformation):
    """Schedule-Free averaging around a base direction ``tx`` (a step of ``-learning_rate * tx(g)``).

    ``tx`` returns a descent direction *before* the learning rate (SGD: the
    gradient; AdamW: the normalised gradient plus weight decay); this wrapper
    owns the learning rate, so it appears once in the state.
    """

    tx: Any
    learning_rate: HyperParam
    b1: HyperParam
    weight_lr_power: HyperParam
    warmup_steps: HyperParam
    state_dtype: Any = None
    hyperparam_names = ("learning_rate", "b1", "weight_lr_power", "warmup_steps")

    def init(self, params):
        hyperparams = self.init_hyperparams()
        zero = jnp.zeros([], hyperparams["learning_rate"].dtype)
        dtype_fn = None if self.state_dtype is None else (lambda _: self.state_dtype)
        z = copy_tree(params, dtype_fn)
        return ScheduleFreeState(zero_count(), zero, zero, z, self.tx.init(params), hyperparams)

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "schedule_free")
        check_same_structure(params, state.z, "params", "state.z")
        h = state.hyperparams
        count = safe_increment(state.count)
        t = count.astype(h["learning_rate"].dtype)
        warmup = h["warmup_steps"]
        ramp = jnp.where(warmup > 0, jnp.minimum(1.0, t / jnp.where(warmup > 0, warmup, 1.0)), 1.0)
        lr = h["learning_rate"] * ramp
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** h["weight_lr_power"]
        weight_sum = state.weight_sum + weight
        direction, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
        scalars = Scalars(lr=lr, ck=safe_div(weight, weight_sum), b1=h["b1"], one_minus_b1=1 - h["b1"])

        def step(d, y, z):
            s = scalars.for_leaf(y)
            yc, zc = as_compute(y), as_compute(z)
            new_z = (zc - s["lr"] * as_compute(d)).astype(z.dtype)
            new_zc = as_compute(new_z).astype(yc.dtype)
            x = (yc - s["one_minus_b1"] * zc.astype(yc.dtype)) / s["b1"]
            new_x = x + s["ck"] * (new_zc - x)
            new_y = s["b1"] * new_x + s["one_minus_b1"] * new_zc
            return (new_y - yc).astype(jnp.result_type(y)), new_z

        out, z = map_unzip(step, 2, direction, params, state.z)
        new_state = ScheduleFreeState(count, weight_sum, max_lr, z, inner, self.next_hyperparams(h, count))
        return out, new_state


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    r"""The evaluation point :math:`x_t = (y_t - (1-\beta_1) z_t) / \beta_1` of a Schedule-Free optimizer.

    The parameters trained (and passed to ``update``) are the gradient points
    :math:`y_t`; the averaged iterate :math:`x_t`, where the paper evaluates
    the test/validation loss, is recovered from them and the state's
    :math:`z_t`. Works inside ``jit``.

    Args:
        state: an optimizer state holding one :func:`gradtx.schedule_free_sgd`
            or :func:`gradtx.schedule_free_adamw`.
        params: the current parameters :math:`y_t`.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.schedule_free_sgd(learning_rate=0.1)
        >>> params = jnp.array([1.0])
        >>> state = tx.init(params)
        >>> updates, state = tx.update(jnp.array([1.0]), state, params)
        >>> params = gradtx.apply_updates(params, updates)
        >>> gradtx.schedule_free_eval_params(state, params)  # x_1 = z_1 = 1 - 0.1
        Array([0.9], dtype=float32)
    """
    s = find_state(state, ScheduleFreeState, "schedule_free_eval_params")
    check_same_structure(params, s.z, "params", "state.z")
    b1 = s.hyperparams["b1"]

    def x_of(y, z):
        yc = as_compute(y)
        b = b1.astype(yc.dtype)
        return ((yc - (1 - b) * as_compute(z).astype(yc.dtype)) / b).astype(jnp.result_type(y))

    return jax.tree.map(x_of, params, s.z)
