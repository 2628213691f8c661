"""Parameter groups: a different transformation per label, masking and freezing.

Representation: a transformation that applies to some leaves only is handed
the tree with every other leaf replaced by ``None``. jax treats ``None`` as an
empty subtree and every gradtx transformation keeps ``None`` leaves, so the
inner transformation allocates no state for leaves it does not own and costs
nothing for them. The results are merged back leaf by leaf.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import EmptyState, GradientTransformation, _check_transformation, call_update
from gradtx._core.frozen import FrozenTree, thaw
from gradtx._core.frozen import freeze as freeze_tree
from gradtx._core.validation import check_same_structure

Labels = Any  # a pytree of labels (the parameters' structure or a prefix of it), or a function of params
Mask = Any  # a pytree of bools (the parameters' structure or a prefix of it), or a function of params


class _Split(NamedTuple):
    """A tree cut along a spec (labels or mask): ``treedef`` is the spec's structure, ``values``
    the spec's leaves, and ``flatten(tree)`` the matching pieces of a tree (leaves, or whole
    subtrees where the spec is a prefix; ``None`` where a wrapper outside removed a leaf)."""

    treedef: Any
    values: list

    def flatten(self, tree: Any) -> list | None:
        return None if tree is None else self.treedef.flatten_up_to(tree)

    def keep(self, pieces: list | None, selected: list[bool]) -> Any:
        """The tree with every leaf of the pieces not ``selected`` replaced by ``None``.

        Containers stay, so a spec written for the full tree still fits it (wrappers nest).
        """
        if pieces is None:
            return None
        kept = self.treedef.unflatten(
            [x if s else jax.tree.map(lambda _: None, x) for x, s in zip(pieces, selected, strict=True)]
        )
        # A bare-array tree whose leaf is left out: an empty tree, not None, which transformations
        # read as "no params passed" and which the merge cannot flatten.
        return () if kept is None else kept


def _split(spec: Callable | FrozenTree | bool, tree: Any, what: str) -> _Split:
    resolved = spec if isinstance(spec, bool) else spec(tree) if callable(spec) else thaw(spec)
    treedef = jax.tree.structure(resolved)
    try:
        treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        check_same_structure(tree, resolved, "params", what, shapes=False)  # the readable message
        raise ValueError(f"{what} must have the parameters' structure or a prefix of it") from e
    return _Split(treedef, jax.tree.leaves(resolved))


def _check_mask_leaves(flags: list, where: str) -> None:
    for flag in flags:
        if not isinstance(flag, bool):
            raise TypeError(f"{where}: mask leaves must be Python bools (the mask is static), got {flag!r}")


# ----------------------------------------------------------------------------- partition


class PartitionState(NamedTuple):
    """One inner state per label, each holding state for that label's leaves only."""

    inner_states: dict[Hashable, Any]


@dataclasses.dataclass(frozen=True)
class Partition(GradientTransformation):
    """Applies a transformation per label (see :func:`partition`)."""

    transforms: tuple[tuple[Hashable, Any], ...]
    labels: Callable | FrozenTree

    def _groups(self, tree: Any) -> tuple[_Split, dict[Hashable, list[bool]]]:
        split = _split(self.labels, tree, "labels")
        known = dict(self.transforms)
        missing = sorted({repr(lab) for lab in split.values if lab not in known})
        if missing:
            raise ValueError(
                f"partition: labels {', '.join(missing)} have no transformation; "
                f"transformations are given for {sorted(repr(k) for k in known)}"
            )
        return split, {name: [lab == name for lab in split.values] for name, _ in self.transforms}

    def init(self, params):
        split, groups = self._groups(params)
        pieces = split.flatten(params)
        present = [bool(jax.tree.leaves(x)) for x in pieces]
        unused = [repr(n) for n, sel in groups.items() if not any(map(bool.__and__, sel, present))]
        if unused:
            warnings.warn(
                f"partition: no parameter is labelled {', '.join(unused)}; "
                "that transformation gets an empty tree and does nothing",
                UserWarning,
                stacklevel=2,
            )
        return PartitionState(
            {name: tx.init(split.keep(pieces, groups[name])) for name, tx in self.transforms}
        )

    def update(self, updates, state, params=None, **extra_args):
        if params is not None:
            check_same_structure(updates, params, "updates", "params", shapes=False)
        split, groups = self._groups(updates if params is None else params)
        if set(state.inner_states) != set(groups):
            raise ValueError(
                f"partition: the state has groups {sorted(map(repr, state.inner_states))} but the "
                f"transformations are for {sorted(map(repr, groups))}"
            )
        u_pieces, p_pieces = split.flatten(updates), split.flatten(params)
        merged = list(u_pieces)
        new_states = {}
        for name, tx in self.transforms:
            selected = groups[name]
            out, new_states[name] = call_update(
                tx,
                split.keep(u_pieces, selected),
                state.inner_states[name],
                split.keep(p_pieces, selected),
                extra_args,
            )
            for i, (s, piece) in enumerate(zip(selected, split.flatten(out), strict=True)):
                if s:
                    merged[i] = piece
        return split.treedef.unflatten(merged), PartitionState(new_states)


def partition(transforms: Mapping[Hashable, Any], labels: Labels) -> GradientTransformation:
    """Parameter groups: applies ``transforms[label]`` to the leaves labelled ``label``.

    Each transformation sees only its own leaves: it is given the updates
    (and parameters) with every other leaf replaced by ``None``, so it keeps
    no state and does no work for them, and its hyperparameters are
    independent of the other groups'. The results are merged back into one
    tree of updates.

    This is optax's ``multi_transform`` / ``partition`` and torch's parameter
    groups. With two groups holding, say, a ``learning_rate`` each, read or
    set one through the full path listed by :func:`gradtx.get_hyperparams`
    (``".inner_states['head'][1].hyperparams['learning_rate']"``).

    Args:
        transforms: a mapping ``{label: transformation}``; labels are any
            hashable values (usually strings).
        labels: a pytree whose leaves are labels, with the parameters'
            structure or a prefix of it (``{"encoder": "frozen", "decoder":
            "train"}`` labels two whole subtrees); or a function ``params ->
            such a tree``, called on the parameters in ``init`` and on the
            parameters (the updates when no parameters are passed) in
            ``update``. Labels are static: they decide the state's structure.

    Raises:
        ValueError: at ``init`` / ``update``, naming the labels, if some leaf
            has a label with no transformation (as optax does).

    A transformation whose label no leaf carries is allowed: it gets an empty
    tree and does nothing. Since that is usually a typo, ``init`` warns
    (``UserWarning`` naming the label); optax accepts it silently.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.partition(
        ...     {"body": gradtx.sgd(0.1), "head": gradtx.sgd(1.0)},
        ...     {"w": "body", "b": "head"},
        ... )
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
        >>> updates, state = tx.update(params, tx.init(params), params)
        >>> updates["w"], updates["b"]
        (Array([-0.1, -0.1], dtype=float32), Array([-1., -1.], dtype=float32))
    """
    if not isinstance(transforms, Mapping):
        raise TypeError(f"partition: transforms must be a dict {{label: transformation}}, got {transforms!r}")
    if not transforms:
        raise ValueError("partition: transforms must not be empty")
    for name, tx in transforms.items():
        _check_transformation(tx, f"partition: transforms[{name!r}]")
    items = tuple(sorted(transforms.items(), key=lambda kv: repr(kv[0])))
    return Partition(items, labels if callable(labels) else freeze_tree(labels))


# ----------------------------------------------------------------------------- masked


class MaskedState(NamedTuple):
    """The inner transformation's state, holding state for the masked-in leaves only."""

    inner_state: Any


@dataclasses.dataclass(frozen=True)
class Masked(GradientTransformation):
    """Applies ``tx`` to the leaves where ``mask`` is True (see :func:`masked`)."""

    tx: Any
    mask: Callable | FrozenTree | bool

    def _split(self, tree: Any) -> _Split:
        split = _split(self.mask, tree, "mask")
        _check_mask_leaves(split.values, "masked")
        return split

    def init(self, params):
        split = self._split(params)
        return MaskedState(self.tx.init(split.keep(split.flatten(params), split.values)))

    def update(self, updates, state, params=None, **extra_args):
        split = self._split(updates if params is None else params)
        u_pieces, p_pieces = split.flatten(updates), split.flatten(params)
        out, inner = call_update(
            self.tx,
            split.keep(u_pieces, split.values),
            state.inner_state,
            split.keep(p_pieces, split.values),
            extra_args,
        )
        o_pieces = split.flatten(out)
        merged = [o if m else u for u, o, m in zip(u_pieces, o_pieces, split.values, strict=True)]
        return split.treedef.unflatten(merged), MaskedState(inner)


def _freeze_mask(mask: Any, where: str) -> Callable | FrozenTree | bool:
    if isinstance(mask, bool) or callable(mask):
        return mask
    frozen = freeze_tree(mask)
    _check_mask_leaves(list(frozen.leaves), where)
    return frozen


def masked(tx: Any, mask: Mask) -> GradientTransformation:
    """Applies ``tx`` to the leaves where ``mask`` is True; passes the others through unchanged.

    ``tx`` is given the tree with the masked-out leaves replaced by ``None``,
    so it keeps no state for them (optax's ``masked`` keeps a placeholder
    node instead). Use it, for instance, to clip or decay only some leaves.

    Args:
        tx: the transformation to apply (gradtx or optax).
        mask: a pytree of Python bools with the parameters' structure or a
            prefix of it, or a function ``params -> such a tree``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.masked(gradtx.scale(10.0), {"w": True, "b": False})
        >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> tx.update(g, tx.init(g))[0]
        {'b': Array([1.], dtype=float32), 'w': Array([10.], dtype=float32)}
    """
    _check_transformation(tx, "masked: tx")
    return Masked(tx, _freeze_mask(mask, "masked"))


# ----------------------------------------------------------------------------- freeze


@dataclasses.dataclass(frozen=True)
class Freeze(GradientTransformation):
    """Zeroes the updates of frozen leaves (see :func:`freeze`)."""

    mask: Callable | FrozenTree | bool

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        split = _split(self.mask, updates if params is None else params, "mask")
        _check_mask_leaves(split.values, "freeze")
        pieces = split.flatten(updates)
        out = [jax.tree.map(jnp.zeros_like, u) if f else u for u, f in zip(pieces, split.values, strict=True)]
        return split.treedef.unflatten(out), state


def freeze(mask: Mask = True) -> GradientTransformation:
    """Gives frozen leaves a zero update; keeps no state.

    Frozen leaves then get no optimizer state at all when ``freeze`` is the
    transformation of their group in a :func:`partition` (the other groups
    never see them). Placed *after* an optimizer in a :func:`gradtx.chain`
    it also zeroes them, but the optimizer then still keeps state for them.

    Args:
        mask: a pytree of Python bools (True = frozen) with the parameters'
            structure or a prefix of it, a function ``params -> such a
            tree``, or ``True`` (the default) to freeze every leaf it sees.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.partition(
        ...     {"train": gradtx.adam(0.1), "frozen": gradtx.freeze()},
        ...     {"embed": "frozen", "head": "train"},
        ... )
        >>> params = {"embed": jnp.ones(2), "head": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> state.inner_states["train"][0].mu    # Adam holds state for "head" only
        {'embed': None, 'head': Array([0., 0.], dtype=float32)}
        >>> tx.update(params, state, params)[0]["embed"]
        Array([0., 0.], dtype=float32)
    """
    return Freeze(_freeze_mask(mask, "freeze"))
