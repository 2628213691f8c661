"""Lookahead: k fast steps forward, one slow step back (Zhang et al., 2019)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import Scalars, as_compute, map_unzip, safe_increment, zero_count
from gradtx._core.validation import check_range, check_same_structure
from gradtx._wrappers._shared import check_count, copy_tree, find_state, require_params


class LookaheadState(NamedTuple):
    """``slow``: the slow weights :math:`\\phi`; ``steps_since_sync``: fast steps
    taken since the last synchronisation, in ``[0, sync_period)``; ``count``: all
    steps (saturating at the int32 maximum)."""

    count: jax.Array
    steps_since_sync: jax.Array
    slow: Any
    inner_state: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Lookahead(WithHyperparams, GradientTransformation):
    """Lookahead around a fast optimizer (see :func:`lookahead`)."""

    tx: Any
    sync_period: HyperParam
    slow_step_size: HyperParam
    reset_state: bool = False
    hyperparam_names = ("sync_period", "slow_step_size")

    def init(self, params):
        return LookaheadState(
            zero_count(), zero_count(), copy_tree(params), self.tx.init(params), self.init_hyperparams()
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "lookahead")
        check_same_structure(params, state.slow, "params", "state.slow")
        fast_updates, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
        h = state.hyperparams
        since = safe_increment(state.steps_since_sync)
        sync = since.astype(h["sync_period"].dtype) >= h["sync_period"]
        scalars = Scalars(alpha=h["slow_step_size"])

        def step(u, p, slow):
            alpha = scalars.for_leaf(u)["alpha"]
            pc = as_compute(p)
            last_fast = pc + as_compute(u)
            new_slow = slow.astype(pc.dtype) + alpha * (last_fast - slow.astype(pc.dtype))
            out = jnp.where(sync, new_slow - pc, as_compute(u)).astype(u.dtype)
            return out, jnp.where(sync, new_slow.astype(slow.dtype), slow)

        out, slow = map_unzip(step, 2, fast_updates, params, state.slow)
        if self.reset_state:
            fresh = self.tx.init(params)
            inner = jax.tree.map(lambda a, b: jax.lax.select(sync, a, b), fresh, inner)
        count = safe_increment(state.count)
        new_state = LookaheadState(
            count=count,
            steps_since_sync=jnp.where(sync, 0, since).astype(since.dtype),
            slow=slow,
            inner_state=inner,
            hyperparams=self.next_hyperparams(h, count),
        )
        return out, new_state


def lookahead(
    fast_tx: Any, sync_period: int = 5, slow_step_size: HyperParam = 0.5, *, reset_state: bool = False
) -> GradientTransformation:
    r"""Lookahead: keeps slow weights and pulls the fast ones back to them every ``sync_period`` steps.

    The paper's Algorithm 1, with fast weights :math:`\theta` (the parameters
    you train and pass to ``update``), slow weights :math:`\phi` (kept in the
    state) and :math:`k` = ``sync_period``, :math:`\alpha` = ``slow_step_size``:

    .. math::
        \theta \leftarrow \theta + A(g) \quad \text{for } k \text{ steps, then} \quad
        \phi \leftarrow \phi + \alpha(\theta - \phi), \quad \theta \leftarrow \phi

    where :math:`A` is ``fast_tx``. A transformation returns updates rather
    than parameters, so on a synchronising step the update is the one that
    moves the parameters to the new slow weights, :math:`\phi_\text{new} - \theta`:
    this is why ``update`` needs ``params``, and why the updates must reach
    ``apply_updates`` unmodified (put ``lookahead`` outermost, or inside
    wrappers that only watch the updates such as :func:`gradtx.monitor`).
    After the update the parameters equal the slow weights up to one rounding
    of ``params + updates``; the exact slow weights are
    :func:`gradtx.slow_params`.

    The fast optimizer's state carries over a synchronisation, as in the
    paper's experiments and ``optax.lookahead``; ``reset_state=True``
    re-initialises it instead. Unlike ``optax.lookahead``, which trains a
    ``LookaheadParams(fast, slow)`` pair, the parameters here are plain fast
    weights; both libraries give the same fast and slow weights.

    Args:
        fast_tx: the inner ("fast") optimizer :math:`A`, gradtx or optax.
        sync_period: :math:`k`, fast steps per slow step, an integer >= 1.
        slow_step_size: :math:`\alpha` in [0, 1] (a number or a schedule).
        reset_state: re-initialise ``fast_tx``'s state at each synchronisation.

    Both numbers live in the state (``sync_period``, ``slow_step_size``):
    ``gradtx.set_hyperparam`` changes them without recompiling.

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1
        step back", NeurIPS 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.lookahead(gradtx.sgd(1.0), sync_period=2, slow_step_size=0.5)
        >>> params = jnp.zeros(1)
        >>> state = tx.init(params)
        >>> for _ in range(2):  # two fast steps of -1, then halfway back
        ...     updates, state = tx.update(jnp.ones(1), state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> params, gradtx.slow_params(state)
        (Array([-1.], dtype=float32), Array([-1.], dtype=float32))
    """
    _check_transformation(fast_tx, "lookahead: fast_tx")
    check_count("sync_period", sync_period, 1)
    check_range("slow_step_size", slow_step_size, 0.0, 1.0)
    return Lookahead(fast_tx, sync_period, slow_step_size, bool(reset_state))


def slow_params(state: Any) -> Any:
    """The slow weights :math:`\\phi` of the :func:`lookahead` inside ``state``.

    Right after a synchronising step they equal the parameters; between
    synchronisations they are the weights to evaluate (the paper reports its
    test results with them). Works inside ``jit``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.lookahead(gradtx.adam(1e-3), sync_period=5)
        >>> gradtx.slow_params(tx.init({"w": jnp.ones(2)}))
        {'w': Array([1., 1.], dtype=float32)}
    """
    return find_state(state, LookaheadState, "slow_params").slow
