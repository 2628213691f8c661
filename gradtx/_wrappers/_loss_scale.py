"""Dynamic loss scaling for float16 training: unscale, skip overflowing steps, adapt the scale."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, safe_increment, zero_count
from gradtx._core.validation import check_range
from gradtx._wrappers._shared import check_count, find_state
from gradtx.tree import all_finite


class LossScaleState(NamedTuple):
    """``scale``: the loss scale the next step's loss must be multiplied by;
    ``good_steps``: finite steps since the scale last changed (torch's growth
    tracker); ``last_finite``: whether the last step's gradients were finite
    (False means it was skipped); ``skipped_steps``: all skipped steps;
    ``count``: all steps. Counters saturate at the int32 maximum."""

    count: jax.Array
    scale: jax.Array
    good_steps: jax.Array
    last_finite: jax.Array
    skipped_steps: jax.Array
    inner_state: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class DynamicLossScale(WithHyperparams, GradientTransformation):
    """Dynamic loss scaling around ``tx`` (see :func:`dynamic_loss_scale`)."""

    tx: Any
    initial_scale: float
    growth_interval: HyperParam
    growth_factor: HyperParam
    backoff_factor: HyperParam
    min_loss_scale: HyperParam
    hyperparam_names = ("growth_interval", "growth_factor", "backoff_factor", "min_loss_scale")

    def init(self, params):
        scale = jnp.asarray(self.initial_scale, jnp.float32)
        return LossScaleState(
            zero_count(),
            scale,
            zero_count(),
            jnp.asarray(True),
            zero_count(),
            self.tx.init(params),
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, **extra_args):
        scalars = Scalars(inv_scale=1 / state.scale)  # torch multiplies by the reciprocal, too
        grads = jax.tree.map(
            lambda g: (as_compute(g) * scalars.for_leaf(g)["inv_scale"]).astype(g.dtype), updates
        )
        finite = all_finite(grads)
        out, inner = call_update(self.tx, grads, state.inner_state, params, extra_args)
        out = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), out)
        inner = jax.tree.map(lambda new, old: jax.lax.select(finite, new, old), inner, state.inner_state)

        h = {k: v.astype(state.scale.dtype) for k, v in state.hyperparams.items()}
        good = safe_increment(state.good_steps)
        grow = finite & (good.astype(h["growth_interval"].dtype) >= h["growth_interval"])
        grown = state.scale * h["growth_factor"]
        backed_off = jnp.maximum(state.scale * h["backoff_factor"], h["min_loss_scale"])
        scale = jnp.where(finite, jnp.where(grow & jnp.isfinite(grown), grown, state.scale), backed_off)
        count = safe_increment(state.count)
        new_state = LossScaleState(
            count=count,
            scale=scale,
            good_steps=jnp.where(finite & ~grow, good, 0).astype(good.dtype),
            last_finite=finite,
            skipped_steps=jnp.where(finite, state.skipped_steps, safe_increment(state.skipped_steps)),
            inner_state=inner,
            hyperparams=self.next_hyperparams(state.hyperparams, count),
        )
        return out, new_state


def dynamic_loss_scale(
    tx: Any,
    initial_scale: float = 2.0**15,
    growth_interval: int = 2000,
    growth_factor: HyperParam = 2.0,
    backoff_factor: HyperParam = 0.5,
    min_scale: HyperParam = 1.0,
) -> GradientTransformation:
    r"""Dynamic loss scaling for float16 training: unscales gradients and skips overflowing steps.

    float16 represents magnitudes from about 6e-8 to 65504: small gradients
    flush to zero in the backward pass (vanishing, in effect) and large ones
    overflow. Multiplying the loss by a scale :math:`S` shifts every gradient
    of the backward pass by :math:`S`; this wrapper divides it out again. With
    :math:`g` the gradients of the *scaled* loss:

    - :math:`\hat g = g / S`; if :math:`\hat g` is all finite, ``tx`` runs on
      it, and after ``growth_interval`` finite steps in a row
      :math:`S \leftarrow S \cdot` ``growth_factor`` (unless that overflows
      float32);
    - otherwise the step is skipped — zero updates, ``tx``'s state unchanged —
      and :math:`S \leftarrow \max(S \cdot \text{backoff\_factor}, \text{min\_scale})`.

    Usage: multiply the loss by :func:`gradtx.loss_scale` of the current state
    before differentiating, and pass the gradients as they come::

        def loss_fn(params, scale):
            return model_loss(params) * scale    # cast the loss to float32 first

        grads = jax.grad(loss_fn)(params, gradtx.loss_scale(state))
        updates, state = tx.update(grads, state, params)

    This is ``torch.amp.GradScaler``'s rule (same defaults apart from the
    initial scale and ``min_scale``, which torch lacks, so its scale can decay
    to 0): with a power-of-two scale the unscaled gradients, the scale
    trajectory and the skipped steps match torch exactly. The default initial
    scale is :math:`2^{15}`, the largest power of two float16 represents
    (torch's :math:`2^{16}` is ``inf`` in float16). Put this wrapper
    outermost: wrappers inside it see unscaled gradients and are not advanced
    on skipped steps. The intended set-up is float32 parameters with float16
    computation (the gradients then come back in float32); unscaled gradients
    keep the dtype they arrive in.

    Args:
        tx: the optimizer run on the unscaled gradients (gradtx or optax).
        initial_scale: :math:`S` at the first step, > 0.
        growth_interval: finite steps in a row before the scale grows, an integer >= 1.
        growth_factor: multiplier of the scale when it grows, >= 1.
        backoff_factor: multiplier of the scale on a non-finite step, in (0, 1].
        min_scale: the scale never backs off below this, >= 0; stored as
            ``min_loss_scale``.

    The last four live in the state (``gradtx.set_hyperparam``); the current
    scale is state, read with :func:`gradtx.loss_scale`.

    References:
        Micikevicius et al., "Mixed Precision Training", ICLR 2018.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.dynamic_loss_scale(gradtx.sgd(0.1), initial_scale=1024.0)
        >>> params = jnp.ones(2)
        >>> state = tx.init(params)
        >>> updates, state = tx.update(jnp.array([jnp.inf, 1.0]), state, params)  # overflow
        >>> updates, gradtx.loss_scale(state)
        (Array([0., 0.], dtype=float32), Array(512., dtype=float32))
        >>> grads = jax.grad(lambda p, s: jnp.sum(p) * s)(params, gradtx.loss_scale(state))
        >>> tx.update(grads, state, params)[0]
        Array([-0.1, -0.1], dtype=float32)
    """
    _check_transformation(tx, "dynamic_loss_scale: tx")
    if callable(initial_scale) or isinstance(initial_scale, jax.core.Tracer):
        raise TypeError("initial_scale must be a number (the scale then lives in the state)")
    check_range("initial_scale", initial_scale, 0.0, low_open=True)
    check_count("growth_interval", growth_interval, 1)
    check_range("growth_factor", growth_factor, 1.0)
    check_range("backoff_factor", backoff_factor, 0.0, 1.0, low_open=True)
    check_range("min_scale", min_scale, 0.0)
    return DynamicLossScale(
        tx, float(initial_scale), growth_interval, growth_factor, backoff_factor, min_scale
    )


def loss_scale(state: Any) -> jax.Array:
    """The scale to multiply the next loss by, from the :func:`dynamic_loss_scale` inside ``state``.

    A float32 scalar; works inside ``jit``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> gradtx.loss_scale(gradtx.dynamic_loss_scale(gradtx.adam(1e-3)).init(jnp.zeros(2)))
        Array(32768., dtype=float32)
    """
    return find_state(state, LossScaleState, "loss_scale").scale
