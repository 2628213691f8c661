"""The core contract: a gradient transformation is a pure ``init`` / ``update`` pair.

Every gradtx transformation is a frozen dataclass whose fields are its
configuration. Two transformations built from equal arguments therefore compare
and hash equal, so they can be passed as static arguments to ``jax.jit``
without retracing (optax's closures cannot).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

PyTree = Any
Params = Any
Updates = Any
OptState = Any


@runtime_checkable
class TransformationLike(Protocol):
    """Anything with optax-style ``init`` and ``update`` methods (gradtx or optax)."""

    def init(self, params: Params) -> OptState: ...

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation:
    """Base class of every gradtx transformation.

    A transformation is a pair of pure functions::

        state = tx.init(params)
        updates, state = tx.update(updates, state, params=None, **extra_args)

    ``state`` is a pytree; ``extra_args`` carries per-step values that some
    transformations need (``value`` for the loss, for instance). Subclasses are
    frozen dataclasses holding the configuration, so equal configurations are
    equal, hashable objects.

    A transformation also unpacks like optax's ``(init, update)`` pair, which
    is what lets it be placed inside ``optax.chain``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.sgd(learning_rate=0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> gradtx.apply_updates(params, updates)["w"]
        Array([0.9, 0.9], dtype=float32)
    """

    def init(self, params: Params) -> OptState:
        raise NotImplementedError

    def update(
        self,
        updates: Updates,
        state: OptState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, OptState]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter((self.init, self.update))


class EmptyState(NamedTuple):
    """State of a transformation that keeps nothing.

    Example:
        >>> import gradtx
        >>> gradtx.identity().init(None)
        EmptyState()
    """


def _accepts_extra_args(tx: Any) -> bool:
    if isinstance(tx, GradientTransformation):
        return True
    try:
        parameters = inspect.signature(tx.update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def call_update(
    tx: Any, updates: Updates, state: OptState, params: Params | None, extra_args: dict
) -> tuple[Updates, OptState]:
    """Calls ``tx.update``, forwarding extra args only if ``tx`` accepts them."""
    if extra_args and _accepts_extra_args(tx):
        return tx.update(updates, state, params, **extra_args)
    return tx.update(updates, state, params)


def _check_transformation(tx: Any, where: str) -> None:
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(
            f"{where} must be a gradient transformation with `init` and `update` "
            f"methods, got {type(tx).__name__}: {tx!r}"
        )


@dataclasses.dataclass(frozen=True)
class Chain(GradientTransformation):
    """Applies transformations one after the other (see :func:`chain`)."""

    transforms: tuple[Any, ...]

    def init(self, params: Params) -> tuple[OptState, ...]:
        return tuple(tx.init(params) for tx in self.transforms)

    def update(self, updates, state, params=None, **extra_args):
        if len(state) != len(self.transforms):
            raise ValueError(
                f"chain of {len(self.transforms)} transformations got a state with "
                f"{len(state)} entries; was the state made by a different optimizer?"
            )
        new_state = []
        for tx, s in zip(self.transforms, state):
            updates, s = call_update(tx, updates, s, params, extra_args)
            new_state.append(s)
        return updates, tuple(new_state)


@dataclasses.dataclass(frozen=True)
class NamedChain(GradientTransformation):
    """Applies named transformations in order (see :func:`named_chain`)."""

    names: tuple[str, ...]
    transforms: tuple[Any, ...]

    def init(self, params: Params) -> dict[str, OptState]:
        return {name: tx.init(params) for name, tx in zip(self.names, self.transforms)}

    def update(self, updates, state, params=None, **extra_args):
        missing = set(self.names) - set(state)
        if missing:
            raise ValueError(f"named_chain state lacks entries {sorted(missing)}")
        new_state = {}
        for name, tx in zip(self.names, self.transforms):
            updates, new_state[name] = call_update(tx, updates, state[name], params, extra_args)
        return updates, new_state


def chain(*transforms: Any) -> GradientTransformation:
    """Composes transformations: the output updates of one feed the next.

    Accepts gradtx transformations and optax transformations alike. The state
    is a tuple holding each transformation's state in order.

    Args:
        *transforms: the transformations to apply, first to last.

    Returns:
        A transformation whose ``update`` applies each one in turn.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.scale(-0.5))
        >>> state = tx.init(jnp.zeros(2))
        >>> updates, _ = tx.update(jnp.array([3.0, 4.0]), state)
        >>> updates
        Array([-0.3, -0.4], dtype=float32)
    """
    for i, tx in enumerate(transforms):
        _check_transformation(tx, f"chain argument {i}")
    return Chain(tuple(transforms))


def named_chain(*named_transforms: tuple[str, Any]) -> GradientTransformation:
    """Like :func:`chain`, with a state that is a dict keyed by the given names.

    Args:
        *named_transforms: ``(name, transformation)`` pairs, applied in order.

    Returns:
        A transformation whose state is ``{name: state_of_that_transformation}``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.named_chain(("clip", gradtx.clip(1.0)), ("sgd", gradtx.sgd(0.1)))
        >>> sorted(tx.init(jnp.zeros(2)))
        ['clip', 'sgd']
    """
    names = tuple(name for name, _ in named_transforms)
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain names must be unique, got {names}")
    for name, tx in named_transforms:
        if not isinstance(name, str):
            raise TypeError(f"named_chain names must be strings, got {name!r}")
        _check_transformation(tx, f"named_chain entry {name!r}")
    return NamedChain(names, tuple(tx for _, tx in named_transforms))


@dataclasses.dataclass(frozen=True)
class Identity(GradientTransformation):
    """Passes updates through unchanged (see :func:`identity`)."""

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        return updates, state


def identity() -> GradientTransformation:
    """The transformation that leaves updates unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.identity()
        >>> tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]
        Array([1., 1.], dtype=float32)
    """
    return Identity()


@dataclasses.dataclass(frozen=True)
class Stateless(GradientTransformation):
    """Wraps ``fn(updates, params) -> updates`` (see :func:`stateless`)."""

    fn: Callable[[Updates, Params | None], Updates]

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        return self.fn(updates, params), state


def stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """Builds a transformation without state from ``fn(updates, params)``.

    Args:
        fn: a pure function returning the new updates; ``params`` may be ``None``.

    Returns:
        A transformation with an empty state.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> negate = gradtx.stateless(lambda u, p: jax.tree.map(jnp.negative, u))
        >>> negate.update(jnp.ones(2), negate.init(None))[0]
        Array([-1., -1.], dtype=float32)
    """
    if not callable(fn):
        raise TypeError(f"stateless: fn must be callable, got {fn!r}")
    return Stateless(fn)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Returns ``params + updates``, each leaf kept in its parameter's dtype.

    ``None`` leaves (absent parameters) are left as they are.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> gradtx.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
        {'w': Array([0.5, 0.5], dtype=float32)}
    """
    from gradtx._core.validation import check_same_structure

    check_same_structure(params, updates, "params", "updates")
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
