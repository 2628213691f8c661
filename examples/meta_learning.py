"""Meta-learning the learning rate: differentiate the validation loss through K optimizer steps.

In gradtx the learning rate is an array in the optimizer state, so a training
run of K steps (``jax.lax.scan`` of ``tx.update``) is an ordinary differentiable
function of it: set a traced value with ``gradtx.set_hyperparam`` and
``jax.grad`` gives the *hypergradient* d(validation loss after K steps) / d(lr).
The script trains a 64-32-10 tanh MLP on scikit-learn's bundled 8x8 digits
(full-batch SGD + momentum, K = 20 steps) and

1. sweeps the learning rate over a grid, drawing the hypergradient's tangent
   line at a few points, and checks it against a central finite difference;
2. runs hypergradient descent on log(lr) from a too-small learning rate (the
   outer optimizer is gradtx too: clip + SGD with momentum); it walks to the
   grid's minimum.

    python examples/meta_learning.py
    python examples/meta_learning.py --inner-steps 50 --outer-steps 40 --init-lr 0.001

Writes ``<out>/meta_learning.png`` and ``<out>/meta_learning.json`` (the grid,
the checks and the outer loop's path).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import gradtx

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from _common import Split, cross_entropy, format_table, load_digits_split  # noqa: E402  (examples is on sys.path)

MOMENTUM = 0.9
# The placeholder learning rate is replaced, traced, in every run: it is state, not configuration.
TX = gradtx.sgd(1.0, momentum=MOMENTUM)
GRID = np.geomspace(1e-3, 10.0, 41)  # learning rates of the sweep
FD_STEP = 3e-3  # central difference step in log(lr): float32 noise grows below it, curvature error above


class TanhMLP(nn.Module):
    """64-32-10 with tanh, not ReLU: ReLU's kinks make the loss after K steps only piecewise smooth in
    the learning rate, so finite differences would not converge to its derivative."""

    hidden: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(10)(jnp.tanh(nn.Dense(self.hidden)(x)))


MODEL = TanhMLP()


def loss_fn(params, x: jax.Array, y: jax.Array) -> jax.Array:
    return cross_entropy(MODEL.apply(params, x), y)


def val_loss_after(log_lr: jax.Array, params, data: Split, inner_steps: int) -> jax.Array:
    """The validation loss after ``inner_steps`` full-batch steps at learning rate ``exp(log_lr)``."""
    opt_state = gradtx.set_hyperparam(TX.init(params), "learning_rate", jnp.exp(log_lr))

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params, data.x_train, data.y_train)
        updates, opt_state = TX.update(grads, opt_state, params)
        return (gradtx.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, opt_state), length=inner_steps)
    return loss_fn(params, data.x_val, data.y_val)


# One compile serves the sweep, the checks and the outer loop: only log_lr's value changes.
@functools.partial(jax.jit, static_argnames="inner_steps")
def value_and_hypergrad(log_lr, params, data, inner_steps):
    """The validation loss after K steps and its derivative with respect to log(lr)."""
    return jax.value_and_grad(val_loss_after)(log_lr, params, data, inner_steps)


class Check(NamedTuple):
    lr: float
    loss: float
    hypergrad: float  # d loss / d log(lr), by jax.grad through the K steps
    finite_diff: float  # the same by a central difference

    @property
    def rel_error(self) -> float:
        return abs(self.hypergrad - self.finite_diff) / abs(self.finite_diff)


def check(log_lr: float, evaluate, bar) -> Check:
    loss, hypergrad = evaluate(log_lr)
    above, _ = evaluate(log_lr + FD_STEP)
    below, _ = evaluate(log_lr - FD_STEP)
    bar.update(3)
    return Check(np.exp(log_lr), float(loss), float(hypergrad), float((above - below) / (2 * FD_STEP)))


class Outer(NamedTuple):
    lrs: np.ndarray  # the learning rate at each outer iteration, before its update
    losses: np.ndarray  # the validation loss after K steps at that learning rate
    hypergrads: np.ndarray


def hypergradient_descent(log_lr: float, steps: int, outer_lr: float, evaluate, bar) -> Outer:
    """Gradient descent with momentum on log(lr), the hypergradient clipped to [-1, 1].

    log(lr), since the loss changes on the scale of lr itself: a step of 0.1 is a 10% change at any lr.
    Plain gradient descent, since its steps shrink with the slope and it settles in the minimum (Adam's
    normalised steps keep their size on the flat bottom and overshoot it). The clip, since past the
    stability limit the hypergradient explodes: no outer step multiplies lr by more than e.
    """
    outer = gradtx.chain(gradtx.clip(1.0), gradtx.sgd(outer_lr, momentum=0.5))
    outer_update = jax.jit(outer.update)  # one compile rather than a dozen small ops run one by one
    u = jnp.asarray(log_lr, jnp.float32)
    state = outer.init(u)
    lrs, losses, hypergrads = [], [], []
    for t in range(steps + 1):  # the last evaluation scores the final learning rate
        loss, g = evaluate(u)
        lrs.append(float(jnp.exp(u)))
        losses.append(float(loss))
        hypergrads.append(float(g))
        if t < steps:
            updates, state = outer_update(g, state)
            u = gradtx.apply_updates(u, updates)
        bar.set_postfix(lr=f"{lrs[-1]:.3g}", val_loss=f"{losses[-1]:.3f}")
        bar.update()
    return Outer(np.asarray(lrs), np.asarray(losses), np.asarray(hypergrads))


def tangent_indices(losses: np.ndarray, best: int) -> list[int]:
    """Three grid points spread from the smallest learning rate towards the best one, and one past it.

    Not at the minimum itself, where the slope is about 0 and a relative error means nothing, nor far
    past it, where the loss turns so sharply that a finite difference is no longer a good reference.
    """
    past = min(best + 3, int(np.flatnonzero(np.isfinite(losses)).max()))
    return sorted({*np.linspace(0, best, 4)[:-1].round().astype(int).tolist(), past})


def plot(
    grid_losses: np.ndarray,
    checks: Sequence[Check],
    outer: Outer,
    best: int,
    path: Path,
    title: str,
) -> None:
    fig, (ax_grid, ax_outer) = plt.subplots(1, 2, figsize=(15, 6), layout="constrained")

    ax_grid.plot(
        GRID, grid_losses, "o-", color="black", ms=3.5, lw=1.5, label="validation loss after K steps"
    )
    for i, c in enumerate(checks):  # tangent lines, straight on a log-lr axis since the slope is per log(lr)
        u = np.log(c.lr) + np.linspace(-0.9, 0.9, 2)
        label = "hypergradient tangent (d loss / d log lr)" if i == 0 else None
        ax_grid.plot(
            np.exp(u), c.loss + c.hypergrad * (u - np.log(c.lr)), "-", color="tab:red", lw=2, label=label
        )
        ax_grid.plot(c.lr, c.loss, "o", color="tab:red", ms=7)
        ax_grid.annotate(
            f"slope {c.hypergrad:.3g}\nFD {c.finite_diff:.3g}",
            (c.lr, c.loss),
            xytext=(6, 8) if c.lr < GRID[best] else (0, 12),  # right of the minimum: clear of the climb
            ha="left" if c.lr < GRID[best] else "center",
            textcoords="offset points",
            fontsize=8,
            color="tab:red",
        )
    ax_grid.plot(
        GRID[best], grid_losses[best], "*", color="tab:green", ms=16, label=f"grid best: lr {GRID[best]:.3g}"
    )
    ax_grid.plot(
        outer.lrs,
        outer.losses,
        "o",
        mfc="none",
        mec="tab:blue",
        ms=7,
        mew=1.2,
        zorder=3,
        label="hypergradient descent path",
    )
    ax_grid.plot(
        outer.lrs[-1],
        outer.losses[-1],
        "D",
        color="tab:blue",
        ms=7,
        zorder=4,
        label=f"found: lr {outer.lrs[-1]:.3g}",
    )
    start = np.nanmax(grid_losses[: best + 1])
    ax_grid.set(
        xscale="log",
        ylim=(0, 1.15 * start),  # past the stability limit the loss explodes: off the chart
        title="Validation loss after K steps, as a function of the learning rate",
        xlabel="learning rate (log scale)",
        ylabel="validation cross-entropy after K steps",
    )
    ax_grid.legend(fontsize=9, loc="upper center")

    iterations = np.arange(len(outer.lrs))
    ax_outer.plot(iterations, outer.lrs, "o-", color="tab:blue", ms=4, label="learning rate")
    ax_outer.axhline(GRID[best], color="tab:green", ls="--", label=f"grid best lr {GRID[best]:.3g}")
    ax_outer.set(
        yscale="log",
        title="Hypergradient descent on log(lr): the outer loop",
        xlabel="outer iteration",
    )
    ax_outer.set_ylabel("learning rate (log scale)", color="tab:blue")
    ax_loss = ax_outer.twinx()
    ax_loss.plot(
        iterations, outer.losses, "s-", color="tab:orange", ms=3.5, label="validation loss after K steps"
    )
    ax_loss.axhline(
        grid_losses[best], color="tab:orange", ls=":", label=f"grid best loss {grid_losses[best]:.3g}"
    )
    ax_loss.set_ylabel("validation cross-entropy after K steps", color="tab:orange")
    handles = [h for ax in (ax_outer, ax_loss) for h in ax.get_legend_handles_labels()[0]]
    ax_outer.legend(handles=handles, fontsize=9, loc="center right")
    for ax in (ax_grid, ax_outer):
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inner-steps", type=int, default=20, help="K, training steps per run (default: 20)")
    parser.add_argument("--outer-steps", type=int, default=30, help="hypergradient steps (default: 30)")
    parser.add_argument("--init-lr", type=float, default=0.01, help="starting learning rate (default: 0.01)")
    parser.add_argument(
        "--outer-lr", type=float, default=1.0, help="learning rate of the outer loop on log(lr) (default: 1)"
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initial weights")
    args = parser.parse_args(argv)
    if args.inner_steps < 1 or args.outer_steps < 1:
        parser.error("--inner-steps and --outer-steps must be at least 1")
    if not args.init_lr > 0 or not args.outer_lr > 0:
        parser.error("--init-lr and --outer-lr must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    data = Split(*map(jnp.asarray, load_digits_split(args.seed)))
    # Every run starts here. The "rbg" generator compiles several times faster on CPU than threefry.
    params = jax.jit(MODEL.init)(jax.random.key(args.seed, impl="rbg"), data.x_train[:1])
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_val)} val images; MLP 64-32-10 tanh; "
        f"K = {args.inner_steps} full-batch steps of SGD momentum {MOMENTUM}; seed {args.seed}; "
        f"JAX on {jax.default_backend()}"
    )

    def evaluate(log_lr):
        log_lr = jnp.asarray(log_lr, jnp.float32)  # one dtype and weak type, so one compile
        return value_and_hypergrad(log_lr, params, data, inner_steps=args.inner_steps)

    # A bar over training runs of K steps: the sweep, 3 per check, the outer loop.
    with tqdm(total=len(GRID) + args.outer_steps + 1, unit="run", dynamic_ncols=True) as bar:
        bar.set_description("lr sweep")
        grid_losses = []
        for lr in GRID:
            grid_losses.append(float(evaluate(np.log(lr))[0]))
            bar.update()
        grid_losses = np.asarray(grid_losses)
        best = int(np.nanargmin(np.where(np.isfinite(grid_losses), grid_losses, np.nan)))
        at = tangent_indices(grid_losses, best)
        bar.total += 3 * len(at)
        bar.set_description("FD checks")
        checks = [check(np.log(GRID[i]), evaluate, bar) for i in at]
        bar.set_description("outer loop")
        outer = hypergradient_descent(np.log(args.init_lr), args.outer_steps, args.outer_lr, evaluate, bar)

    print()
    print(
        format_table(
            ["learning rate", "from", "lr", "val loss"],
            [
                ["initial", "--init-lr", f"{outer.lrs[0]:.4g}", f"{outer.losses[0]:.4f}"],
                [
                    "found",
                    f"after {args.outer_steps} outer steps",
                    f"{outer.lrs[-1]:.4g}",
                    f"{outer.losses[-1]:.4f}",
                ],
                [
                    "grid best",
                    f"of {len(GRID)} lrs in [{GRID[0]:g}, {GRID[-1]:g}]",
                    f"{GRID[best]:.4g}",
                    f"{grid_losses[best]:.4f}",
                ],
            ],
        )
    )
    print()
    print(
        format_table(
            ["lr", "val loss", "hypergradient", "finite difference", "rel error"],
            [
                [
                    f"{c.lr:.4g}",
                    f"{c.loss:.4f}",
                    f"{c.hypergrad:.6g}",
                    f"{c.finite_diff:.6g}",
                    f"{c.rel_error:.1e}",
                ]
                for c in checks
            ],
        )
    )
    max_error = max(c.rel_error for c in checks)
    print(
        f"Hypergradient = d(val loss)/d(log lr) by jax.grad through the {args.inner_steps} steps; finite "
        f"difference: central,\nstep {FD_STEP:g} in log(lr), float32. Largest relative error: "
        f"{max_error:.1e}."
    )

    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "meta_learning.png"
    title = (
        f"Meta-learning the learning rate: digits, tanh MLP, K = {args.inner_steps} steps of SGD "
        f"momentum {MOMENTUM}, seed {args.seed}"
    )
    plot(grid_losses, checks, outer, best, figure, title)
    results = {
        "settings": vars(args) | {"out": str(args.out), "fd_step": FD_STEP},
        "grid": {
            "lrs": GRID.tolist(),
            "val_losses": [x if np.isfinite(x) else None for x in grid_losses.tolist()],
        },
        "grid_best_lr": float(GRID[best]),
        "checks": [c._asdict() | {"rel_error": c.rel_error} for c in checks],
        "outer": {k: v.tolist() for k, v in outer._asdict().items()},
        "max_rel_error": max_error,
    }
    (args.out / "meta_learning.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {figure} and {args.out / 'meta_learning.json'}")
    return results


if __name__ == "__main__":
    main()
