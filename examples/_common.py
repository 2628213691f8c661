"""Pieces shared by the examples: the digits data, a small MLP, batching and reporting.

Needs the ``examples`` extra: ``pip install -e ".[examples]"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Split(NamedTuple):
    """A classification data set split into training and validation parts."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_digits_split(seed: int, val_fraction: float = 0.2) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images, no download), split and standardised.

    The split is stratified by class; the mean and standard deviation come from
    the training part only, so nothing about the validation part leaks into it.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    return Split(
        scaler.transform(x_train).astype(np.float32),
        y_train.astype(np.int32),
        scaler.transform(x_val).astype(np.float32),
        y_val.astype(np.int32),
    )


class MLP(nn.Module):
    """A ReLU multilayer perceptron returning class logits."""

    hidden: Sequence[int]
    n_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.n_classes)(x)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of integer ``labels``."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, axis=1) == labels)


def shuffled_batches(rng: np.random.Generator, n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Index arrays of mini-batches, endlessly, reshuffled every epoch.

    The last incomplete batch of each epoch is dropped, so every batch has the
    same shape and a jitted step compiles once.
    """
    if not 0 < batch_size <= n:
        raise ValueError(f"batch size must be in [1, {n}], got {batch_size}")
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last ``window`` values at each position (fewer at the start)."""
    sums = np.cumsum(np.asarray(values, np.float64))
    out = sums.copy()
    out[window:] = sums[window:] - sums[:-window]
    return out / np.minimum(np.arange(1, len(sums) + 1), window)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with right-aligned columns, except the first two."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        aligned = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(aligned)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
