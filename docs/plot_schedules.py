"""Draws every schedule in gradtx.schedules (and reduce_on_plateau) into docs/img/schedules.png.

Run from the repository root: ``python docs/plot_schedules.py``.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gradtx  # noqa: E402
from gradtx import schedules as S  # noqa: E402, N812

STEPS = 1000
OUT = pathlib.Path(__file__).parent / "img" / "schedules.png"

# (title, code shown under the title, a schedule or {legend label: schedule})
PANELS = [
    ("constant", "constant(1.0)", S.constant(1.0)),
    ("linear", "linear(1.0, 0.1, 600, transition_begin=200)", S.linear(1.0, 0.1, 600, 200)),
    ("polynomial", "polynomial(1.0, 0.0, power=2, 800)", S.polynomial(1.0, 0.0, 2.0, 800)),
    (
        "exponential_decay",
        "exponential_decay(1.0, 100, 0.7, ...)",
        {
            "continuous": S.exponential_decay(1.0, 100, 0.7),
            "staircase=True, end_value=0.1": S.exponential_decay(
                1.0, 100, 0.7, staircase=True, end_value=0.1
            ),
        },
    ),
    (
        "cosine_decay",
        "cosine_decay(1.0, 800, alpha=0.1, ...)",
        {"exponent=1": S.cosine_decay(1.0, 800, alpha=0.1), "exponent=3": S.cosine_decay(1.0, 800, 0.1, 3.0)},
    ),
    (
        "inverse_time_decay",
        "inverse_time_decay(1.0, 100, decay_rate=1.0, ...)",
        {
            "continuous": S.inverse_time_decay(1.0, 100, 1.0),
            "staircase=True": S.inverse_time_decay(1.0, 100, 1.0, staircase=True),
        },
    ),
    (
        "piecewise_constant",
        "piecewise_constant(1.0, {300: 0.3, 600: 0.3, 800: 0.5})",
        S.piecewise_constant(1.0, {300: 0.3, 600: 0.3, 800: 0.5}),
    ),
    (
        "piecewise_interpolate",
        "piecewise_interpolate(kind, 1.0, {300: 0.2, 700: 4.0})",
        {kind: S.piecewise_interpolate(kind, 1.0, {300: 0.2, 700: 4.0}) for kind in ("linear", "cosine")},
    ),
    ("warmup_constant", "warmup_constant(0.0, 1.0, 200)", S.warmup_constant(0.0, 1.0, 200)),
    (
        "warmup_cosine_decay",
        "warmup_cosine_decay(0.0, 1.0, 100, 900, end_value=0.1)",
        S.warmup_cosine_decay(0.0, 1.0, 100, 900, end_value=0.1),
    ),
    (
        "warmup_exponential_decay",
        "warmup_exponential_decay(0.0, 1.0, 100, 100, 0.6, staircase=True)",
        S.warmup_exponential_decay(0.0, 1.0, 100, 100, 0.6, staircase=True),
    ),
    ("rsqrt", "rsqrt(1.0, warmup_steps=100)", S.rsqrt(1.0, 100)),
    (
        "warmup_stable_decay",
        "warmup_stable_decay(1.0, 100, 600, 200, decay_type=...)",
        {t: S.warmup_stable_decay(1.0, 100, 600, 200, decay_type=t) for t in ("linear", "cosine", "1-sqrt")},
    ),
    ("cosine_onecycle", "cosine_onecycle(1000, 1.0); dashed: .momentum", S.cosine_onecycle(1000, 1.0)),
    (
        "linear_onecycle",
        "linear_onecycle(1000, 1.0); dashed: .momentum",
        S.linear_onecycle(1000, 1.0),
    ),
    (
        "sgdr",
        "sgdr(1.0, 60, t_mult=2, peak_decay=0.8, end_value=0.05)",
        S.sgdr(1.0, 60, t_mult=2, peak_decay=0.8, end_value=0.05),
    ),
    (
        "cyclic",
        "cyclic(0.1, 1.0, 100, mode=...); dashed: .momentum",
        {
            "triangular": S.cyclic(0.1, 1.0, 100),
            "triangular2": S.cyclic(0.1, 1.0, 100, mode="triangular2"),
            "exp_range, gamma=0.998": S.cyclic(0.1, 1.0, 100, mode="exp_range", gamma=0.998),
        },
    ),
    (
        "join",
        "join([linear(0, 1, 200), constant(1), cosine_decay(1, 400)], [200, 600])",
        S.join([S.linear(0.0, 1.0, 200), S.constant(1.0), S.cosine_decay(1.0, 400)], [200, 600]),
    ),
]


def plateau_scales() -> tuple[np.ndarray, np.ndarray]:
    """A toy training run: the loss levels off at a floor that a smaller step size lowers."""
    rng = np.random.default_rng(0)
    tx = gradtx.reduce_on_plateau(factor=0.5, patience=5, cooldown=3, accumulation_size=10)
    state = tx.init(jnp.zeros(1))
    losses, scales = [], []
    for t in range(STEPS):
        scale = float(gradtx.get_hyperparam(state, "scale"))
        loss = 0.2 + 0.4 * scale + 0.6 * np.exp(-t / 60) + 0.01 * rng.standard_normal()
        losses.append(loss)
        scales.append(scale)
        _, state = tx.update(jnp.zeros(1), state, value=loss)
    return np.asarray(losses), np.asarray(scales)


def main() -> None:
    steps = jnp.arange(STEPS)
    ncols = 4
    nrows = -(-(len(PANELS) + 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), constrained_layout=True)
    axes = axes.ravel()
    for ax, (title, code, scheds) in zip(axes, PANELS, strict=False):  # more axes than panels
        labelled = scheds if isinstance(scheds, dict) else {None: scheds}
        for label, sched in labelled.items():
            ax.plot(steps, sched(steps), lw=1.6, label=label)
        top = ax
        momentum = getattr(next(iter(labelled.values())), "momentum", None)
        if momentum is not None:
            top = ax.twinx()
            top.plot(steps, momentum(steps), "--", color="tab:red", lw=1.2)
            top.set_ylabel("momentum", color="tab:red")
            top.tick_params(axis="y", colors="tab:red")
        if len(labelled) > 1:  # drawn on the top axes so the momentum line stays behind it
            top.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="upper right", framealpha=0.95)
        ax.set_title(f"{title}\n{code}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.set_ylim(-0.05, 1.1)
        ax.grid(alpha=0.3)
    ax = axes[len(PANELS)]
    losses, scales = plateau_scales()
    ax.plot(steps, losses, color="0.6", lw=0.8, label="toy loss passed as value=")
    ax.plot(steps, scales, color="tab:green", lw=1.6, label="scale")
    ax.set_title(
        "gradtx.reduce_on_plateau (a transform)\nfactor=0.5, patience=5, cooldown=3, accumulation_size=10",
        fontsize=9,
    )
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for ax in axes[len(PANELS) + 1 :]:
        ax.axis("off")
    fig.suptitle("gradtx.schedules: value against step (1000 steps)", fontsize=14)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
