"""Full batch, mini-batches or one example at a time: plain SGD for the same number of epochs.

The same 64-128-64-10 ReLU network learns scikit-learn's bundled 8x8 digits
with plain SGD (no momentum) from the same initial weights, for the same number
of epochs (passes over the 1,437 training images, reshuffled every epoch), with
a different number of examples per gradient:

- batch 1 ("stochastic" gradient descent): 1,437 small, noisy steps an epoch;
- a mini-batch (32 by default): 44 steps an epoch, each averaging 32 gradients;
- the full batch (classic gradient descent): one exact step an epoch.

Learning rates follow the linear scaling rule (Goyal et al., 2017): the rate is
``--base-lr`` per example in the batch, ``lr = base_lr * batch``, so that each
epoch moves the weights about as far whatever the batch size; but no rate is
stable beyond the curvature of the loss, so the rule is capped at ``--max-lr``
(1.0 by default; the full batch diverges at 3.0). With the defaults: 0.01 for
batch 1, 0.32 for 32 and 1.0 for the full batch. The figure shows what that
buys. Per epoch, every batch size below the cap learns alike (batch 1 and 32
trace one curve), while the capped full batch falls far behind: its 50 exact
steps do not go as far as 50 epochs of small ones. Per update, it is the other
way round: the full batch makes the most of each. Per second, what counts is
the hardware: on a CPU, an epoch of 1,437 tiny sequential steps costs several
times one of 44 mini-batches, and a single full-batch step about the same as
those 44, so the mini-batch gets there first.

Each epoch is one jitted ``jax.lax.scan`` over its batches, so that batch 1's
1,437 steps cost one Python call, not 1,437; compiling and a warm-up epoch are
kept out of the timings.

    python examples/batch_size.py
    python examples/batch_size.py --batch-sizes 1,8,64,256,full --epochs 20
    python examples/batch_size.py --max-lr 3.0   # the full batch now diverges

Writes ``<out>/batch_size.png`` and ``<out>/batch_size.json`` (the per-epoch
numbers and the table).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import gradtx

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from _common import (  # noqa: E402  (the examples folder is on sys.path when a script runs)
    MLP,
    Split,
    accuracy,
    cross_entropy,
    format_table,
    load_digits_split,
    shuffled_batches,
)
from matplotlib import ticker  # noqa: E402

MODEL = MLP(hidden=(128, 64), n_classes=10)


def loss_fn(params, x, y):
    return cross_entropy(MODEL.apply(params, x), y)


# gradtx optimizers are hashable values, so `tx` can be a static argument of jit.
@functools.partial(jax.jit, static_argnums=0)
def train_epoch(tx, params, opt_state, x, y, batches):
    """One epoch: a scan over the rows of ``batches`` (index arrays into ``x`` and ``y``), in one call."""

    def step(carry, idx):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (gradtx.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), batches)
    return params, opt_state


@jax.jit
def evaluate(params, x_train, y_train, x_val, y_val):
    """Training loss, validation loss and validation accuracy, each on the whole set."""
    val_logits = MODEL.apply(params, x_val)
    return loss_fn(params, x_train, y_train), cross_entropy(val_logits, y_val), accuracy(val_logits, y_val)


class Run(NamedTuple):
    batch_size: int
    learning_rate: float
    steps_per_epoch: int
    train_losses: np.ndarray  # on the whole training set, before training and after each epoch
    val_losses: np.ndarray
    val_accuracies: np.ndarray
    epoch_seconds: np.ndarray  # wall time of each epoch's training (no evaluation, no compile)
    compile_s: float

    @property
    def label(self) -> str:
        return f"batch {self.batch_size} (lr {self.learning_rate:g})"

    def diverged_at(self, top: float = math.inf) -> int | None:
        """The first epoch whose training loss is NaN, infinite or above ``top``, if any."""
        bad = np.flatnonzero(~(self.train_losses <= top))  # NaN compares False
        return int(bad[0]) if bad.size else None


def learning_rate(batch_size: int, base_lr: float, max_lr: float) -> float:
    """The linear scaling rule, capped where a larger rate is no longer stable."""
    return min(base_lr * batch_size, max_lr)


def train(batch_size: int, lr: float, params, data: Split, epochs: int, seed: int, bar: tqdm) -> Run:
    n = len(data.y_train)
    steps_per_epoch = n // batch_size
    # The same seed for every batch size: each epoch visits the examples in the same order.
    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)

    def next_epoch() -> np.ndarray:
        """The next epoch's batches, one per row (the generator reshuffles after exactly an epoch)."""
        return np.stack([next(batches) for _ in range(steps_per_epoch)])

    tx = gradtx.sgd(lr)
    opt_state = tx.init(params)
    # On the device once, not copied there again every epoch.
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    first = next_epoch()
    start = time.perf_counter()
    epoch = train_epoch.lower(tx, params, opt_state, x_train, y_train, first).compile()
    # A throw-away first call pays the one-off costs (its result is dropped: training starts below).
    jax.block_until_ready(epoch(params, opt_state, x_train, y_train, first))
    compile_s = time.perf_counter() - start

    bar.set_description(f"batch {batch_size:>5}")
    history = [evaluate(params, *data)]
    seconds = []
    for e in range(epochs):
        order = first if e == 0 else next_epoch()  # drawing the indices is not training: not timed
        start = time.perf_counter()
        params, opt_state = jax.block_until_ready(epoch(params, opt_state, x_train, y_train, order))
        seconds.append(time.perf_counter() - start)
        history.append(evaluate(params, *data))
        bar.set_postfix(loss=f"{float(history[-1][0]):.3g}", val_acc=f"{float(history[-1][2]):.1%}")
        bar.update()

    train_losses, val_losses, val_accuracies = np.asarray(jax.device_get(history), np.float64).T
    return Run(
        batch_size,
        lr,
        steps_per_epoch,
        train_losses,
        val_losses,
        val_accuracies,
        np.asarray(seconds),
        compile_s,
    )


def table(runs: Sequence[Run]) -> str:
    headers = ["batch", "lr", "steps/epoch", "train loss", "val loss", "val acc"]
    headers += ["s/epoch", "fastest s", "compile s"]
    rows = [
        [
            str(r.batch_size),
            f"{r.learning_rate:g}",
            str(r.steps_per_epoch),
            f"{r.train_losses[-1]:.3g}",
            f"{r.val_losses[-1]:.3g}",
            f"{r.val_accuracies[-1]:.1%}",
            f"{np.median(r.epoch_seconds):.4f}",
            f"{r.epoch_seconds.min():.4f}",
            f"{r.compile_s:.2f}",
        ]
        for r in runs
    ]
    return format_table(headers, rows)


def plot(runs: Sequence[Run], path: Path, title: str) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(14, 10), layout="constrained")
    (ax_loss, ax_acc), (ax_time, ax_steps) = axes
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(runs)))  # dark = small batch
    # Under the linear scaling rule, uncapped batch sizes trace the same curve per epoch: the smaller the
    # batch, the wider its line, so that each one shows around the next.
    widths = np.linspace(4.5, 1.8, len(runs)) if len(runs) > 1 else [2.0]
    # A diverging run reaches 1e30 before it overflows: clip the loss axes a few times above the
    # starting loss, so that the other runs stay readable, and mark where the runaway leaves them.
    finite = np.concatenate([r.train_losses[np.isfinite(r.train_losses)] for r in runs])
    top = min(10 * max(r.train_losses[0] for r in runs), 2 * finite.max())
    low = finite[finite > 0].min() / 2
    for r, color, width in zip(runs, colors, widths):
        epochs = np.arange(len(r.train_losses))
        ax_loss.plot(epochs, r.train_losses, color=color, linewidth=width, label=r.label)
        ax_loss.plot(epochs, r.val_losses, color=color, linewidth=width * 0.6, linestyle="--")
        ax_acc.plot(epochs, 100 * r.val_accuracies, color=color, linewidth=width, label=r.label)
        updates = epochs[1:] * r.steps_per_epoch  # after each epoch; update 0 has no place on a log axis
        ax_steps.plot(updates, r.train_losses[1:], color=color, linewidth=2, marker=".", label=r.label)
        gone, nan_at = r.diverged_at(top), r.diverged_at()
        if gone is not None:
            text = f"off the scale from epoch {gone}" + (f", NaN from {nan_at}" if nan_at is not None else "")
            for ax, x in ((ax_loss, gone), (ax_steps, gone * r.steps_per_epoch)):
                ax.plot(x, top / 2, marker="X", markersize=11, color=color)
                ax.annotate(
                    text,
                    (x, top / 2),
                    xytext=(9, -4),
                    textcoords="offset points",
                    color="0.2",  # the light end of the colour map is hard to read as text
                    fontsize=9,
                )

    ax_loss.set(
        yscale="log",
        ylim=(low, top),
        title="Loss after each epoch (whole set)",
        xlabel="epoch",
        ylabel="cross-entropy (log scale)",
    )
    # One legend: the batch sizes, then what the line styles mean.
    handles, _ = ax_loss.get_legend_handles_labels()
    handles += [
        plt.Line2D([], [], color="gray", linewidth=2, label="training"),
        plt.Line2D([], [], color="gray", linewidth=1.2, linestyle="--", label="validation"),
    ]
    ax_loss.legend(handles=handles, loc="upper right", fontsize=9)
    lowest = min(r.val_accuracies[1:].min() for r in runs)
    ax_acc.set(
        title="Validation accuracy after each epoch",
        xlabel="epoch",
        ylabel="accuracy (%)",
        ylim=(max(0.0, 100 * lowest - 3), 100.5),  # from epoch 1: epoch 0 is chance for everyone
    )
    ax_acc.legend(loc="lower right", fontsize=9)

    # The fastest epoch is the cost of the work itself; the slower ones add whatever else the machine
    # was doing (the dots show them all, on a log scale so that one stall does not flatten the bars).
    positions = np.arange(len(runs))
    fastest = [1e3 * r.epoch_seconds.min() for r in runs]
    ax_time.bar(positions, fastest, color=colors, width=0.6)
    for i, r in enumerate(runs):
        times = 1e3 * r.epoch_seconds
        ax_time.plot(np.full(len(times), i), times, "o", color="black", markersize=3, alpha=0.4)
    ax_time.set(
        yscale="log",
        ylim=(min(fastest) / 2, 2 * max(1e3 * r.epoch_seconds.max() for r in runs)),
        xticks=positions,
        xticklabels=[
            f"batch {r.batch_size}\n{r.steps_per_epoch} step{'s' * (r.steps_per_epoch > 1)}/epoch\n"
            f"fastest {f:.3g} ms\nmedian {1e3 * np.median(r.epoch_seconds):.3g} ms"
            for r, f in zip(runs, fastest)
        ],
        title=f"Wall time per epoch on {jax.default_backend().upper()} (bar: fastest, dots: every epoch)",
        ylabel="milliseconds per epoch, training only (log scale)",
    )
    ax_time.tick_params(axis="x", labelsize=9 if len(runs) <= 3 else 8)
    ax_time.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))  # 2, 5, 10, 20 ms...: readable
    ax_time.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax_time.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax_steps.set(
        xscale="log",
        yscale="log",
        ylim=(low, top),
        title="Training loss vs parameter updates (after each epoch)",
        xlabel="parameter updates (log scale)",
        ylabel="cross-entropy (log scale)",
    )
    ax_steps.legend(loc="upper right", fontsize=9)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # whole epochs
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def jsonable(values: np.ndarray) -> list[float | None]:
    """Strict JSON has no NaN or infinity: a diverged value becomes null."""
    return [float(v) if math.isfinite(v) else None for v in values]


def parse_batch_sizes(text: str, n: int) -> list[int]:
    """``"1,32,full"`` as sizes, "full" being all ``n`` training examples; in order, once each."""
    sizes = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        size = n if item == "full" else int(item) if item.isdigit() else 0
        if not 1 <= size <= n:
            raise ValueError(f"batch size {item!r}: give an integer in [1, {n}] or 'full'")
        sizes.append(size)
    if not sizes:
        raise ValueError("no batch size given")
    return list(dict.fromkeys(sizes))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50, help="epochs per batch size (default: 50)")
    parser.add_argument(
        "--batch-sizes",
        default="1,32,full",
        help="comma-separated sizes, 'full' for the whole training set (default: 1,32,full)",
    )
    parser.add_argument(
        "--base-lr", type=float, default=0.01, help="learning rate per example in the batch (default: 0.01)"
    )
    parser.add_argument("--max-lr", type=float, default=1.0, help="cap on the learning rate (default: 1.0)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not (args.base_lr > 0 and args.max_lr > 0):
        parser.error("--base-lr and --max-lr must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    data = load_digits_split(args.seed)
    n = len(data.y_train)
    try:
        sizes = parse_batch_sizes(args.batch_sizes, n)
    except ValueError as error:
        raise SystemExit(f"--batch-sizes: {error}") from None
    print(
        f"digits: {n} train / {len(data.y_val)} val images; MLP 64-128-64-10; plain SGD, "
        f"lr = min({args.base_lr:g} x batch, {args.max_lr:g}); {args.epochs} epochs; seed {args.seed}; "
        f"JAX on {jax.default_backend()}"
    )

    params = jax.jit(MODEL.init)(jax.random.key(args.seed), data.x_train[:1])  # everyone starts here
    with tqdm(total=len(sizes) * args.epochs, unit="epoch", dynamic_ncols=True) as bar:
        runs = [
            train(
                size,
                learning_rate(size, args.base_lr, args.max_lr),
                params,
                data,
                args.epochs,
                args.seed,
                bar,
            )
            for size in sizes
        ]

    print()
    print(table(runs))
    print(
        f"Losses and accuracy on the whole training / validation set after the last epoch; one validation "
        f"image is {1 / len(data.y_val):.2%} of accuracy.\ns/epoch is the median wall time of an epoch's "
        "training, fastest s the best one; compile s is the compile and one warm-up epoch, left out of both."
    )
    for r in runs:
        gone = r.diverged_at()
        if gone is not None:
            print(f"{r.label} diverged: its loss is NaN/inf from epoch {gone} (lower the rate: --max-lr).")

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "batch_size.png"
    title = (
        f"How many examples per step? Plain SGD on digits for {args.epochs} epochs, "
        f"lr = min({args.base_lr:g} x batch, {args.max_lr:g}), seed {args.seed}"
    )
    plot(runs, figure, title)
    results = {
        "settings": vars(args) | {"out": str(args.out), "batch_sizes": sizes},
        "runs": [
            {
                "batch_size": r.batch_size,
                "learning_rate": r.learning_rate,
                "steps_per_epoch": r.steps_per_epoch,
                "train_losses": jsonable(r.train_losses),
                "val_losses": jsonable(r.val_losses),
                "val_accuracies": r.val_accuracies.tolist(),
                "epoch_seconds": r.epoch_seconds.tolist(),
                "compile_s": r.compile_s,
            }
            for r in runs
        ],
    }
    (args.out / "batch_size.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {figure} and {args.out / 'batch_size.json'}")
    return runs


if __name__ == "__main__":
    main()
