"""Sharpness-Aware Minimisation (Foret et al., 2021): ascent steps, then a descent step from the start."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import as_compute, safe_increment, zero_count
from gradtx._core.validation import check_same_structure
from gradtx._wrappers._shared import check_count, copy_tree, require_params


class SamState(NamedTuple):
    """``outer``: the parameters of the last descent step (where the ascent
    started); ``steps_since_sync``: calls since then, in ``[0, sync_period)``;
    ``count``: all calls (saturating)."""

    count: jax.Array
    steps_since_sync: jax.Array
    outer: Any
    inner_state: Any
    adv_state: Any
    hyperparams: dict[str, jax.Array]


def _select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


@dataclasses.dataclass(frozen=True)
class Sam(WithHyperparams, GradientTransformation):
    """SAM around an outer and an adversarial optimizer (see :func:`sam`)."""

    tx: Any
    adv_tx: Any
    sync_period: HyperParam
    reset_state: bool = True
    hyperparam_names = ("sync_period",)

    def init(self, params):
        zero = zero_count()
        return SamState(
            zero,
            zero,
            copy_tree(params),
            self.tx.init(params),
            self.adv_tx.init(params),
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "sam")
        check_same_structure(params, state.outer, "params", "state.outer")
        h = state.hyperparams
        first = state.steps_since_sync == 0
        since = safe_increment(state.steps_since_sync)
        last = since.astype(h["sync_period"].dtype) >= h["sync_period"]
        outer = _select(first, params, state.outer)

        adv, adv_state = call_update(self.adv_tx, updates, state.adv_state, params, extra_args)
        descent, inner = call_update(self.tx, updates, state.inner_state, outer, extra_args)

        def choose(p, o, u_desc, u_adv):
            back_and_descend = as_compute(o) - as_compute(p) + as_compute(u_desc)
            ascend = -as_compute(u_adv)
            return jnp.where(last, back_and_descend, ascend).astype(jnp.result_type(p))

        out = jax.tree.map(choose, params, outer, descent, adv)
        if self.reset_state:
            adv_state = _select(last, self.adv_tx.init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        count = safe_increment(state.count)
        new_state = SamState(
            count=count,
            steps_since_sync=jnp.where(last, 0, since).astype(since.dtype),
            outer=outer,
            inner_state=_select(last, inner, state.inner_state),
            adv_state=adv_state,
            hyperparams=self.next_hyperparams(h, count),
        )
        return out, new_state


def sam(
    optimizer: Any, adv_optimizer: Any, sync_period: int = 2, reset_state: bool = True
) -> GradientTransformation:
    r"""Sharpness-Aware Minimisation: ``sync_period - 1`` ascent steps, then a descent from where they began.

    Call ``update`` once per gradient, as usual; the calls cycle through
    ``sync_period`` = :math:`k` phases. With :math:`w` the parameters of the
    last descent step (kept in the state), :math:`A` = ``adv_optimizer`` and
    :math:`O` = ``optimizer``:

    .. math::
        \text{calls } 1..k-1: \quad \theta \leftarrow \theta - A(g(\theta)), \qquad
        \text{call } k: \quad w \leftarrow w + O(g(\theta); w), \quad \theta \leftarrow w

    ``adv_optimizer`` is written as a *descent* optimizer and its updates are
    negated (so ``chain(<normalise>, sgd(rho))`` gives the paper's
    :math:`\epsilon = \rho\, g / \|g\|`); ``optimizer`` sees the gradient
    taken at the perturbed point and the unperturbed parameters :math:`w`
    (for weight decay). With :math:`k = 2` and that ``adv_optimizer`` this is
    the paper's Algorithm 1. The outer optimizer's state changes on descent
    calls only; ``reset_state`` re-initialises the adversarial optimizer's
    state after each descent. Between descents the parameters are perturbed:
    evaluate after a descent call.

    Equals ``optax.contrib.sam`` in its default (transparent) mode for
    ``sync_period >= 2``. With ``sync_period = 1`` optax undoes the previous
    update at each step (its cache lags one call); gradtx runs ``optimizer``
    plainly. optax's ``opaque_mode`` (calling a ``grad_fn`` inside
    ``update``) is not offered.

    Args:
        optimizer: the outer (descent) optimizer :math:`O`, gradtx or optax.
        adv_optimizer: the adversarial optimizer :math:`A`, gradtx or optax.
        sync_period: :math:`k`, an integer >= 1; stored as ``sync_period``.
        reset_state: re-initialise ``adv_optimizer``'s state after each descent.

    References:
        Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for
        Efficiently Improving Generalization", ICLR 2021.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.sam(gradtx.sgd(0.1), gradtx.sgd(0.5), sync_period=2)
        >>> params = jnp.array([1.0])
        >>> state = tx.init(params)
        >>> updates, state = tx.update(2 * params, state, params)  # ascent: 1 + 0.5 * 2
        >>> params = gradtx.apply_updates(params, updates); params
        Array([2.], dtype=float32)
        >>> updates, state = tx.update(2 * params, state, params)  # descent from 1 with g(2) = 4
        >>> gradtx.apply_updates(params, updates)
        Array([0.6], dtype=float32)
    """
    _check_transformation(optimizer, "sam: optimizer")
    _check_transformation(adv_optimizer, "sam: adv_optimizer")
    check_count("sync_period", sync_period, 1)
    return Sam(optimizer, adv_optimizer, sync_period, bool(reset_state))
