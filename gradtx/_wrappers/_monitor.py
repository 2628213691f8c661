"""Monitoring: gradient norms, update/parameter ratios and vanishing/exploding flags, kept in state."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.base import GradientTransformation, _check_transformation, call_update
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import compute_dtype, real_dtype, safe_increment, zero_count
from gradtx._core.validation import check_range
from gradtx._transforms._clipping import global_norm
from gradtx._wrappers._shared import find_state, require_params


class MonitorState(NamedTuple):
    """What :func:`monitor` saw at the last step (read it with :func:`monitor_stats`).

    ``grad_norm``: global L2 norm of the incoming gradients; ``leaf_grad_norms``
    and ``update_ratios``: per-leaf trees of ``||g||`` and ``||u|| / ||θ||``;
    ``update_ratio``: the same ratio over all leaves together; ``vanishing`` /
    ``exploding``: the flags of the last step; ``vanishing_leaves``: how many
    leaves had a gradient norm below the vanishing threshold; ``vanishing_steps`` /
    ``exploding_steps``: how many steps raised each flag so far, so a logger that
    samples every N steps misses no spike. Counters saturate at the int32 maximum.
    """

    count: jax.Array
    grad_norm: jax.Array
    update_ratio: jax.Array
    leaf_grad_norms: Any
    update_ratios: Any
    vanishing: jax.Array
    exploding: jax.Array
    vanishing_leaves: jax.Array
    vanishing_steps: jax.Array
    exploding_steps: jax.Array
    inner_state: Any
    hyperparams: dict[str, jax.Array]


def _norm_dtype(leaf: Any) -> jnp.dtype:
    return jnp.dtype(real_dtype(compute_dtype(jnp.result_type(leaf))))


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den``; 0 for 0/0 (nothing moved), inf for x/0 (zero parameters that moved)."""
    return jnp.where((num == 0) & (den == 0), jnp.zeros_like(num), num / den)


@dataclasses.dataclass(frozen=True)
class Monitor(WithHyperparams, GradientTransformation):
    """Records gradient statistics around ``tx`` (see :func:`monitor`)."""

    tx: Any
    vanishing_threshold: HyperParam
    exploding_threshold: HyperParam
    hyperparam_names = ("vanishing_threshold", "exploding_threshold")

    def init(self, params):
        leaf_zeros = jax.tree.map(lambda p: jnp.zeros([], _norm_dtype(p)), params)
        dtypes = [x.dtype for x in jax.tree.leaves(leaf_zeros)]
        scalar = jnp.zeros([], jnp.result_type(*dtypes) if dtypes else jnp.float32)
        # A fresh buffer per field: aliased leaves could not be donated to a jitted step.
        return MonitorState(
            zero_count(),
            scalar,
            jnp.zeros_like(scalar),
            leaf_zeros,
            jax.tree.map(jnp.zeros_like, leaf_zeros),
            jnp.asarray(False),
            jnp.asarray(False),
            zero_count(),
            zero_count(),
            zero_count(),
            self.tx.init(params),
            self.init_hyperparams(),
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "monitor")
        out, inner = call_update(self.tx, updates, state.inner_state, params, extra_args)
        h = state.hyperparams
        grad_norm = global_norm(updates).astype(state.grad_norm.dtype)
        leaf_norms = jax.tree.map(lambda g, z: global_norm(g).astype(z.dtype), updates, state.leaf_grad_norms)
        ratios = jax.tree.map(
            lambda u, p, z: _ratio(global_norm(u), global_norm(p)).astype(z.dtype),
            out,
            params,
            state.update_ratios,
        )
        update_ratio = _ratio(global_norm(out), global_norm(params)).astype(state.update_ratio.dtype)
        vanishing = grad_norm < h["vanishing_threshold"].astype(grad_norm.dtype)
        exploding = ~(grad_norm <= h["exploding_threshold"].astype(grad_norm.dtype))  # NaN and inf explode
        small = [n < h["vanishing_threshold"].astype(n.dtype) for n in jax.tree.leaves(leaf_norms)]
        vanishing_leaves = sum((s.astype(jnp.int32) for s in small), zero_count())
        count = safe_increment(state.count)
        new_state = MonitorState(
            count=count,
            grad_norm=grad_norm,
            update_ratio=update_ratio,
            leaf_grad_norms=leaf_norms,
            update_ratios=ratios,
            vanishing=vanishing,
            exploding=exploding,
            vanishing_leaves=vanishing_leaves,
            vanishing_steps=jnp.where(
                vanishing, safe_increment(state.vanishing_steps), state.vanishing_steps
            ),
            exploding_steps=jnp.where(
                exploding, safe_increment(state.exploding_steps), state.exploding_steps
            ),
            inner_state=inner,
            hyperparams=self.next_hyperparams(h, count),
        )
        return out, new_state


def monitor(tx: Any, vanishing: HyperParam = 1e-7, exploding: HyperParam = 1e3) -> GradientTransformation:
    r"""Wraps ``tx`` and records gradient statistics in the state; updates pass through unchanged.

    At every step it stores, for the incoming gradients :math:`g` and the
    outgoing updates :math:`u` of ``tx`` at parameters :math:`\theta`:

    - ``grad_norm`` :math:`= \lVert g \rVert_2` over all leaves, and each leaf's
      :math:`\lVert g_\ell \rVert_2`;
    - ``update_ratio`` :math:`= \lVert u \rVert_2 / \lVert \theta \rVert_2`, overall
      and per leaf: the relative size of a step (around 1e-3 is the usual
      rule of thumb; much smaller means the layer barely learns);
    - ``vanishing`` :math:`= \lVert g \rVert_2 <` ``vanishing`` and
      ``exploding`` :math:`= \lVert g \rVert_2 >` ``exploding`` (a non-finite norm
      counts as exploding), the number of leaves whose own norm vanishes, and
      how many steps raised each flag so far.

    Vanishing gradients usually show in the early layers first while the
    global norm looks healthy: watch the per-leaf norms and
    ``vanishing_leaves``. Read everything outside ``jit`` with
    :func:`gradtx.monitor_stats`, a flat ``dict[str, float]`` ready for a logger.

    ``monitor`` wraps the transformation rather than sitting in a chain because
    it needs both ends of it: the gradients going in and the updates coming
    out (and ``params``, which ``update`` therefore requires). Norms are
    accumulated in at least float32, so float16 gradients do not overflow them.
    Put it inside :func:`gradtx.dynamic_loss_scale`, which hands it unscaled
    gradients.

    Args:
        tx: the transformation to watch (gradtx or optax).
        vanishing: gradient-norm threshold below which a step is flagged
            vanishing, >= 0; stored as ``vanishing_threshold``.
        exploding: gradient-norm threshold above which a step is flagged
            exploding, >= 0; stored as ``exploding_threshold``.

    Returns:
        A transformation whose updates are bit-identical to ``tx``'s.

    References:
        Bengio, Simard & Frasconi, "Learning long-term dependencies with
        gradient descent is difficult", IEEE TNN 1994; Pascanu, Mikolov &
        Bengio, "On the difficulty of training recurrent neural networks",
        ICML 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.monitor(gradtx.sgd(0.1))
        >>> params = {"w": jnp.array([3.0, 4.0]), "b": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> grads = {"w": jnp.array([0.0, 1e3]), "b": jnp.array([1e-9])}
        >>> updates, state = tx.update(grads, state, params)
        >>> stats = gradtx.monitor_stats(state)
        >>> stats["grad_norm/w"], stats["update_ratio/w"], stats["exploding"], stats["vanishing_leaves"]
        (1000.0, 20.0, 0.0, 1.0)
    """
    _check_transformation(tx, "monitor: tx")
    check_range("vanishing", vanishing, 0.0)
    check_range("exploding", exploding, 0.0)
    return Monitor(tx, vanishing, exploding)


def _path_name(path: tuple) -> str:
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def monitor_stats(state: Any) -> dict[str, float]:
    """The statistics recorded by :func:`monitor`, as a flat ``dict[str, float]`` for a logger.

    Keys: ``grad_norm``, ``update_ratio``, ``vanishing`` and ``exploding``
    (1.0 or 0.0 for the last step), ``vanishing_leaves``, ``vanishing_steps``,
    ``exploding_steps``, and per leaf ``grad_norm/<path>`` and
    ``update_ratio/<path>`` where ``<path>`` joins the dict keys, sequence
    indices and attribute names with ``/`` (``grad_norm/dense/w``). A bare
    array as the parameters has no per-leaf entries.

    Call it outside ``jit`` on an unbatched state: it transfers the values to
    the host. Inside ``jit``, read the fields of the ``MonitorState`` instead.

    Args:
        state: an optimizer state holding exactly one monitor (at any depth).

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.monitor(gradtx.adam(1e-3)))
        >>> params = {"dense": {"w": jnp.ones(2)}}
        >>> state = tx.init(params)
        >>> _, state = tx.update({"dense": {"w": jnp.array([3.0, 4.0])}}, state, params)
        >>> sorted(gradtx.monitor_stats(state))  # doctest: +NORMALIZE_WHITESPACE
        ['exploding', 'exploding_steps', 'grad_norm', 'grad_norm/dense/w', 'update_ratio',
         'update_ratio/dense/w', 'vanishing', 'vanishing_leaves', 'vanishing_steps']
    """
    s = find_state(state, MonitorState, "monitor_stats")
    s = jax.device_get(s)
    stats = {
        "grad_norm": s.grad_norm,
        "update_ratio": s.update_ratio,
        "vanishing": s.vanishing,
        "exploding": s.exploding,
        "vanishing_leaves": s.vanishing_leaves,
        "vanishing_steps": s.vanishing_steps,
        "exploding_steps": s.exploding_steps,
    }
    for prefix, tree in (("grad_norm", s.leaf_grad_norms), ("update_ratio", s.update_ratios)):
        for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if path:
                stats[f"{prefix}/{_path_name(path)}"] = value
    return {key: float(np.asarray(value)) for key, value in stats.items()}
