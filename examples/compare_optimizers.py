"""Ten classic optimizers train the same MLP on the same data; which gets furthest?

The classic course experiment (as in "Deep Learning from Scratch", ch. 6), on
scikit-learn's bundled 8x8 digits so that it runs offline on a laptop CPU: a
64-128-64-10 ReLU network, the same initial weights, the same mini-batches
(reshuffled every epoch) and the same number of steps for every optimizer, each
at a learning rate typical for it. Prints a ranked table and saves the loss and
validation-accuracy curves.

    python examples/compare_optimizers.py
    python examples/compare_optimizers.py --optimizers sgd,momentum,adam --steps 3000

Writes ``<out>/compare_optimizers.png`` and ``<out>/compare_optimizers.json``
(the per-step losses and the table, for your own plots).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import gradtx

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from _common import (  # noqa: E402  (the examples folder is on sys.path when a script runs)
    MLP,
    accuracy,
    cross_entropy,
    format_table,
    load_digits_split,
    shuffled_batches,
    trailing_mean,
)


class Entry(NamedTuple):
    label: str
    learning_rate: float
    make: Callable[[float], gradtx.GradientTransformation]
    style: str  # line style by family: plain/momentum, AdaGrad-like, Adam-like


OPTIMIZERS: dict[str, Entry] = {
    "sgd": Entry("SGD", 0.01, gradtx.sgd, "-"),
    "momentum": Entry("Momentum", 0.01, lambda lr: gradtx.sgd(lr, momentum=0.9), "-"),
    "nesterov": Entry("Nesterov", 0.01, lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True), "-"),
    "adagrad": Entry("AdaGrad", 0.01, gradtx.adagrad, "--"),
    "rmsprop": Entry("RMSProp", 1e-3, gradtx.rmsprop, "--"),
    "adadelta": Entry("Adadelta", 1.0, gradtx.adadelta, "--"),
    "adam": Entry("Adam", 1e-3, gradtx.adam, "-."),
    "adamax": Entry("AdaMax", 2e-3, gradtx.adamax, "-."),
    "nadam": Entry("Nadam", 1e-3, gradtx.nadam, "-."),
    "amsgrad": Entry("AMSGrad", 1e-3, gradtx.amsgrad, "-."),
}

MODEL = MLP(hidden=(128, 64), n_classes=10)


def loss_fn(params, x, y):
    return cross_entropy(MODEL.apply(params, x), y)


def train_step(tx, params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return gradtx.apply_updates(params, updates), opt_state, loss


@jax.jit
def evaluate(params, x, y):
    logits = MODEL.apply(params, x)
    return cross_entropy(logits, y), accuracy(logits, y)


class Run(NamedTuple):
    name: str
    learning_rate: float
    batch_losses: np.ndarray  # the mini-batch loss of every step
    eval_steps: np.ndarray
    train_losses: np.ndarray  # full training-set loss at eval_steps
    val_accuracies: np.ndarray
    compile_s: float
    train_s: float


def train(name: str, params, data, steps: int, batch_size: int, seed: int, eval_every: int, bar: tqdm) -> Run:
    entry = OPTIMIZERS[name]
    tx = entry.make(entry.learning_rate)
    opt_state = tx.init(params)
    batches = shuffled_batches(np.random.default_rng(seed), len(data.y_train), batch_size)

    # gradtx optimizers are hashable values, so `tx` is a static argument: one compile per optimizer.
    start = time.perf_counter()
    idx = next(batches)
    step = (
        jax.jit(train_step, static_argnums=0)
        .lower(tx, params, opt_state, data.x_train[idx], data.y_train[idx])
        .compile()
    )
    jax.block_until_ready(step(params, opt_state, data.x_train[idx], data.y_train[idx]))  # one-off costs
    compile_s = time.perf_counter() - start

    def record(at: int, params) -> None:
        train_loss, _ = evaluate(params, data.x_train, data.y_train)
        _, val_acc = evaluate(params, data.x_val, data.y_val)
        eval_steps.append(at)
        train_losses.append(float(train_loss))
        val_accuracies.append(float(val_acc))
        bar.set_postfix(loss=f"{train_losses[-1]:.3f}", val_acc=f"{val_accuracies[-1]:.1%}")

    bar.set_description(f"{entry.label:>9}")
    eval_steps, train_losses, val_accuracies, batch_losses = [], [], [], []
    start = time.perf_counter()
    record(0, params)
    for t in range(1, steps + 1):
        params, opt_state, loss = step(params, opt_state, data.x_train[idx], data.y_train[idx])
        batch_losses.append(loss)  # left on the device: no sync, the next steps dispatch ahead
        idx = next(batches)
        if t % eval_every == 0 or t == steps:
            record(t, params)
        bar.update()
    train_s = time.perf_counter() - start

    return Run(
        name,
        float(gradtx.get_hyperparam(opt_state, "learning_rate")),  # hyperparameters live in the state
        np.asarray(jax.device_get(batch_losses)),
        np.asarray(eval_steps),
        np.asarray(train_losses),
        np.asarray(val_accuracies),
        compile_s,
        train_s,
    )


def ranked(runs: Sequence[Run]) -> list[Run]:
    """Lowest final training loss first: that is what an optimizer minimises."""
    return sorted(runs, key=lambda r: r.train_losses[-1])


def table(runs: Sequence[Run]) -> str:
    headers = ["#", "optimizer", "lr", "train loss", "val acc", "compile s", "train s"]
    rows = [
        [
            str(rank),
            OPTIMIZERS[r.name].label,
            f"{r.learning_rate:g}",
            f"{r.train_losses[-1]:.3g}",
            f"{r.val_accuracies[-1]:.1%}",
            f"{r.compile_s:.2f}",
            f"{r.train_s:.2f}",
        ]
        for rank, r in enumerate(ranked(runs), start=1)
    ]
    return format_table(headers, rows)


def plot(runs: Sequence[Run], path: Path, title: str, window: int) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained")
    colors = plt.get_cmap("tab10").colors
    lowest_acc = 1.0
    for r in ranked(runs):
        entry = OPTIMIZERS[r.name]
        color = colors[list(OPTIMIZERS).index(r.name) % len(colors)]  # fixed per optimizer across runs
        style = dict(color=color, linestyle=entry.style, linewidth=1.8)
        label = f"{entry.label} (lr {r.learning_rate:g})"
        steps = np.arange(1, len(r.batch_losses) + 1)
        ax_loss.plot(steps, trailing_mean(r.batch_losses, window), label=label, **style)
        ax_acc.plot(r.eval_steps, 100 * r.val_accuracies, label=label, **style)
        lowest_acc = min(lowest_acc, r.val_accuracies[len(r.val_accuracies) // 4])

    ax_loss.set(
        yscale="log",
        title="Training loss",
        xlabel="step",
        ylabel=f"cross-entropy (mean of the last {window} mini-batches, log scale)",
    )
    # Zoom on the interesting part: the early climb from 10% is the same story for everyone.
    ax_acc.set(
        title="Validation accuracy",
        xlabel="step",
        ylabel="accuracy (%)",
        ylim=(max(0.0, 100 * lowest_acc - 5), 100.5),
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(True, which="both", alpha=0.3)
    ax_acc.legend(title="ranked by final training loss", loc="lower right", fontsize=9)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--optimizers",
        default=",".join(OPTIMIZERS),
        help=f"comma-separated names from: {', '.join(OPTIMIZERS)} (default: all)",
    )
    parser.add_argument("--steps", type=int, default=1000, help="steps per optimizer (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    args = parser.parse_args(argv)
    names = (name.strip().lower() for name in args.optimizers.split(","))
    args.optimizers = list(dict.fromkeys(name for name in names if name))  # in order, once each
    unknown = [name for name in args.optimizers if name not in OPTIMIZERS]
    if unknown or not args.optimizers:
        parser.error(f"unknown optimizer(s) {unknown}; choose from {', '.join(OPTIMIZERS)}")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    data = load_digits_split(args.seed)
    if not 0 < args.batch_size <= len(data.y_train):
        raise SystemExit(f"--batch-size must be in [1, {len(data.y_train)}]")
    steps_per_epoch = len(data.y_train) // args.batch_size
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_val)} val images; MLP 64-128-64-10; "
        f"{args.steps} steps of batch {args.batch_size} ({args.steps / steps_per_epoch:.3g} epochs); "
        f"seed {args.seed}; JAX on {jax.default_backend()}"
    )

    params = jax.jit(MODEL.init)(jax.random.key(args.seed), data.x_train[:1])  # everyone starts here
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        evaluate(params, x, y)  # compile it outside the timings

    with tqdm(total=len(args.optimizers) * args.steps, unit="step", dynamic_ncols=True) as bar:
        runs = [
            train(name, params, data, args.steps, args.batch_size, args.seed, steps_per_epoch, bar)
            for name in args.optimizers
        ]

    print()
    print(table(runs))
    print(
        f"Ranked by final training loss (on the full training set). One validation image is "
        f"{1 / len(data.y_val):.2%} of accuracy.\nTimes: compile s is the one compile per optimizer "
        "and its first call; train s is the rest of the run."
    )

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "compare_optimizers.png"
    title = f"Same MLP, same data, same {args.steps} steps: digits, batch {args.batch_size}, seed {args.seed}"
    plot(runs, figure, title, window=min(steps_per_epoch, args.steps))
    results = {
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed},
        "runs": [
            {
                "optimizer": r.name,
                "learning_rate": r.learning_rate,
                "batch_losses": r.batch_losses.tolist(),
                "eval_steps": r.eval_steps.tolist(),
                "train_losses": r.train_losses.tolist(),
                "val_accuracies": r.val_accuracies.tolist(),
                "compile_s": r.compile_s,
                "train_s": r.train_s,
            }
            for r in ranked(runs)
        ],
    }
    (args.out / "compare_optimizers.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {figure} and {args.out / 'compare_optimizers.json'}")
    return runs


if __name__ == "__main__":
    main()
