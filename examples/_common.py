"""Pieces shared by the examples: the digits data, a small MLP, batching and reporting.

Needs the ``examples`` extra: ``pip install -e ".[examples]"``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
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


# ---- Shared by flax_linen_trainstate.py and flax_nnx.py: a run resumed from a checkpoint. ----


def batch_plan(seed: int, n: int, batch_size: int, steps: int) -> np.ndarray:
    """The index arrays of the mini-batches of steps 1..``steps`` (row ``t - 1`` is step ``t``'s batch).

    Fixing the order up front makes the data of a run resumed after step ``t`` a matter of the step
    number alone; a streaming input pipeline would checkpoint its own position instead.
    """
    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)
    return np.stack([next(batches) for _ in range(steps)])


def middle_checkpoint(steps: int, every: int) -> int:
    """The checkpointed step (a multiple of ``every`` below ``steps``) nearest the middle of the run."""
    if not 0 < every < steps:
        raise ValueError(f"checkpoint interval must be in [1, {steps - 1}], got {every}")
    return min(range(every, steps, every), key=lambda step: abs(step - steps / 2))


def tree_max_abs_diff(a, b) -> float:
    """The largest absolute difference between two pytrees of arrays of the same structure."""
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0)), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def mask_paths(mask) -> tuple[list[str], list[str]]:
    """The paths of the leaves of a tree of booleans that are True, and of those that are False."""
    leaves = [(jax.tree_util.keystr(path), on) for path, on in jax.tree_util.tree_leaves_with_path(mask)]
    return [path for path, on in leaves if on], [path for path, on in leaves if not on]


class CompileCounter:
    """Counts the XLA compilations of the jitted functions named ``name``, from JAX's monitoring events.

    A Python counter inside a jitted function counts its traces. A traced function can still compile
    again, for arguments placed differently (committed to a device or not), which this catches.
    """

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self, name: str) -> None:
        self.fun_name = f"jit({name})"
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration_s: float, **kwargs: object) -> None:
        if event == self.EVENT and kwargs.get("fun_name") == self.fun_name:
            self.count += 1


class TrainingCurves(NamedTuple):
    """What a training run logged."""

    steps: np.ndarray  # the steps taken
    batch_losses: np.ndarray  # the mini-batch loss of each step
    learning_rates: np.ndarray  # the rate each step used, read from the optimizer state
    eval_steps: np.ndarray  # where the model was evaluated, starting point included
    train_losses: np.ndarray  # on the full training set
    val_accuracies: np.ndarray

    def to_json(self) -> dict[str, list]:
        return {name: values.tolist() for name, values in self._asdict().items()}


class ResumeSummary(NamedTuple):
    """The outcome of a run, and of its restart from a checkpoint, as the Flax examples report it."""

    final_train_loss: float  # on the full training set
    final_val_accuracy: float
    final_learning_rate: float  # read from the optimizer state after the last step
    peak_learning_rate: float
    decayed: list[str]  # parameter paths with weight decay
    not_decayed: list[str]
    checkpoint_dir: str
    checkpoints: list[int]  # the steps saved
    resume_step: int
    steps: int
    params_max_abs_diff: float  # uninterrupted vs restarted run, after the last step
    opt_state_max_abs_diff: float
    batch_loss_max_abs_diff: float
    traces: int  # of the train step, over both runs
    compiles: int
    seconds: float

    @property
    def bit_for_bit(self) -> bool:
        return self.params_max_abs_diff == self.opt_state_max_abs_diff == self.batch_loss_max_abs_diff == 0.0

    def format(self) -> str:
        match = "bit for bit" if self.bit_for_bit else "NOT bit for bit"
        rows = [
            ("final train loss", f"{self.final_train_loss:.4f} (full training set)"),
            ("validation accuracy", f"{self.final_val_accuracy:.1%}"),
            ("learning rate at the end", f"{self.final_learning_rate:.3g}, peak {self.peak_learning_rate:g}"),
            ("weight decay on", ", ".join(self.decayed)),
            ("no weight decay on", ", ".join(self.not_decayed)),
            ("checkpoints", f"{self.checkpoint_dir} (steps {', '.join(map(str, self.checkpoints))})"),
            (
                "resume check",
                f"restarted from step {self.resume_step}, trained to {self.steps}; max |diff| from the "
                f"uninterrupted run: params {self.params_max_abs_diff:.3g}, optimizer state "
                f"{self.opt_state_max_abs_diff:.3g}, mini-batch losses "
                f"{self.batch_loss_max_abs_diff:.3g}: {match}",
            ),
            (
                "compilation",
                f"train step traced {self.traces}x and compiled {self.compiles}x for all "
                f"{2 * self.steps - self.resume_step} steps of both runs, with a new learning rate at every "
                "step: the schedule lives in the optimizer state",
            ),
            ("time", f"{self.seconds:.1f} s (training, evaluation and checkpoints)"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def plot_resumed_run(
    full: TrainingCurves,
    resumed: TrainingCurves,
    checkpoints: Sequence[int],
    path: Path,
    title: str,
) -> None:
    """Loss, validation accuracy and learning rate of a run, with its restart from a checkpoint on top."""
    import matplotlib.pyplot as plt  # here, not on top: the scripts pick the backend first
    from matplotlib import ticker

    resume_step = int(resumed.eval_steps[0])
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(17, 5.4), layout="constrained")
    full_style = dict(color="tab:blue", linewidth=4.0, alpha=0.45)
    resumed_style = dict(color="tab:red", linewidth=1.6, linestyle=(0, (4, 3)))
    full_label = "uninterrupted run"
    resumed_label = f"restarted from the step-{resume_step} checkpoint"

    batch_style = dict(color="0.6", linewidth=0.6, alpha=0.6)
    ax_loss.plot(full.steps, full.batch_losses, label="mini-batch loss", **batch_style)
    ax_loss.plot(full.eval_steps, full.train_losses, label=full_label, **full_style)
    ax_loss.plot(resumed.eval_steps, resumed.train_losses, label=resumed_label, **resumed_style)
    ax_loss.set(
        yscale="log",
        title="Training loss",
        xlabel="step",
        ylabel="cross-entropy on the full training set (log scale)",
    )
    # Plain numbers (0.01, 2.5), not powers of ten; minor ticks labelled only when less than a decade shows.
    ax_loss.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax_loss.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False))

    ax_acc.plot(full.eval_steps, 100 * full.val_accuracies, label=full_label, **full_style)
    ax_acc.plot(resumed.eval_steps, 100 * resumed.val_accuracies, label=resumed_label, **resumed_style)
    # Zoom past the first climb from 10%, where the two runs' differences would show.
    floor = 100 * full.val_accuracies[len(full.val_accuracies) // 5]
    ax_acc.set(title="Validation accuracy", xlabel="step", ylabel="accuracy (%)", ylim=(floor - 3, 100.5))

    ax_lr.plot(full.steps, full.learning_rates, label=full_label, **full_style)
    ax_lr.plot(resumed.steps, resumed.learning_rates, label=resumed_label, **resumed_style)
    saved = np.asarray(checkpoints, dtype=int)
    saved_rates = full.learning_rates[saved - full.steps[0]]
    ax_lr.plot(saved, saved_rates, "kv", markersize=6, label="checkpoint saved")
    ax_lr.set(
        title="Learning rate, read from the optimizer state",
        xlabel="step",
        ylabel="learning rate (warm-up, then cosine decay)",
    )
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))

    for ax in (ax_loss, ax_acc, ax_lr):
        ax.axvline(resume_step, color="black", linestyle=":", linewidth=1.2, label="restart")
        ax.grid(True, which="both", alpha=0.3)
    ax_loss.legend(loc="upper right", fontsize=9)
    ax_acc.legend(loc="lower right", fontsize=9)
    ax_lr.legend(loc="upper right", fontsize=9)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_resumed_run(
    out: Path,
    name: str,
    loop: str,
    summary: ResumeSummary,
    full: TrainingCurves,
    resumed: TrainingCurves,
    checkpoints: Sequence[int],
    settings: dict,
) -> None:
    """Writes ``<name>.png`` and ``<name>.json`` to ``out`` and prints the summary."""
    out.mkdir(parents=True, exist_ok=True)
    figure, numbers = out / f"{name}.png", out / f"{name}.json"
    match = "the same parameters bit for bit" if summary.bit_for_bit else "DIFFERENT parameters"
    title = (
        f"{loop}, gradtx AdamW with decay on kernels only, warm-up + cosine, "
        f"clip {settings['max_grad_norm']:g}; restarted at step {summary.resume_step} from an Orbax "
        f"checkpoint: {match}"
    )
    plot_resumed_run(full, resumed, checkpoints, figure, title)
    results = {
        "settings": settings,
        "summary": summary._asdict(),
        "uninterrupted": full.to_json(),
        "resumed": resumed.to_json(),
    }
    numbers.write_text(json.dumps(results, indent=1))
    print()
    print(summary.format())
    print(f"\nwrote {figure} and {numbers}")


def parse_resume_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of the Flax examples, which train, checkpoint and restart from the middle checkpoint."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    parser.add_argument(
        "--checkpoint-every", type=int, default=100, help="save a checkpoint every N steps (default: 100)"
    )
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    if not 0 < args.checkpoint_every < args.steps:
        parser.error("--checkpoint-every must be in [1, steps - 1]: the restart needs a checkpoint")
    return args
