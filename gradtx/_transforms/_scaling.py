"""Multiplying updates by a constant or a learning rate."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax

from gradtx._core.base import GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, safe_increment, zero_count
from gradtx._core.validation import check_range


class HyperState(NamedTuple):
    """State of a transformation that keeps only its step count and hyperparameters."""

    count: jax.Array
    hyperparams: dict[str, jax.Array]


class StatelessWithHyperparams(WithHyperparams, GradientTransformation):
    """Base of transformations whose only state is :class:`HyperState`.

    Subclasses implement ``apply(updates, hyperparams, params)``.
    """

    def init(self, params: Any) -> HyperState:
        return HyperState(zero_count(), self.init_hyperparams())

    def apply(self, updates: Any, hyperparams: dict, params: Any) -> Any:
        raise NotImplementedError

    def update(self, updates, state, params=None, **extra_args):
        updates = self.apply(updates, state.hyperparams, params)
        count = safe_increment(state.count)
        return updates, HyperState(count, self.next_hyperparams(state.hyperparams, count))


def scale_tree(updates: Any, factor: jax.Array) -> Any:
    """Each leaf times ``factor``, computed in at least float32, cast back."""
    scalars = Scalars(factor=factor)
    return jax.tree.map(lambda u: (as_compute(u) * scalars.for_leaf(u)["factor"]).astype(u.dtype), updates)


@dataclasses.dataclass(frozen=True)
class Scale(StatelessWithHyperparams):
    step_size: HyperParam
    hyperparam_names = ("step_size",)

    def apply(self, updates, hyperparams, params):
        return scale_tree(updates, hyperparams["step_size"])


def scale(step_size: HyperParam) -> GradientTransformation:
    r"""Multiplies updates by a constant: :math:`u \leftarrow s\,u`.

    Args:
        step_size: the factor ``s`` (a number or a schedule); stored in the
            state as ``step_size``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale(-2.0)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([-2., -2.], dtype=float32)
    """
    check_range("step_size", step_size)  # any sign; rejects NaN
    return Scale(step_size)


@dataclasses.dataclass(frozen=True)
class ScaleByLearningRate(StatelessWithHyperparams):
    learning_rate: HyperParam
    flip_sign: bool = True
    hyperparam_names = ("learning_rate",)

    def apply(self, updates, hyperparams, params):
        lr = hyperparams["learning_rate"]
        return scale_tree(updates, -lr if self.flip_sign else lr)


@shared_docs
def scale_by_learning_rate(learning_rate: HyperParam, *, flip_sign: bool = True) -> GradientTransformation:
    r"""Scales updates by the learning rate, negated for descent: :math:`u \leftarrow -\eta_t u`.

    Args:
        learning_rate: {learning_rate}
        flip_sign: negate the result (the default), so that
            ``apply_updates`` performs gradient *descent*.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_learning_rate(0.1)
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([-0.1, -0.1], dtype=float32)
    """
    check_range("learning_rate", learning_rate, 0.0)
    return ScaleByLearningRate(learning_rate, flip_sign)
