"""Vanishing and exploding gradients in a deep MLP, watched layer by layer with ``gradtx.monitor``.

A 15-hidden-layer, 64-wide MLP learns scikit-learn's bundled 8x8 digits with
SGD + momentum, once per activation (sigmoid, ReLU) and weight initialisation
(a normal with a too-large std, a normal with a too-small std, Glorot, He).
``gradtx.monitor`` wraps the optimizer and records every layer's gradient norm
at every step; ``gradtx.monitor_stats`` reads them out. The lesson:

- sigmoid's slope is at most 1/4, so with every one of these inits each layer
  shrinks the gradient: the first layer gets 1e-6 to 1e-15 of what the last
  one gets (vanishing), and the network does not learn at all;
- ReLU keeps the gradient the same size from layer to layer, but its level
  scales exponentially with depth unless the weight variance is 2 / fan-in
  (He): a std 1.4x He's lifts it by orders of magnitude (exploding: SGD
  diverges to NaN within a few steps), a std 0.3x He's sinks it (vanishing);
- clipping the gradient's global norm (``gradtx.clip_by_norm``) turns the
  diverging ReLU run into one that trains.

    python examples/vanishing_exploding.py
    python examples/vanishing_exploding.py --depth 25 --steps 500

Writes ``<out>/vanishing_exploding.png`` and ``<out>/vanishing_exploding.json``
(the per-layer norms, losses and the table).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Sequence
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
    Split,
    cross_entropy,
    format_table,
    load_digits_split,
    shuffled_batches,
    trailing_mean,
)

Layers = list[dict[str, jax.Array]]  # one {"w", "b"} per layer: one gradient norm per layer in monitor_stats

WIDTH = 64
LEARNING_RATE = 0.01
MOMENTUM = 0.9
BATCH_SIZE = 128
# monitor's thresholds. A layer whose gradient norm is below VANISHING learns nothing at this learning rate
# (its weights move by about 1e-6 of their norm per step); a global norm above EXPLODING sends SGD's steps
# far beyond the size of the weights.
VANISHING = 1e-4
EXPLODING = 1e2

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}


class Init(NamedTuple):
    label: str
    initializer: jax.nn.initializers.Initializer
    color: str


# Fixed stds are compared with 1/sqrt(fan-in) = 0.125 at width 64: Glorot's std here, He's is 0.177.
INITS: dict[str, Init] = {
    "large": Init("normal, std 0.25 (too large)", jax.nn.initializers.normal(0.25), "tab:red"),
    "small": Init("normal, std 0.05 (too small)", jax.nn.initializers.normal(0.05), "tab:purple"),
    "glorot": Init("Glorot normal", jax.nn.initializers.glorot_normal(), "tab:orange"),
    "he": Init("He normal", jax.nn.initializers.he_normal(), "tab:green"),
}


def init_layers(key: jax.Array, initializer: jax.nn.initializers.Initializer, depth: int) -> Layers:
    """``depth`` hidden layers of ``WIDTH`` units and a 10-class output layer; zero biases."""
    sizes = [64, *[WIDTH] * depth, 10]
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": initializer(k, (n_in, n_out), jnp.float32), "b": jnp.zeros(n_out)}
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def loss_fn(layers: Layers, x: jax.Array, y: jax.Array, activation: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for layer in layers[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return cross_entropy(x @ layers[-1]["w"] + layers[-1]["b"], y)


# Global-norm clipping, then SGD + momentum, inside a monitor: the monitor wraps the clipping so that it
# records the raw gradients. Clipping is off (threshold inf) unless a run sets its "max_norm" in the state;
# hyperparameters live in the state, so the clipped run reuses the same compiled step.
TX = gradtx.monitor(
    gradtx.chain(gradtx.clip_by_norm(float("inf")), gradtx.sgd(LEARNING_RATE, momentum=MOMENTUM)),
    vanishing=VANISHING,
    exploding=EXPLODING,
)


# The activation is static: one compile per activation, shared by all inits and the clipped run.
@functools.partial(jax.jit, static_argnames="activation")
def train_step(layers, opt_state, x, y, *, activation: str):
    loss, grads = jax.value_and_grad(loss_fn)(layers, x, y, activation)
    updates, opt_state = TX.update(grads, opt_state, layers)  # monitor needs the params
    return gradtx.apply_updates(layers, updates), opt_state, loss


full_loss = jax.jit(loss_fn, static_argnames="activation")
init_state = jax.jit(TX.init)  # one compile, rather than one per small op run op by op


class Run(NamedTuple):
    activation: str
    init: str
    max_norm: float | None  # gradient clipping threshold, None for none
    layer_norms: np.ndarray  # (steps, layers): the norm of each layer's weight gradient, from monitor_stats
    batch_losses: np.ndarray
    vanishing_leaves: int  # monitor's count of leaves below VANISHING at the first step
    exploding_steps: int  # monitor's count of steps whose global norm exceeded EXPLODING (or was not finite)
    final_loss: float  # on the full training set

    @property
    def verdict(self) -> str:
        """From monitor's flags: any exploding step, else any vanishing layer at initialisation."""
        if self.exploding_steps > 0:
            return "exploding"
        return "vanishing" if self.vanishing_leaves > 0 else "healthy"

    @property
    def label(self) -> str:
        clipped = "" if self.max_norm is None else f", clipped at norm {self.max_norm:g}"
        return f"{self.activation}, {INITS[self.init].label}{clipped}"


def train(
    activation: str, init: str, max_norm: float | None, data: Split, depth: int, steps: int, seed: int, bar
) -> Run:
    # The "rbg" generator compiles several times faster on CPU than the default threefry.
    layers = init_layers(jax.random.key(seed, impl="rbg"), INITS[init].initializer, depth)
    opt_state = init_state(layers)
    if max_norm is not None:
        opt_state = gradtx.set_hyperparam(opt_state, "max_norm", max_norm)
    batches = shuffled_batches(np.random.default_rng(seed), len(data.y_train), BATCH_SIZE)  # same for all
    bar.set_description(f"{activation:>7} {init:>6}{'' if max_norm is None else ' clip'}")
    layer_norms, batch_losses, vanishing_leaves = [], [], 0
    for t in range(steps):
        idx = next(batches)
        layers, opt_state, loss = train_step(
            layers, opt_state, data.x_train[idx], data.y_train[idx], activation=activation
        )
        stats = gradtx.monitor_stats(opt_state)  # the gradients this step saw, one key per leaf
        layer_norms.append([stats[f"grad_norm/{i}/w"] for i in range(len(layers))])
        batch_losses.append(float(loss))
        if t == 0:
            vanishing_leaves = int(stats["vanishing_leaves"])
        bar.update()
    return Run(
        activation,
        init,
        max_norm,
        np.asarray(layer_norms),
        np.asarray(batch_losses),
        vanishing_leaves,
        int(stats["exploding_steps"]),  # cumulative over the run
        float(full_loss(layers, data.x_train, data.y_train, activation)),
    )


def table(runs: Sequence[Run]) -> str:
    headers = ["activation", "init", "clip", "|g| layer 1", "|g| last", "first/last", "loss", "verdict"]
    rows = []
    for r in runs:
        first, last = r.layer_norms[0, 0], r.layer_norms[0, -1]  # at initialisation: the init's doing
        rows.append(
            [
                r.activation,
                INITS[r.init].label,
                "-" if r.max_norm is None else f"{r.max_norm:g}",
                f"{first:.2e}",
                f"{last:.2e}",
                f"{first / last:.1e}" if last > 0 else "-",
                f"{r.final_loss:.3g}" if np.isfinite(r.final_loss) else "nan",
                r.verdict,
            ]
        )
    return format_table(headers, rows)


def plot_layer_norms(ax, runs: Sequence[Run], activation: str) -> None:
    """Each init's per-layer norms at the first step (what the init did), shaded over the recorded steps."""
    for r in runs:
        finite = np.isfinite(r.layer_norms).all(axis=1)
        norms = r.layer_norms[finite]  # a diverged run: the steps before its gradients turned NaN
        layer = np.arange(1, norms.shape[1] + 1)
        color = INITS[r.init].color
        ax.fill_between(layer, norms.min(0), norms.max(0), color=color, alpha=0.15, lw=0)
        label = f"{INITS[r.init].label}: {r.verdict}"
        if not finite.all():
            label += f" (NaN from step {np.argmin(finite) + 1})"
        ax.plot(layer, norms[0], "o-", color=color, label=label, lw=1.8, ms=4)
    ax.axhline(VANISHING, color="gray", ls=":", lw=1.2)
    ax.text(1, VANISHING, " monitor's vanishing threshold", va="bottom", fontsize=8, color="gray")
    n_layers = runs[0].layer_norms.shape[1]
    ax.set(
        yscale="log",
        title=f"{activation}: gradient norm per layer over the first {len(runs[0].batch_losses)} steps",
        xlabel=f"layer (1 = input side, {n_layers} = output layer)",
        ylabel="‖∂loss/∂W‖₂ (line: step 1; band: all steps; log scale)",
    )
    if n_layers <= 20:
        ax.set_xticks(layer)
    ax.legend(fontsize=8.5, loc="lower right", title="init: monitor's verdict", title_fontsize=8.5)


def plot_losses(ax, runs: Sequence[Run], styles: Sequence[dict], window: int, title: str) -> None:
    """Trailing-mean mini-batch losses; a run that diverged ends in a cross where its loss turned NaN."""
    top = 1e4  # a diverging run climbs to 1e10 and more on its way to NaN: off the chart, marked at the top
    for r, style in zip(runs, styles, strict=True):
        finite = np.isfinite(r.batch_losses)
        n = len(finite) if finite.all() else int(np.argmin(finite))  # the steps before the first NaN
        steps = np.arange(1, n + 1)
        ax.plot(steps, trailing_mean(r.batch_losses[:n], window), lw=1.8, label=r.label, **style)
        if n < len(finite):
            end = (steps[-1], min(trailing_mean(r.batch_losses[:n], window)[-1], top))
            ax.plot(*end, "x", color=style["color"], ms=10, mew=2.5, clip_on=False)
            ax.annotate(
                f"diverged: NaN from step {n + 1}",
                end,
                xytext=(8, -4),
                textcoords="offset points",
                va="top",
                fontsize=9,
                color=style["color"],
            )
    ax.axhline(np.log(10), color="gray", ls=":", lw=1.2)
    ax.text(len(finite), np.log(10), "chance: ln 10 ", ha="right", va="bottom", fontsize=8, color="gray")
    ax.set(
        yscale="log",
        title=title,
        xlabel="step",
        ylabel=f"training cross-entropy (mean of the last {window} mini-batches, log scale)",
    )
    if ax.get_ylim()[1] > top:
        ax.set_ylim(top=top)
    ax.legend(fontsize=8, loc="upper right")


def plot(runs: Sequence[Run], clipped: Run, path: Path, title: str) -> None:
    # Each row on one scale, so that the two activations (and the two loss panels) compare at a glance.
    fig, axes = plt.subplots(2, 2, figsize=(15, 11), layout="constrained", sharey="row")
    (ax_sig, ax_relu), (ax_loss, ax_clip) = axes
    plain = [r for r in runs if r.max_norm is None]
    plot_layer_norms(ax_sig, [r for r in plain if r.activation == "sigmoid"], "sigmoid")
    plot_layer_norms(ax_relu, [r for r in plain if r.activation == "relu"], "relu")
    window = 10
    styles = [{"color": INITS[r.init].color, "ls": "--" if r.activation == "sigmoid" else "-"} for r in plain]
    plot_losses(
        ax_loss, plain, styles, window, "Training loss of every setting (dashed: sigmoid, solid: ReLU)"
    )
    unclipped = next(r for r in plain if (r.activation, r.init) == (clipped.activation, clipped.init))
    styles = [{"color": INITS[clipped.init].color}, {"color": "tab:blue"}]
    plot_losses(ax_clip, [unclipped, clipped], styles, window, "Gradient clipping rescues the exploding run")
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.3)
        ax.yaxis.set_tick_params(labelleft=True)  # sharey hides them on the right: keep them, easier to read
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=15, help="hidden layers (default: 15)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per setting (default: 300)")
    parser.add_argument(
        "--max-norm", type=float, default=5.0, help="clip_by_norm threshold of the rescue run (default: 5)"
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    args = parser.parse_args(argv)
    if args.depth < 1:
        parser.error("--depth must be at least 1")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if not args.max_norm > 0:
        parser.error("--max-norm must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    data = load_digits_split(args.seed)
    print(
        f"digits: {len(data.y_train)} train images; MLP 64-{WIDTH}x{args.depth}-10; SGD lr {LEARNING_RATE} "
        f"momentum {MOMENTUM}, batch {BATCH_SIZE}, {args.steps} steps; seed {args.seed}; "
        f"JAX on {jax.default_backend()}"
    )
    settings = [(act, init, None) for act in ACTIVATIONS for init in INITS]
    settings.append(("relu", "large", args.max_norm))  # the exploding case again, clipped
    with tqdm(total=len(settings) * args.steps, unit="step", dynamic_ncols=True) as bar:
        runs = [train(*s, data, args.depth, args.steps, args.seed, bar) for s in settings]

    print()
    print(table(runs))
    print(
        f"|g|: norm of a layer's weight gradient at the first step. Verdict from gradtx.monitor's flags: "
        f"exploding if the global\ngradient norm passed {EXPLODING:g} (or was not finite) at any step, "
        f"vanishing if any layer's was below {VANISHING:g} at the first step."
    )
    if runs[-1].verdict == "exploding":
        print(
            "The clipped run still reads exploding: the monitor wraps the clipping, so it sees raw gradients."
        )

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "vanishing_exploding.png"
    title = (
        f"{args.depth + 1}-layer MLP on digits, SGD lr {LEARNING_RATE} momentum {MOMENTUM}: "
        f"gradients recorded by gradtx.monitor, seed {args.seed}"
    )
    plot(runs, runs[-1], figure, title)
    results = {
        "settings": vars(args) | {"out": str(args.out), "vanishing": VANISHING, "exploding": EXPLODING},
        "runs": [
            {
                "activation": r.activation,
                "init": r.init,
                "max_norm": r.max_norm,
                "verdict": r.verdict,
                "final_loss": r.final_loss if np.isfinite(r.final_loss) else None,
                "vanishing_leaves": r.vanishing_leaves,
                "exploding_steps": r.exploding_steps,
                "batch_losses": [x if np.isfinite(x) else None for x in r.batch_losses.tolist()],
                "layer_norms": [
                    [x if np.isfinite(x) else None for x in row] for row in r.layer_norms.tolist()
                ],
            }
            for r in runs
        ],
    }
    (args.out / "vanishing_exploding.json").write_text(json.dumps(results))
    print(f"\nwrote {figure} and {args.out / 'vanishing_exploding.json'}")
    return runs


if __name__ == "__main__":
    main()
