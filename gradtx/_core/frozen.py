"""Hashable snapshots of pytrees, so configurations holding them stay hashable."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class FrozenTree:
    """A pytree of hashable leaves (bools, strings, numbers), stored hashably."""

    treedef: Any
    leaves: tuple

    def __repr__(self) -> str:
        return f"FrozenTree({thaw(self)!r})"


def freeze(tree: Any) -> FrozenTree:
    leaves, treedef = jax.tree.flatten(tree)
    try:
        hash(tuple(leaves))
    except TypeError as e:
        raise TypeError(f"expected a pytree of bools/strings/numbers, got {tree!r}") from e
    return FrozenTree(treedef, tuple(leaves))


def thaw(frozen: FrozenTree) -> Any:
    return jax.tree.unflatten(frozen.treedef, list(frozen.leaves))
