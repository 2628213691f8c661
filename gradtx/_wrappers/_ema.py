"""Averaged parameters for evaluation: an exponential moving average (EMA) and SWA's equal-weight average."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import compute_dtype, safe_increment, zero_count
from gradtx._core.validation import check_beta, check_same_structure
from gradtx._wrappers._shared import applied, check_count, copy_tree, find_state, require_params


def _average_dtype(dtype: Any) -> Any:
    """Where the average is kept when no dtype is given: at least float32.

    With bfloat16 parameters and decay 0.999, ``(1 - decay) * (p - ema)`` is
    below half an ulp of ``ema`` and a bfloat16 average would never move.
    """
    return (lambda d: jnp.dtype(dtype)) if dtype is not None else compute_dtype


class EmaState(NamedTuple):
    """``ema``: the moving average of the parameters after each update, not yet
    debiased; ``decay_product``: the weight the zero start still carries in it,
    the product of the decays used so far (always 0 with ``debias=False``,
    which starts from the parameters); ``count``: steps, saturating."""

    count: jax.Array
    decay_product: jax.Array
    ema: Any
    inner_state: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class EmaParams(WithHyperparams, GradientTransformation):
    """Keeps an EMA of the parameters (see :func:`ema_params`)."""

    tx: Any
    ema_decay: HyperParam
    debias: bool = True
    dtype: Any = None
    hyperparam_names = ("ema_decay",)

    def init(self, params):
        dtype_fn = _average_dtype(self.dtype)
        if self.debias:
            ema = jax.tree.map(lambda p: jnp.zeros_like(p, dtype_fn(jnp.result_type(p))), params)
        else:
            ema = copy_tree(params, dtype_fn)
        hyperparams = self.init_hyperparams()
        # The weight of the zero start: 1, or 0 when starting from the parameters (never debiased).
        zero_weight = jnp.asarray(1.0 if self.debias else 0.0, hyperparams["ema_decay"].dtype)
        return EmaState(zero_count(), zero_weight, ema, self.tx.init(params), hyperparams)

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "ema_params")
        check_same_structure(params, state.ema, "params", "state.ema")
        out, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
        decay = state.hyperparams["ema_decay"]

        def average(e, p):
            d = decay.astype(e.dtype)
            return (d * e + (1 - d) * p.astype(e.dtype)).astype(e.dtype)

        ema = jax.tree.map(average, state.ema, applied(params, out))
        count = safe_increment(state.count)
        new_state = EmaState(
            count=count,
            decay_product=state.decay_product * decay.astype(state.decay_product.dtype),
            ema=ema,
            inner_state=inner,
            hyperparams=self.next_hyperparams(state.hyperparams, count),
        )
        return out, new_state


def ema_params(
    tx: Any, decay: HyperParam = 0.999, *, debias: bool = True, dtype: Any = None
) -> GradientTransformation:
    r"""Wraps ``tx`` and keeps an exponential moving average of the updated parameters.

    With :math:`\theta_t` the parameters after update :math:`t` (``params +
    updates``, rounded as ``apply_updates`` rounds it) and :math:`\beta_t` the
    decay used at that step:

    .. math::
        e_t = \beta_t\, e_{t-1} + (1 - \beta_t)\, \theta_t, \qquad
        \bar\theta_t = \frac{e_t}{1 - \prod_{s \le t} \beta_s} \;\text{(debias)}
        \quad\text{or}\quad \bar\theta_t = e_t

    With ``debias=True`` the average starts from zero and is divided by the
    weight the steps carry, as Adam's moments (so :math:`\bar\theta_1 =
    \theta_1`, and a changing or scheduled decay is debiased exactly); with
    ``debias=False`` it starts from the initial parameters, as the EMA of
    Polyak averaging implementations in timm and flax. Read
    :math:`\bar\theta` with :func:`gradtx.averaged_params` to evaluate; the
    updates of ``tx`` pass through unchanged, so training is unaffected.

    Args:
        tx: the optimizer whose parameters are averaged (gradtx or optax).
        decay: :math:`\beta` in [0, 1) (a number or a schedule); stored as
            ``ema_decay``.
        debias: start from zero and debias (see above).
        dtype: dtype of the stored average; ``None`` keeps it in at least
            float32 (a bfloat16 average with decay 0.999 would never move).

    References:
        Polyak & Juditsky, "Acceleration of stochastic approximation by
        averaging", SIAM J. Control Optim. 1992; Kingma & Ba, "Adam", ICLR
        2015 (the bias correction).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.ema_params(gradtx.sgd(1.0), decay=0.5)
        >>> params = jnp.zeros(1)
        >>> state = tx.init(params)
        >>> for _ in range(2):  # parameters -1 then -2
        ...     updates, state = tx.update(jnp.ones(1), state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> gradtx.averaged_params(state)  # (0.5 * -1 + 1 * -2) / 1.5
        Array([-1.6666666], dtype=float32)
    """
    _check_transformation(tx, "ema_params: tx")
    check_beta("decay", decay)
    return EmaParams(tx, decay, bool(debias), None if dtype is None else jnp.dtype(dtype))


class SwaState(NamedTuple):
    """``average``: the running mean of the parameters averaged so far (the
    initial parameters until the first); ``num_averaged``: how many;
    ``steps_since_average``: steps since the last one; counters saturate."""

    count: jax.Array
    steps_since_average: jax.Array
    num_averaged: jax.Array
    average: Any
    inner_state: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Swa(WithHyperparams, GradientTransformation):
    """Keeps SWA's equal-weight average of the parameters (see :func:`swa`)."""

    tx: Any
    swa_start: HyperParam
    swa_every: HyperParam
    dtype: Any = None
    hyperparam_names = ("swa_start", "swa_every")

    def init(self, params):
        average = copy_tree(params, _average_dtype(self.dtype))
        return SwaState(
            zero_count(), zero_count(), zero_count(), average, self.tx.init(params), self.init_hyperparams()
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "swa")
        check_same_structure(params, state.average, "params", "state.average")
        out, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
        h = state.hyperparams
        count = safe_increment(state.count)
        since = safe_increment(state.steps_since_average)
        n = state.num_averaged
        due = (count.astype(h["swa_start"].dtype) >= h["swa_start"]) & (
            (n == 0) | (since.astype(h["swa_every"].dtype) >= h["swa_every"])
        )

        def average(a, p):
            p = p.astype(a.dtype)
            mean = a + (p - a) / (n.astype(a.dtype) + 1)  # n + 1 in int32 would wrap at the maximum
            return jnp.where(due, jnp.where(n == 0, p, mean), a)

        new_state = SwaState(
            count=count,
            steps_since_average=jnp.where(due, 0, since).astype(since.dtype),
            num_averaged=jnp.where(due, safe_increment(n), n),
            average=jax.tree.map(average, state.average, applied(params, out)),
            inner_state=inner,
            hyperparams=self.next_hyperparams(h, count),
        )
        return out, new_state


def swa(tx: Any, start: int, every: int = 1, *, dtype: Any = None) -> GradientTransformation:
    r"""Wraps ``tx`` and keeps Stochastic Weight Averaging's equal-weight average of the parameters.

    Counting updates from :math:`t = 1`, the parameters after update :math:`t`
    join the average when :math:`t \ge` ``start`` and ``every`` steps have
    passed since the last one joined (so at ``start``, ``start + every``, ...):

    .. math::
        \bar\theta \leftarrow \bar\theta + \frac{\theta_t - \bar\theta}{n + 1}, \qquad n \leftarrow n + 1

    the running mean of ``torch.optim.swa_utils.AveragedModel``. Read
    :math:`\bar\theta` with :func:`gradtx.averaged_params` (the initial
    parameters until the first average). SWA pairs with a constant or cyclic
    learning rate from ``start`` on (a schedule of ``tx``); the updates of
    ``tx`` pass through unchanged. Batch-norm statistics of the averaged
    model must be recomputed by the user, as torch's ``update_bn`` does.

    Args:
        tx: the optimizer whose parameters are averaged (gradtx or optax).
        start: the first update averaged, an integer >= 1.
        every: updates between two averaged ones, an integer >= 1 (an epoch's
            worth of steps in the paper).
        dtype: dtype of the stored average; ``None`` keeps it in at least float32.

    Both numbers live in the state as ``swa_start`` and ``swa_every``.

    References:
        Izmailov, Podoprikhin, Garipov, Vetrov & Wilson, "Averaging Weights
        Leads to Wider Optima and Better Generalization", UAI 2018.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.swa(gradtx.sgd(1.0), start=2, every=2)
        >>> params = jnp.zeros(1)
        >>> state = tx.init(params)
        >>> for _ in range(5):  # parameters -1 ... -5; -2 and -4 are averaged
        ...     updates, state = tx.update(jnp.ones(1), state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> gradtx.averaged_params(state)
        Array([-3.], dtype=float32)
    """
    _check_transformation(tx, "swa: tx")
    check_count("start", start, 1)
    check_count("every", every, 1)
    return Swa(tx, start, every, None if dtype is None else jnp.dtype(dtype))


def averaged_params(state: Any) -> Any:
    """The averaged parameters kept by the :func:`ema_params` or :func:`swa` inside ``state``.

    For an EMA with ``debias=True`` this is the debiased average (zeros before
    the first update, when nothing has been averaged). The average has the
    dtype it is stored in (at least float32 by default); cast it with
    ``gradtx.tree.cast`` if the model wants the parameters' dtype. Works inside
    ``jit`` and ``vmap``.

    Args:
        state: an optimizer state holding exactly one ``ema_params`` or ``swa``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.ema_params(gradtx.adam(1e-3), decay=0.99, debias=False)
        >>> gradtx.averaged_params(tx.init({"w": jnp.ones(2)}))
        {'w': Array([1., 1.], dtype=float32)}
    """
    s = find_state(state, (EmaState, SwaState), "averaged_params")
    if isinstance(s, SwaState):
        return s.average
    weight = 1 - s.decay_product
    debiased = weight != 0  # 1 - prod(decay) is 0 only before the first update

    def debias(e):
        w = weight.astype(e.dtype)
        return jnp.where(debiased, e / jnp.where(debiased, w, jnp.ones_like(w)), e)

    return jax.tree.map(debias, s.ema)
