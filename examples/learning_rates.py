"""Too large, too small, about right, or scheduled: what the learning rate does to training.

The same 64-128-64-10 ReLU network learns scikit-learn's bundled 8x8 digits
four times with one optimizer, from the same initial weights and on the same
mini-batches; only the learning rate changes:

- too large: the steps overshoot, the loss bounces and then shoots up
  (to 11x its start with the defaults), and the network ends stuck at chance,
  its second layer of ReLUs dead (loss ln 10 = 2.30, accuracy 10%), or the
  loss overflows to NaN;
- too small: every step is safe and tiny, so after the whole budget the loss
  has still a long way to go;
- a good constant rate: fast and stable;
- linear warm-up then cosine decay (``gradtx.schedules.warmup_cosine_decay``)
  to a peak a few times the good constant rate: the warm-up eases in over the
  first steps, where the gradients are largest, the middle of the run goes
  faster than the constant rate, and the decay to zero lets the last steps
  settle instead of bouncing (the lowest loss of the four).

The three constant rates share one optimizer, and so one compiled step: only
the value in its state differs (``gradtx.set_hyperparam``). The learning-rate
panel is read back from the optimizer state at every step with
``gradtx.get_hyperparam(state, "learning_rate")``: in gradtx the
hyperparameters, and the current value of a schedule, live in the state.

    python examples/learning_rates.py
    python examples/learning_rates.py --optimizer adam --steps 2000
    python examples/learning_rates.py --too-large 50   # the loss overflows to NaN
    python examples/learning_rates.py --seed 1 --too-large 0.2 --peak 0.2
    # 0.2 as a constant blows up late in the run; as the peak of the schedule it survives, decayed by then

Writes ``<out>/learning_rates.png`` and ``<out>/learning_rates.json`` (the
per-step losses and learning rates and the table).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
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
    Split,
    accuracy,
    cross_entropy,
    format_table,
    load_digits_split,
    shuffled_batches,
    trailing_mean,
)

LearningRate = float | Callable[[jax.Array], jax.Array]  # a constant or a schedule


class Preset(NamedTuple):
    """An optimizer and the four learning rates that tell the story for it on this problem."""

    label: str
    make: Callable[[LearningRate], gradtx.GradientTransformation]
    too_large: float
    too_small: float
    good: float
    peak: float  # of the warm-up + cosine schedule


# From a sweep over rates a factor of about 3 apart, at the default 1,000 steps of batch 64 and seeds
# 0-2: "too large" wrecked every run, "too small" still crawls at the end, "good" is a safe constant
# (with momentum, 0.2 already kills some seeds), and the schedule peaks a few times above "good".
PRESETS: dict[str, Preset] = {
    "momentum": Preset("SGD, momentum 0.9", lambda lr: gradtx.sgd(lr, momentum=0.9), 0.5, 1e-3, 0.03, 0.1),
    "adam": Preset("Adam", gradtx.adam, 0.1, 1e-5, 1e-3, 0.01),
}

RATE_FLAGS = ("too_large", "too_small", "good", "peak")  # the Preset fields that --too-large etc. override
MODEL = MLP(hidden=(128, 64), n_classes=10)
BLOW_UP = 2.0  # a mini-batch loss this many times the first one means the run left the rails


def loss_fn(params, x, y):
    return cross_entropy(MODEL.apply(params, x), y)


# gradtx optimizers are hashable values, so `tx` can be a static argument: equal optimizers share a compile.
@functools.partial(jax.jit, static_argnums=0)
def train_step(tx, params, opt_state, x, y):
    # Read before the update: the value in the state is the one this update is about to use.
    learning_rate = gradtx.get_hyperparam(opt_state, "learning_rate")
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return gradtx.apply_updates(params, updates), opt_state, loss, learning_rate


@jax.jit
def evaluate(params, x_train, y_train, x_val, y_val):
    """The loss on the whole training set and the accuracy on the validation set (one compile for both)."""
    return cross_entropy(MODEL.apply(params, x_train), y_train), accuracy(MODEL.apply(params, x_val), y_val)


class Setting(NamedTuple):
    name: str
    rate: str  # as the table shows it
    learning_rate: LearningRate
    color: str


class Run(NamedTuple):
    setting: Setting
    batch_losses: np.ndarray  # the mini-batch loss of every step
    learning_rates: np.ndarray  # the rate every step used, as read from the optimizer state
    eval_steps: np.ndarray
    train_losses: np.ndarray  # full training-set loss at eval_steps
    val_accuracies: np.ndarray

    def first_non_finite(self) -> int | None:
        """The first step (from 1) whose loss is NaN or infinite, if any."""
        bad = np.flatnonzero(~np.isfinite(self.batch_losses))
        return int(bad[0]) + 1 if bad.size else None

    def peak(self) -> tuple[int, float]:
        """The step (from 1) and value of the highest finite mini-batch loss."""
        finite = np.where(np.isfinite(self.batch_losses), self.batch_losses, -np.inf)
        at = int(np.argmax(finite))
        return at + 1, float(finite[at])

    def divergence(self) -> str:
        """Whether (and how) the run left the rails: "yes: ...", "no", or "no (spike ...)" if it came back."""
        nan_at = self.first_non_finite()
        if nan_at is not None or not np.isfinite(self.train_losses[-1]):
            return f"yes: NaN/inf from step {nan_at}" if nan_at else "yes: NaN/inf"
        at, value = self.peak()
        if value <= BLOW_UP * self.batch_losses[0]:
            return "no"
        if self.train_losses[-1] > self.train_losses[0] / 2:  # never got back: dead ReLUs, chance level
            return f"yes: loss {value:.3g} at step {at}"
        return f"no (spike {value:.3g} at step {at})"


def settings(preset: Preset, steps: int, warmup: int) -> list[Setting]:
    schedule = gradtx.schedules.warmup_cosine_decay(0.0, preset.peak, warmup, steps)
    return [
        Setting("too large", f"{preset.too_large:g}", preset.too_large, "tab:red"),
        Setting("too small", f"{preset.too_small:g}", preset.too_small, "tab:gray"),
        Setting("good constant", f"{preset.good:g}", preset.good, "tab:green"),
        Setting("warm-up + cosine", f"0->{preset.peak:g}->0", schedule, "tab:blue"),
    ]


def train(
    setting: Setting, preset: Preset, params, data: Split, steps: int, batch_size: int, seed: int, bar: tqdm
) -> Run:
    if callable(setting.learning_rate):  # a schedule is part of the optimizer: a new one, a new compile
        tx = preset.make(setting.learning_rate)
        opt_state = tx.init(params)
    else:
        # Hyperparameters live in the state: the constant rates share one optimizer, hence one compiled
        # step, and differ only in the value stored in the state.
        tx = preset.make(preset.good)
        opt_state = gradtx.set_hyperparam(tx.init(params), "learning_rate", setting.learning_rate)
    # The same seed for every setting: the same mini-batches in the same order.
    batches = shuffled_batches(np.random.default_rng(seed), len(data.y_train), batch_size)
    eval_every = max(1, len(data.y_train) // batch_size)  # once an epoch

    def record(at: int, params) -> None:
        train_loss, val_acc = evaluate(params, *data)
        eval_steps.append(at)
        train_losses.append(float(train_loss))
        val_accuracies.append(float(val_acc))
        bar.set_postfix(loss=f"{train_losses[-1]:.3g}", val_acc=f"{val_accuracies[-1]:.1%}")

    bar.set_description(f"{setting.name:>16}")
    eval_steps, train_losses, val_accuracies, batch_losses, learning_rates = [], [], [], [], []
    record(0, params)
    for t in range(1, steps + 1):
        idx = next(batches)
        params, opt_state, loss, lr = train_step(tx, params, opt_state, data.x_train[idx], data.y_train[idx])
        batch_losses.append(loss)  # left on the device: no sync, the next steps dispatch ahead
        learning_rates.append(lr)
        if t % eval_every == 0 or t == steps:
            record(t, params)
        bar.update()

    return Run(
        setting,
        np.asarray(jax.device_get(batch_losses), np.float64),
        np.asarray(jax.device_get(learning_rates), np.float64),
        np.asarray(eval_steps),
        np.asarray(train_losses),
        np.asarray(val_accuracies),
    )


def table(runs: Sequence[Run]) -> str:
    headers = ["setting", "lr", "train loss", "val acc", "diverged?"]
    rows = [
        [
            r.setting.name,
            r.setting.rate,
            f"{r.train_losses[-1]:.3g}",
            f"{r.val_accuracies[-1]:.1%}",
            r.divergence(),
        ]
        for r in runs
    ]
    return format_table(headers, rows)


def loss_limits(runs: Sequence[Run]) -> tuple[float, float]:
    """y-limits of the loss panel: every finite curve's low end, and a few times the starting loss.

    A blow-up can reach 1e30 before it overflows; plotting to there would squash every other curve
    into a line, so the top is clipped (and the peak is written on the panel instead).
    """
    finite = np.concatenate(
        [r.batch_losses[np.isfinite(r.batch_losses) & (r.batch_losses > 0)] for r in runs]
    )
    low = np.percentile(finite, 0.5) / 2 if finite.size else 1e-3
    return float(low), float(4 * max(r.batch_losses[0] for r in runs))


def plot(runs: Sequence[Run], path: Path, title: str, window: int) -> None:
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(
        1, 3, figsize=(16, 6), layout="constrained", gridspec_kw={"width_ratios": [1.35, 1.0, 0.8]}
    )
    low, top = loss_limits(runs)
    for r in runs:
        steps = np.arange(1, len(r.batch_losses) + 1)
        style = {"color": r.setting.color, "linewidth": 2}
        # The raw losses underneath, faint: they show the bouncing that the trailing mean smooths away.
        ax_loss.plot(steps, r.batch_losses, color=r.setting.color, linewidth=0.5, alpha=0.25, zorder=1)
        ax_loss.plot(steps, trailing_mean(r.batch_losses, window), zorder=3, **style)
        ax_acc.plot(
            r.eval_steps, 100 * r.val_accuracies, label=f"{r.setting.name} (lr {r.setting.rate})", **style
        )
        ax_lr.plot(steps, r.learning_rates, **style)

        nan_at = r.first_non_finite()
        peak_at, peak = r.peak()
        if nan_at is not None:  # the curve stops there: say why
            ax_loss.plot(nan_at, top / 1.5, marker="X", markersize=11, color=r.setting.color, zorder=4)
            ax_loss.annotate(
                f"NaN/inf from step {nan_at}",
                (nan_at, top / 1.5),
                xytext=(9, -4),
                textcoords="offset points",
                color=r.setting.color,
                fontsize=9,
            )
        elif peak > top:  # off the clipped axis: say how high it went
            right_half = peak_at > len(r.batch_losses) / 2  # then the text goes to the left of the arrow
            ax_loss.annotate(
                f"peak {peak:.3g} at step {peak_at}",
                (peak_at, top),
                xytext=(-12 if right_half else 12, -16),
                textcoords="offset points",
                ha="right" if right_half else "left",
                color=r.setting.color,
                fontsize=9,
                arrowprops={"arrowstyle": "->", "color": r.setting.color},
            )

    ax_loss.set(
        yscale="log",
        ylim=(low, top),
        title="Training loss per step",
        xlabel="step",
        ylabel="mini-batch cross-entropy (log scale)",
    )
    key = [
        plt.Line2D([], [], color="black", linewidth=0.5, alpha=0.4, label="each step"),
        plt.Line2D([], [], color="black", linewidth=2, label=f"mean of the last {window} steps"),
    ]
    ax_loss.legend(handles=key, loc="lower left", fontsize=9)
    ax_acc.axhline(10, color="black", linestyle=":", linewidth=1)
    ax_acc.text(0.98, 12, "chance (10%)", transform=ax_acc.get_yaxis_transform(), ha="right", fontsize=9)
    ax_acc.set(
        title="Validation accuracy (every epoch)", xlabel="step", ylabel="accuracy (%)", ylim=(0, 100.5)
    )
    # Each run's largest rate (its constant or its peak) sets the range. A schedule that starts or ends
    # at 0 runs off the bottom of a log scale there, as it should.
    highest = [r.learning_rates.max() for r in runs]
    ax_lr.set(
        yscale="log",
        ylim=(min(highest) / 5, max(highest) * 3),
        title='Learning rate used, read from the state:\nget_hyperparam(state, "learning_rate")',
        xlabel="step",
        ylabel="learning rate (log scale)",
    )
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=len(runs), fontsize=10, frameon=False)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def jsonable(values: np.ndarray) -> list[float | None]:
    """Strict JSON has no NaN or infinity: a diverged value becomes null."""
    return [float(v) if math.isfinite(v) else None for v in values]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--optimizer", choices=list(PRESETS), default="momentum", help="default: momentum (SGD, momentum 0.9)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="steps per setting (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up steps of the schedule (default: 5%% of --steps)"
    )
    for name in RATE_FLAGS:
        flag = name.replace("_", "-")
        parser.add_argument(
            f"--{flag}", type=float, default=None, help=f"the {flag} learning rate (default: the optimizer's)"
        )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.warmup is None:
        args.warmup = args.steps // 20
    if not 0 <= args.warmup <= args.steps:
        parser.error("--warmup must be in [0, --steps]")
    for name in RATE_FLAGS:
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    overrides = {k: getattr(args, k) for k in RATE_FLAGS if getattr(args, k) is not None}
    preset = PRESETS[args.optimizer]._replace(**overrides)
    data = load_digits_split(args.seed)
    if not 0 < args.batch_size <= len(data.y_train):
        raise SystemExit(f"--batch-size must be in [1, {len(data.y_train)}]")
    steps_per_epoch = len(data.y_train) // args.batch_size
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_val)} val images; MLP 64-128-64-10; "
        f"{preset.label}; "
        f"{args.steps} steps of batch {args.batch_size} ({args.steps / steps_per_epoch:.3g} epochs); "
        f"warm-up {args.warmup} steps; seed {args.seed}; JAX on {jax.default_backend()}"
    )

    params = jax.jit(MODEL.init)(jax.random.key(args.seed), data.x_train[:1])  # everyone starts here
    todo = settings(preset, args.steps, args.warmup)
    with tqdm(total=len(todo) * args.steps, unit="step", dynamic_ncols=True) as bar:
        runs = [train(s, preset, params, data, args.steps, args.batch_size, args.seed, bar) for s in todo]

    print()
    print(table(runs))
    print(
        '"train loss" is on the full training set after the last step. "diverged?": a NaN/inf loss, or a '
        f"mini-batch loss above {BLOW_UP:g}x the first one\nafter which the training loss never got back "
        f"below half its start. One validation image is {1 / len(data.y_val):.2%} of accuracy; 10% is chance."
    )

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "learning_rates.png"
    title = (
        f"One learning rate, four ways: {preset.label}, {args.steps} steps of batch {args.batch_size} "
        f"on digits, seed {args.seed}"
    )
    plot(runs, figure, title, window=min(steps_per_epoch, args.steps))
    results = {
        "settings": {
            "optimizer": args.optimizer,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "runs": [
            {
                "setting": r.setting.name,
                "learning_rate": r.setting.rate,
                "diverged": r.divergence(),
                "batch_losses": jsonable(r.batch_losses),
                "learning_rates": r.learning_rates.tolist(),
                "eval_steps": r.eval_steps.tolist(),
                "train_losses": jsonable(r.train_losses),
                "val_accuracies": r.val_accuracies.tolist(),
            }
            for r in runs
        ],
    }
    (args.out / "learning_rates.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {figure} and {args.out / 'learning_rates.json'}")
    return runs


if __name__ == "__main__":
    main()
