"""Sign-based rescalings: signSGD, Signum and Lion."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, map_unzip, safe_increment, zero_count, zeros_like
from gradtx._core.quantize import buffer_zeros, check_state_dtype, leaf_view, pack_like, unpack
from gradtx._core.validation import check_beta, check_same_structure, reject_complex
from gradtx._transforms._adaptive import decay_scalars, ema


@dataclasses.dataclass(frozen=True)
class ScaleBySign(GradientTransformation):
    def init(self, params):
        reject_complex(params, "scale_by_sign", "a complex number has no sign")
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        return jax.tree.map(jnp.sign, updates), state


def scale_by_sign() -> GradientTransformation:
    r"""Replaces each element by its sign: :math:`u_t = \operatorname{sign}(g_t)`.

    :math:`\operatorname{sign}(0) = 0`, so an exactly-zero gradient gives a
    zero update (as ``optax.scale_by_sign``).

    References:
        Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed
        Optimisation for Non-Convex Problems", ICML 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_sign()
        >>> tx.update(jnp.array([0.5, -2.0, 0.0]), tx.init(jnp.zeros(3)))[0]
        Array([ 1., -1.,  0.], dtype=float32)
    """
    return ScaleBySign()


class ScaleByLionState(NamedTuple):
    count: jax.Array
    mu: Any
    hyperparams: dict[str, jax.Array]


def _sign_momentum(updates: Any, mu_tree: Any, scalars: Scalars, names: tuple[str, str]) -> tuple:
    """``sign(b1 m + (1-b1) g)`` and the new ``m = b2 m + (1-b2) g``, per leaf (Lion's core).

    ``names`` are the Scalars keys of the interpolation and the momentum decay
    rates; Signum passes the same one twice.
    """
    interp, decay = names

    def step(g, mu):  # an 8-bit mu is decoded, used in float32, re-encoded
        gc = as_compute(g)
        s = scalars.for_leaf(g)
        m = unpack(mu)
        direction = jnp.sign(ema(gc, m, s[interp], s[f"one_minus_{interp}"]))
        new_mu = ema(gc, m, s[decay], s[f"one_minus_{decay}"])
        return direction.astype(g.dtype), pack_like(new_mu, mu)

    return map_unzip(step, 2, updates, mu_tree)


@dataclasses.dataclass(frozen=True)
class ScaleByLion(WithHyperparams, GradientTransformation):
    b1: HyperParam
    b2: HyperParam
    mu_dtype: Any = None
    hyperparam_names = ("b1", "b2")

    def init(self, params):
        reject_complex(params, "scale_by_lion", "a complex number has no sign")
        mu = buffer_zeros(params, self.mu_dtype, zeros_like)
        return ScaleByLionState(zero_count(), mu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, leaf_view(state.mu), "updates", "state.mu")
        h = state.hyperparams
        scalars = Scalars(**decay_scalars(b1=h["b1"], b2=h["b2"]))
        out, mu = _sign_momentum(updates, state.mu, scalars, ("b1", "b2"))
        count = safe_increment(state.count)
        return out, ScaleByLionState(count, mu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_lion(
    b1: HyperParam = 0.9, b2: HyperParam = 0.99, *, mu_dtype: Any = None
) -> GradientTransformation:
    r"""Lion's rescaling: the sign of an interpolation of momentum and gradient.

    .. math::
        u_t = \operatorname{sign}\left(\beta_1 m_{t-1} + (1-\beta_1) g_t\right), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    The momentum used for the direction (:math:`\beta_1`) is not the one
    stored (:math:`\beta_2`). Equals ``optax.scale_by_lion`` (its default
    ``mode="hard"``).

    Args:
        b1: interpolation weight of the momentum in the update direction, in [0, 1).
        b2: decay rate of the stored momentum, in [0, 1).
        mu_dtype: {mu_dtype} ``"int8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised; see docs/memory.md.

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023
        (Algorithm 2).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_lion()
        >>> tx.update(jnp.array([0.5, -2.0, 0.0]), tx.init(jnp.zeros(3)))[0]
        Array([ 1., -1.,  0.], dtype=float32)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_state_dtype("mu_dtype", mu_dtype, signed=True)
    return ScaleByLion(b1, b2, mu_dtype)


@dataclasses.dataclass(frozen=True)
class ScaleBySignum(WithHyperparams, GradientTransformation):
    beta: HyperParam
    mu_dtype: Any = None
    hyperparam_names = ("beta",)

    def init(self, params):
        reject_complex(params, "scale_by_signum", "a complex number has no sign")
        mu = buffer_zeros(params, self.mu_dtype, zeros_like)
        return ScaleByLionState(zero_count(), mu, self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, leaf_view(state.mu), "updates", "state.mu")
        h = state.hyperparams
        scalars = Scalars(**decay_scalars(beta=h["beta"]))
        out, mu = _sign_momentum(updates, state.mu, scalars, ("beta", "beta"))
        count = safe_increment(state.count)
        return out, ScaleByLionState(count, mu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_signum(beta: HyperParam = 0.9, *, mu_dtype: Any = None) -> GradientTransformation:
    r"""Signum's rescaling: the sign of an exponential moving average of the gradients.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad u_t = \operatorname{sign}(m_t)

    The average starts at zero and is not bias-corrected (a positive factor
    does not change a sign). This is :func:`scale_by_lion` with
    :math:`\beta_1 = \beta_2 = \beta`; it equals optax's
    ``chain(ema(beta, debias=False), scale_by_sign())``.

    Args:
        beta: decay rate of the moving average, in [0, 1).
        mu_dtype: {mu_dtype} ``"int8"`` (or a :class:`QuantizedDtype`) stores it
            8-bit block-wise quantised; see docs/memory.md.

    References:
        Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed
        Optimisation for Non-Convex Problems", ICML 2018 (Algorithm 3).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_signum()
        >>> tx.update(jnp.array([0.5, -2.0, 0.0]), tx.init(jnp.zeros(3)))[0]
        Array([ 1., -1.,  0.], dtype=float32)
    """
    check_beta("beta", beta)
    check_state_dtype("mu_dtype", mu_dtype, signed=True)
    return ScaleBySignum(beta, mu_dtype)
