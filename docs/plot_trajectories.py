"""Draws one small figure per public gradtx optimizer into docs/img/trajectories/<name>.png.

Each figure has two panels, the ill-conditioned quadratic and the Rosenbrock
valley of ``examples/trajectories.py`` (whose surfaces and runner it imports):
the optimizer's path in colour over the contours, plain SGD (Adam on SGD's own
page) faint in grey for comparison, and a one-line caption where a 2-D toy
needs a word of warning. Run from the repository root::

    python docs/plot_trajectories.py            # all of them, a minute or two
    python docs/plot_trajectories.py adam lion  # just these
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import matplotlib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))  # the surfaces and the runner live with the example

import gradtx  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import trajectories as T  # noqa: E402, N812

OUT = Path(__file__).parent / "img" / "trajectories"
# Muon's AdamW group owns no leaf of a 1x2 matrix, and gradtx.partition warns about it: expected here.
warnings.filterwarnings("ignore", message="partition: no parameter is labelled")
STEPS = 500
PANELS = {"quadratic": "ill-conditioned quadratic $(x^2 + 100y^2)/2$", "rosenbrock": "Rosenbrock"}


def _normalise(updates: Any, params: Any) -> Any:
    """g / ||g||: SAM's ascent direction, so that sgd(rho) moves a distance rho."""
    return gradtx.tree.scale(1.0 / (gradtx.tree.norm(updates) + 1e-12), updates)


class Spec(NamedTuple):
    """How to draw one optimizer: a factory of its learning rate, and that rate on each panel."""

    make: Callable[[float], gradtx.GradientTransformation]
    learning_rates: tuple[float, float]  # on PANELS, in order
    note: str = ""  # the caption: what the toy shows or hides
    lr_text: str = ""  # the title's words for the step size, if not "learning rate <lr>"
    shape: tuple[int, ...] = (2,)  # of the parameter array holding (x, y)
    eval_params: T.EvalParams | None = None
    calls_per_step: int = 1  # SAM: an ascent and a descent call make one step


def _no_lr(make: Callable[[], gradtx.GradientTransformation]) -> Callable[[float], Any]:
    return lambda lr: make()


# Captions shared by several figures.
NORM = "Steps scale with the parameters' norm: they shrink near the origin (the quadratic's minimum)."
SIGN = (
    "Sign steps move diagonally by exactly lr: they zig-zag across the curved valley and around the minimum."
)
SCHEDULE_FREE = (
    "Drawn: the averaged point x_t (gradtx.schedule_free_eval_params); the gradients are taken elsewhere."
)
# Diagonal preconditioners are flattered by a quadratic whose steep and flat directions are the axes.
AXES = "Per-coordinate scaling suits this quadratic, whose steep and flat directions are the x and y axes."

SPECS: dict[str, Spec] = {
    "sgd": Spec(
        gradtx.sgd, (0.019, 1.5e-3), "Near the largest stable rate (2/100 on the quadratic): it zig-zags."
    ),
    "noisy_sgd": Spec(
        gradtx.noisy_sgd, (0.019, 1.5e-3), "SGD plus Gaussian gradient noise of variance 0.01/(1+t)^0.55."
    ),
    "aggmo": Spec(gradtx.aggmo, (2e-3, 1e-3), "Three heavy-ball velocities (beta 0, 0.9, 0.99), averaged."),
    "adagrad": Spec(
        gradtx.adagrad,
        (0.5, 0.3),
        "The sum of squared gradients only grows: steps shrink in the long valley.",
    ),
    "rmsprop": Spec(
        gradtx.rmsprop,
        (0.02, 0.01),
        "Without a decaying lr, steps stay about lr long: it ends circling the minimum.",
    ),
    "adadelta": Spec(
        gradtx.adadelta, (2.0, 1.0), "Steps start at lr * sqrt(eps) = lr * 1e-3 and grow slowly."
    ),
    "adam": Spec(gradtx.adam, (0.1, 0.1), AXES),
    "adamw": Spec(
        gradtx.adamw, (0.1, 0.1), "The default decay (1e-4) pulls towards the origin, too weakly to show."
    ),
    "adamax": Spec(gradtx.adamax, (0.1, 0.3), AXES),
    "nadam": Spec(gradtx.nadam, (0.1, 0.1), AXES),
    "amsgrad": Spec(
        gradtx.amsgrad,
        (0.1, 0.1),
        "The running max of the second moment keeps steps short after a steep start.",
    ),
    "qhadam": Spec(gradtx.qhadam, (0.1, 0.1), AXES),
    "adabelief": Spec(gradtx.adabelief, (0.1, 0.1), AXES),
    "radam": Spec(
        gradtx.radam,
        (0.02, 5e-3),
        "Its first 5 steps are momentum-SGD steps (the jumps): lr must suit SGD too.",
    ),
    "yogi": Spec(gradtx.yogi, (0.1, 0.1), AXES),
    "lamb": Spec(gradtx.lamb, (0.1, 0.1), NORM),
    "lars": Spec(
        gradtx.lars,
        (10.0, 10.0),
        "Steps of lr * 1e-3 (trust coefficient) * |params|, carried past the origin by momentum.",
    ),
    "novograd": Spec(
        gradtx.novograd,
        (0.01, 3e-3),
        "One second moment for all of (x, y): normalised-gradient steps, with momentum.",
    ),
    "fromage": Spec(gradtx.fromage, (0.1, 0.1), NORM),
    "sm3": Spec(
        gradtx.sm3, (1.0, 3.0), "On a vector the cover sets are the single entries: AdaGrad with momentum."
    ),
    "adafactor": Spec(
        gradtx.adafactor,
        (0.3, 0.3),
        "Too small to factor. Steps scale with RMS(params), so shrink near the origin.",
    ),
    "lbfgs": Spec(
        _no_lr(gradtx.lbfgs),
        (1.0, 1.0),
        "One step is a line search: several function and gradient evaluations.",
        lr_text="step from a strong-Wolfe line search",
    ),
    "adan": Spec(gradtx.adan, (0.1, 0.1), AXES),
    "ademamix": Spec(
        gradtx.ademamix,
        (0.1, 0.1),
        "The slow momentum (b3 = 0.9999) keeps pushing after the fast one settles.",
    ),
    "adopt": Spec(gradtx.adopt, (0.1, 0.3), AXES),
    "rprop": Spec(
        gradtx.rprop,
        (0.01, 0.01),
        "Per-coordinate step sizes: x1.2 while a gradient keeps its sign, x0.5 when it flips.",
    ),
    "muon": Spec(
        gradtx.muon,
        (0.03, 0.01),
        "(x, y) as a 1x2 matrix: orthogonalising a rank-1 matrix normalises it; steps have a fixed length.",
        shape=(1, 2),
    ),
    "prodigy": Spec(
        gradtx.prodigy, (1.0, 1.0), "lr multiplies the estimated step size d, which grows from 1e-6."
    ),
    "schedule_free_sgd": Spec(
        gradtx.schedule_free_sgd, (0.02, 5e-3), SCHEDULE_FREE, eval_params=gradtx.schedule_free_eval_params
    ),
    "schedule_free_adamw": Spec(
        gradtx.schedule_free_adamw, (0.1, 0.1), SCHEDULE_FREE, eval_params=gradtx.schedule_free_eval_params
    ),
    "lion": Spec(
        lambda lr: gradtx.lion(lr, weight_decay=0.0),
        (0.02, 0.01),
        "Sign steps of exactly lr (no weight decay here): they zig-zag across the valley and the minimum.",
    ),
    "sign_sgd": Spec(gradtx.sign_sgd, (0.04, 3e-3), SIGN),
    "signum": Spec(gradtx.signum, (0.04, 0.01), SIGN),
    "sam": Spec(
        lambda lr: gradtx.sam(gradtx.sgd(lr), gradtx.chain(gradtx.stateless(_normalise), gradtx.sgd(0.05))),
        (0.01, 1.5e-3),
        "sam(sgd(lr), normalise + sgd(0.05)): 2 gradients a step. A fixed rho keeps it off a sharp minimum.",
        calls_per_step=2,
    ),
}


def path_of(spec: Spec, surface: str, lr: float, steps: int = STEPS) -> np.ndarray:
    """The points drawn for ``spec`` on ``surface``: one per optimizer step."""
    points = T.run_trajectory(
        spec.make(lr),
        T.SURFACES[surface],
        steps=steps * spec.calls_per_step,
        shape=spec.shape,
        eval_params=spec.eval_params,
    )
    return points[:: spec.calls_per_step]


def _lr_text(spec: Spec) -> str:
    if spec.lr_text:
        return spec.lr_text
    a, b = spec.learning_rates
    return f"learning rate {a:g}" if a == b else f"learning rate {a:g} (quadratic), {b:g} (Rosenbrock)"


def plot(name: str, spec: Spec, reference: str, path: Path) -> None:
    ref = SPECS[reference]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
    # A fixed layout, top to bottom: title, legend, panel titles, panels, caption.
    fig.subplots_adjust(left=0.07, right=0.985, top=0.78, bottom=0.17, wspace=0.2)
    for ax, (surface, title), lr, ref_lr in zip(
        axes, PANELS.items(), spec.learning_rates, ref.learning_rates, strict=True
    ):
        s = T.SURFACES[surface]
        T.draw_contours(ax, s, resolution=150)
        ours, theirs = path_of(spec, surface, lr), path_of(ref, surface, ref_lr)
        T.draw_path(ax, theirs, reference, "0.5", 1.0, alpha=0.6)
        T.draw_path(ax, ours, name, "tab:red", 1.4, alpha=0.9)
        f_ours, f_ref = T.losses_along(s, ours)[-1], T.losses_along(s, theirs)[-1]
        ax.set_title(
            f"{title}\nfinal f: {name} {f_ours:.2g}, {reference} (lr {ref_lr:g}) {f_ref:.2g}", fontsize=9
        )
        ax.tick_params(labelsize=8)
    fig.suptitle(f"gradtx.{name}: {_lr_text(spec)}; {STEPS} steps", y=0.985, fontsize=12)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.93),
        ncol=len(labels),
        fontsize=9,
        frameon=False,
    )
    fig.text(0.5, 0.015, spec.note, ha="center", va="bottom", fontsize=9, style="italic")
    T.save_png(fig, path, dpi=80)


def public_optimizers() -> list[str]:
    """gradtx's optimizers, read from the package: the names imported from gradtx._optimizers."""
    return sorted(
        name
        for name, obj in vars(gradtx).items()
        if getattr(obj, "__module__", "").startswith("gradtx._optimizers")
    )


def main(argv: Sequence[str]) -> None:
    missing = sorted(set(public_optimizers()) - set(SPECS))
    if missing:
        raise SystemExit(f"no figure settings for {missing}: add them to SPECS")
    names = list(argv) or list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise SystemExit(f"unknown optimizer(s) {unknown}; choose from {', '.join(SPECS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name in names:
        path = OUT / f"{name}.png"
        plot(name, SPECS[name], "adam" if name == "sgd" else "sgd", path)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e3:.0f} kB)")
    print(f"{len(names)} figures in {time.perf_counter() - start:.0f} s on {jax.default_backend()}")


if __name__ == "__main__":
    main(sys.argv[1:])
