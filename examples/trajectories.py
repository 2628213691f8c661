"""Optimizer paths on 2-D test surfaces: why momentum and adaptive steps behave as they do.

The standard picture: each optimizer starts from the same point of a surface
f(x, y) and its iterates are drawn over the contours; a second figure draws
the loss against the step. The parameters are ``{"xy": array of shape (2,)}``,
a pytree like any other. All steps of a run are one ``jax.lax.scan`` under
``jit``: one compile per optimizer and surface, then microseconds a step.

- ``quadratic``, f = (x^2 + 100 y^2) / 2, condition number 100. Near its
  stability limit (lr 2/100) SGD zig-zags across the steep y direction and
  crawls along the flat x one; momentum keeps the speed it builds along x
  (and overshoots); AdaGrad and Adam rescale each coordinate and head
  straight; RMSProp, whose steps stay about lr long, ends circling the minimum.
- ``rosenbrock``, f = (1 - x)^2 + 100 (y - x^2)^2, from (-1.2, 1): everyone
  falls into the curved valley at once; the race is along its floor, where
  the gradient is small. Momentum gets furthest; SGD (whose rate the steep
  walls cap) and AdaGrad (whose steps only shrink) stall halfway.
- ``beale``: a flat region bent around a steep ridge; momentum swings wide,
  Adam ends lowest.
- ``saddle``, f = x^2 + (y^2 - 1)^2 / 8: a saddle at (0, 0) of value 1/8
  between minima at (0, +-1), started 1e-4 off the ridge. Gradient steps,
  with or without momentum, go to the saddle and wait there until the tiny
  y gradient grows; AdaGrad and Adam divide by it and leave at once. L-BFGS
  (``--optimizers lbfgs``) never leaves: near the saddle the decrease its line
  search looks for is below float32's resolution of f.
- ``rotated`` (not drawn by default): the quadratic turned by 45 degrees.
  SGD, momentum and L-BFGS do exactly as before; the per-coordinate methods
  lose their edge, since the steep and flat directions are no longer axes.
  ``--surfaces quadratic,rotated --optimizers sgd,adagrad,adam,adamax``.

Every surface has minimum value 0, so the loss is the gap to the minimum. The
learning rates, per optimizer and surface in ``OPTIMIZERS`` and printed in the
summary, are each method's usual values tuned by hand so that the lesson
shows: stable, and not so small that a method looks slower than it is.

    python examples/trajectories.py
    python examples/trajectories.py --optimizers sgd,momentum,adam,lbfgs --surfaces rosenbrock,saddle
    python examples/trajectories.py --steps 2000 --optimizers adam,nadam,amsgrad,adamax,lion

Writes ``<out>/trajectories.png`` (the paths), ``<out>/trajectories_loss.png``
(loss against step) and ``<out>/trajectories.json`` (points, losses, table).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import gradtx

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from _common import format_table  # noqa: E402  (the examples folder is on sys.path when a script runs)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

# Losses below this are float32 round-off around the minimum: the log-scale plots stop there.
LOSS_FLOOR = 1e-12


@dataclasses.dataclass(frozen=True)
class Surface:
    """A 2-D test function with minimum value 0, and how to draw it.

    Frozen, so hashable: a static argument of the jitted runner.
    """

    title: str
    fn: Callable[[Any, Any], Any]  # f(x, y), elementwise: also evaluates a grid for the contours
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    legend_loc: str  # a corner the paths stay out of
    saddles: tuple[tuple[float, float], ...] = ()  # marked: where gradient methods may wait

    def loss(self, params: Any) -> jax.Array:
        """f at the point held by a parameter pytree (see ``xy``)."""
        x, y = xy(params)
        return self.fn(x, y)

    def distance_to_minimum(self, point: np.ndarray) -> float:
        return float(min(math.dist(point, m) for m in self.minima))

    def frames(self, points: np.ndarray) -> bool:
        """Whether the drawing shows all of ``points`` (False for a path that left, or diverged)."""
        x, y = points[:, 0], points[:, 1]
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        return bool(np.all((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)))


def _quadratic(x, y):
    return 0.5 * (x**2 + 100.0 * y**2)


def _rotated_quadratic(x, y):
    # The same bowl turned by 45 degrees: its steep and flat directions mix both coordinates.
    return _quadratic((x + y) / math.sqrt(2.0), (y - x) / math.sqrt(2.0))


def _rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _saddle(x, y):
    # Curvature +2 along x and -1/2 along y at the saddle: the escape direction is the flatter one.
    # The quartic wall turns x^2 - y^2/4 into a function with minima (of value 0) to escape to.
    return x**2 + 0.125 * (y**2 - 1.0) ** 2


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        "ill-conditioned quadratic  $(x^2 + 100y^2)/2$",
        _quadratic,
        start=(-4.5, 0.6),
        minima=((0.0, 0.0),),
        xlim=(-5.0, 2.0),
        ylim=(-0.8, 0.8),
        legend_loc="lower right",
    ),
    "rotated": Surface(
        "the same quadratic rotated by 45 degrees",
        _rotated_quadratic,
        start=(-5.1 / math.sqrt(2.0), -3.9 / math.sqrt(2.0)),  # the quadratic's start, rotated
        minima=((0.0, 0.0),),
        xlim=(-4.5, 2.0),
        ylim=(-4.0, 2.0),
        legend_loc="lower right",
    ),
    "rosenbrock": Surface(
        "Rosenbrock  $(1-x)^2 + 100(y-x^2)^2$",
        _rosenbrock,
        start=(-1.2, 1.0),
        minima=((1.0, 1.0),),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        legend_loc="lower right",
    ),
    "beale": Surface(
        "Beale",
        _beale,
        start=(0.7, 1.4),
        minima=((3.0, 0.5),),
        xlim=(-1.0, 4.0),
        ylim=(-1.5, 2.0),
        legend_loc="lower left",
    ),
    "saddle": Surface(
        "saddle at (0, 0)  $x^2 + (y^2-1)^2/8$",
        _saddle,
        start=(-1.8, 1e-4),
        minima=((0.0, 1.0), (0.0, -1.0)),
        xlim=(-2.0, 1.0),
        ylim=(-1.5, 1.5),
        legend_loc="lower left",
        saddles=((0.0, 0.0),),
    ),
}


class Entry(NamedTuple):
    label: str
    make: Callable[[float], gradtx.GradientTransformation]
    learning_rates: dict[str, float]  # per surface
    color: str  # the same in every figure; the classic six get the most distinct ones


def _lrs(quadratic: float, rosenbrock: float, beale: float, saddle: float) -> dict[str, float]:
    # The rotated quadratic has the same curvatures as the quadratic: the same rates are stable.
    return {
        "quadratic": quadratic,
        "rotated": quadratic,
        "rosenbrock": rosenbrock,
        "beale": beale,
        "saddle": saddle,
    }


OPTIMIZERS: dict[str, Entry] = {
    "sgd": Entry("SGD", gradtx.sgd, _lrs(0.019, 1.5e-3, 0.03, 0.2), "tab:blue"),
    "momentum": Entry(
        "Momentum", lambda lr: gradtx.sgd(lr, momentum=0.9), _lrs(0.005, 1e-3, 5e-3, 0.02), "tab:orange"
    ),
    "nesterov": Entry(
        "Nesterov",
        lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True),
        _lrs(0.005, 1e-3, 5e-3, 0.02),
        "tab:green",
    ),
    "adagrad": Entry("AdaGrad", gradtx.adagrad, _lrs(0.5, 0.3, 1.0, 0.5), "tab:red"),
    "rmsprop": Entry("RMSProp", gradtx.rmsprop, _lrs(0.02, 0.01, 0.01, 0.01), "tab:purple"),
    "adadelta": Entry("Adadelta", gradtx.adadelta, _lrs(2.0, 1.0, 2.0, 2.0), "tab:brown"),
    "adam": Entry("Adam", gradtx.adam, _lrs(0.1, 0.1, 0.3, 0.1), "tab:pink"),
    "adamax": Entry("AdaMax", gradtx.adamax, _lrs(0.1, 0.3, 0.5, 0.1), "tab:olive"),
    "nadam": Entry("Nadam", gradtx.nadam, _lrs(0.1, 0.1, 0.3, 0.1), "tab:cyan"),
    "amsgrad": Entry("AMSGrad", gradtx.amsgrad, _lrs(0.1, 0.1, 0.3, 0.1), "tab:gray"),
    # Without its default decay, which would pull towards the origin, away from most minima here.
    "lion": Entry("Lion", lambda lr: gradtx.lion(lr, weight_decay=0.0), _lrs(0.02, 0.01, 0.05, 0.02), "gold"),
    # The line search picks the step; the learning rate only scales it, so 1 everywhere.
    "lbfgs": Entry("L-BFGS", lambda lr: gradtx.lbfgs(lr), _lrs(1.0, 1.0, 1.0, 1.0), "black"),
}
DEFAULT_SURFACES = ["quadratic", "rosenbrock", "beale", "saddle"]  # a 2x2 grid; "rotated" on request
CLASSIC = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]

EvalParams = Callable[[Any, Any], Any]  # (optimizer state, params) -> the params to draw


def xy(params: Any) -> jax.Array:
    """The two coordinates held by a parameter pytree, whatever its leaves' shapes."""
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(params)])


@functools.partial(jax.jit, static_argnames=("tx", "surface", "steps", "shape", "eval_params"))
def _scan_path(
    tx: gradtx.GradientTransformation,
    surface: Surface,
    start: jax.Array,
    steps: int,
    shape: tuple[int, ...],
    eval_params: EvalParams | None,
) -> jax.Array:
    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(surface.loss)(params)
        # L-BFGS's line search reads value, grad and value_fn; the others ignore them.
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=surface.loss)
        params = gradtx.apply_updates(params, updates)
        shown = params if eval_params is None else eval_params(state, params)
        return (params, state), xy(shown)

    # One array in a dict: gradtx.partition (inside muon) fails on a tree that is a bare array.
    params = {"xy": jnp.reshape(start, shape)}
    _, points = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    return jnp.concatenate([start[None], points])


def run_trajectory(
    tx: gradtx.GradientTransformation,
    surface: Surface,
    start: Sequence[float] | None = None,
    steps: int = 500,
    *,
    shape: tuple[int, ...] = (2,),
    eval_params: EvalParams | None = None,
) -> np.ndarray:
    """The ``(steps + 1, 2)`` points visited by ``tx`` on ``surface``, the start first.

    Args:
        tx: the optimizer; one ``update`` per step, with the gradient of f at the
            current parameters (and ``value``/``grad``/``value_fn`` for line searches).
        surface: one of ``SURFACES``.
        start: the initial point; ``None`` uses the surface's.
        steps: the number of optimizer steps.
        shape: the shape of the parameter array holding (x, y), the one leaf of the
            parameters ``{"xy": array}``: ``(1, 2)`` makes it a matrix, for
            optimizers that treat matrices differently (Muon).
        eval_params: ``fn(state, params)`` giving the point to draw when it is not
            the parameters, e.g. ``gradtx.schedule_free_eval_params``.
    """
    start = jnp.asarray(surface.start if start is None else start, jnp.float32)
    return np.asarray(_scan_path(tx, surface, start, steps, shape, eval_params))


def losses_along(surface: Surface, points: np.ndarray) -> np.ndarray:
    """f at each point, in float64 (points off to infinity give inf, not an error)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(surface.fn(points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)))


class Run(NamedTuple):
    surface: str
    optimizer: str
    learning_rate: float
    points: np.ndarray
    losses: np.ndarray

    @property
    def final_distance(self) -> float:
        return SURFACES[self.surface].distance_to_minimum(self.points[-1])

    def steps_to(self, loss: float) -> int | None:
        """The first step at which f is below ``loss``, or None."""
        below = np.flatnonzero(self.losses < loss)
        return int(below[0]) if below.size else None


def run(surface: str, name: str, steps: int) -> Run:
    entry = OPTIMIZERS[name]
    lr = entry.learning_rates[surface]
    points = run_trajectory(entry.make(lr), SURFACES[surface], steps=steps)
    return Run(surface, name, lr, points, losses_along(SURFACES[surface], points))


def table(runs: Sequence[Run]) -> str:
    headers = ["surface", "optimizer", "lr", "final loss", "distance to min", "steps to loss < 1e-3"]
    rows = []
    for r in runs:
        reached = r.steps_to(1e-3)
        rows.append(
            [
                r.surface,
                OPTIMIZERS[r.optimizer].label,
                f"{r.learning_rate:g}",
                f"{r.losses[-1]:.3g}",
                f"{r.final_distance:.3g}",
                "-" if reached is None else str(reached),
            ]
        )
    return format_table(headers, rows)


def draw_contours(ax: Axes, surface: Surface, resolution: int = 300) -> None:
    """The surface's contours, its start, minima and saddle points marked."""
    xx, yy = np.meshgrid(np.linspace(*surface.xlim, resolution), np.linspace(*surface.ylim, resolution))
    zz = surface.fn(xx, yy)
    # Log-spaced levels show valley floors and basins; down to 1e-3, not into float noise.
    levels = np.geomspace(max(zz.min(), 1e-3), zz.max(), 25)
    ax.contourf(xx, yy, zz, levels=levels, norm=LogNorm(), cmap="Greys", alpha=0.15)
    ax.contour(xx, yy, zz, levels=levels, norm=LogNorm(), colors="0.55", linewidths=0.5)
    ax.plot(*surface.start, "o", color="black", markersize=8, zorder=5, label="start")
    for i, minimum in enumerate(surface.minima):
        label = "minimum" if i == 0 else None
        ax.plot(*minimum, "*", color="gold", markeredgecolor="black", markersize=16, zorder=5, label=label)
    for i, saddle in enumerate(surface.saddles):
        label = "saddle point" if i == 0 else None
        ax.plot(*saddle, "X", color="white", markeredgecolor="black", markersize=11, zorder=5, label=label)
    ax.plot([], [], "s", color="white", markeredgecolor="black", label="end of a path")  # legend key only
    ax.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="x", ylabel="y")


def draw_path(
    ax: Axes, points: np.ndarray, label: str | None, color: Any, width: float = 1.4, **style
) -> None:
    """A path as a line through small dots, one dot per step (so step sizes show), its end a square."""
    ax.plot(*points.T, marker="o", markersize=width + 1, linewidth=width, color=color, label=label, **style)
    ax.plot(*points[-1], "s", color=color, markeredgecolor="black", markersize=7, zorder=4)


def save_png(fig: plt.Figure, path: Path, dpi: int = 100) -> None:
    """Saves ``fig`` as a PNG with a 256-colour palette: flat fills and lines lose nothing
    visible, and the file is a quarter of the size (the docs keep copies of these figures)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB")
    image = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    image.save(path, optimize=True)
    plt.close(fig)


def _grid(n: int, height: float) -> tuple[plt.Figure, np.ndarray]:
    """Up to two panels a row, spare axes hidden."""
    ncols = min(2, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(7 * ncols, height * nrows), layout="constrained", squeeze=False
    )
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()[:n]


def _label(r: Run) -> str:
    return f"{OPTIMIZERS[r.optimizer].label} (lr {r.learning_rate:g})"


def plot_paths(runs: Sequence[Run], surfaces: Sequence[str], path: Path, steps: int) -> None:
    fig, axes = _grid(len(surfaces), 5.6)
    for ax, name in zip(axes, surfaces):
        surface = SURFACES[name]
        draw_contours(ax, surface)
        here = [r for r in runs if r.surface == name]
        for i, r in enumerate(here):
            # Paths often share a valley: the ones drawn first are wider, so they still show at the edges.
            width = 1.2 + 2.0 * (len(here) - 1 - i) / max(len(here) - 1, 1)
            draw_path(ax, r.points, _label(r), OPTIMIZERS[r.optimizer].color, width, alpha=0.85)
        ax.set_title(surface.title)
        ax.legend(loc=surface.legend_loc, fontsize=8, framealpha=0.9)
    fig.suptitle(f"Optimizer paths: {steps} steps from the same start, one dot per step")
    save_png(fig, path)


def plot_losses(runs: Sequence[Run], surfaces: Sequence[str], path: Path, steps: int) -> None:
    fig, axes = _grid(len(surfaces), 4.4)
    for ax, name in zip(axes, surfaces):
        here = [r for r in runs if r.surface == name]
        for r in here:
            color = OPTIMIZERS[r.optimizer].color
            ax.plot(np.maximum(r.losses, LOSS_FLOOR), label=_label(r), color=color, linewidth=1.6)
        lowest = min(np.nanmin(np.maximum(r.losses, LOSS_FLOOR)) for r in here)
        ax.set(
            yscale="log",
            title=SURFACES[name].title,
            xlabel="step",
            ylabel="loss f = gap to the minimum (log scale)",
            ylim=(lowest / 3, None),
        )
        for i, saddle in enumerate(SURFACES[name].saddles):
            label = "f at the saddle point" if i == 0 else None
            ax.axhline(SURFACES[name].fn(*saddle), color="black", linestyle=":", linewidth=1.2, label=label)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    fig.suptitle(f"Loss against step, {steps} steps (below {LOSS_FLOOR:g}: float32 round-off, drawn at it)")
    save_png(fig, path)


def _names(text: str) -> list[str]:
    names = (name.strip().lower() for name in text.split(","))
    return list(dict.fromkeys(name for name in names if name))  # in order, once each


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--optimizers",
        default=",".join(CLASSIC),
        help=f"comma-separated names from: {', '.join(OPTIMIZERS)} (default: {','.join(CLASSIC)})",
    )
    parser.add_argument(
        "--surfaces",
        default=",".join(DEFAULT_SURFACES),
        help=f"comma-separated names from: {', '.join(SURFACES)} (default: {','.join(DEFAULT_SURFACES)})",
    )
    parser.add_argument("--steps", type=int, default=500, help="steps per run (default: 500)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    args = parser.parse_args(argv)
    for flag, known in (("optimizers", OPTIMIZERS), ("surfaces", SURFACES)):
        names = _names(getattr(args, flag))
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            parser.error(f"unknown {flag[:-1]}(s) {unknown}; choose from {', '.join(known)}")
        setattr(args, flag, names)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    print(
        f"{len(args.optimizers)} optimizers x {len(args.surfaces)} surfaces, {args.steps} steps each, "
        f"float32, JAX on {jax.default_backend()}"
    )
    pairs = [(surface, name) for surface in args.surfaces for name in args.optimizers]
    runs = []
    with tqdm(pairs, unit="run", dynamic_ncols=True) as bar:
        for surface, name in bar:
            bar.set_description(f"{surface:>10} {OPTIMIZERS[name].label:>8}")
            runs.append(run(surface, name, args.steps))

    print()
    print(table(runs))
    print("Every surface's minimum value is 0; distance is to the nearest minimum.")
    outside = [
        f"{OPTIMIZERS[r.optimizer].label} on {r.surface}"
        for r in runs
        if not SURFACES[r.surface].frames(r.points)
    ]
    if outside:
        print(f"Paths that leave the drawn area (all points are in the JSON): {', '.join(outside)}.")

    args.out.mkdir(parents=True, exist_ok=True)
    paths, losses = args.out / "trajectories.png", args.out / "trajectories_loss.png"
    plot_paths(runs, args.surfaces, paths, args.steps)
    plot_losses(runs, args.surfaces, losses, args.steps)
    results = {
        "settings": {"steps": args.steps, "surfaces": args.surfaces, "optimizers": args.optimizers},
        "runs": [
            {
                "surface": r.surface,
                "optimizer": r.optimizer,
                "learning_rate": r.learning_rate,
                "final_loss": float(r.losses[-1]),
                "distance_to_minimum": r.final_distance,
                "points": r.points.tolist(),
                "losses": r.losses.tolist(),
            }
            for r in runs
        ],
    }
    data = args.out / "trajectories.json"
    data.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {paths}, {losses} and {data}")
    return runs


if __name__ == "__main__":
    main()
