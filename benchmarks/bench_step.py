"""Optimizer step benchmark: gradtx vs optax vs torch, in one process and one run.

Usage::

    python benchmarks/bench_step.py                # full sizes (several minutes on 2 cores)
    python benchmarks/bench_step.py --quick        # small sizes, a smoke run
    python benchmarks/bench_step.py --out docs/img # where bench_step.json / .png go

Each case times one optimizer step on a tree of float32 parameters: for JAX
libraries a jitted ``update`` + ``apply_updates`` with parameters and state
donated; for torch ``optimizer.step()`` with gradients already in ``.grad``.
Reported per case and library: median step time, compile time (JAX), state
bytes per parameter, and ratios to optax and to the *floor*: the fastest fused
single-array Adam available in this run (torch's fused Adam on one tensor of
the same total size, else gradtx on one leaf). Timing is wall clock after
warm-up; the median of ``--repeats`` steps. Nothing here asserts a target: the
numbers go to JSON, a PNG and docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gradtx  # noqa: E402

try:
    import optax
except ImportError:  # the benchmark still runs gradtx alone
    optax = None
try:
    import torch
except ImportError:
    torch = None


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    shapes: tuple[tuple[int, ...], ...]
    optimizer: str  # key of OPTIMIZERS


def mlp_shapes(total: int, layers: int = 20) -> tuple[tuple[int, ...], ...]:
    """``2 * layers`` leaves (weights and biases) of a square MLP with about ``total`` parameters."""
    width = int((total / layers) ** 0.5)
    return tuple(s for _ in range(layers) for s in ((width, width), (width,)))


def cases(quick: bool) -> list[Case]:
    big = 1 << (18 if quick else 24)  # 16.8M parameters at full size
    leaf = 1 << (8 if quick else 12)
    many = (100, 300, 2000) if not quick else (100, 300)
    out = [
        Case("adam 1 leaf", ((big,),), "adam"),
        Case(f"adam {len(mlp_shapes(big))} leaves (MLP)", mlp_shapes(big), "adam"),
    ]
    out += [Case(f"adam {n} leaves x {leaf}", ((leaf,),) * n, "adam") for n in many]
    clip_leaves = 1000 if not quick else 200
    clip_size = (big // 2) // clip_leaves
    out += [
        Case(f"clip+adamw {clip_leaves} leaves", ((clip_size,),) * clip_leaves, "clip_adamw"),
        Case(f"adam {clip_leaves} leaves (same tree)", ((clip_size,),) * clip_leaves, "adam"),
        Case("clip+adamw 1 leaf", ((big,),), "clip_adamw"),
    ]
    mlp = mlp_shapes(big // 4)
    out += [
        Case(f"{opt} {len(mlp)} leaves (MLP)", mlp, opt)
        for opt in ("sgd_momentum", "rmsprop", "adagrad", "lion", "adafactor")
    ]
    return out


# name -> (gradtx factory, optax factory, torch factory(params, fused/foreach flags) or None)
OPTIMIZERS: dict[str, tuple[Callable, Callable | None, Callable | None]] = {
    "adam": (
        lambda: gradtx.adam(1e-3),
        lambda: optax.adam(1e-3),
        lambda ps, **kw: torch.optim.Adam(ps, lr=1e-3, **kw),
    ),
    "clip_adamw": (
        lambda: gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.adamw(1e-3, weight_decay=1e-2)),
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-2)),
        None,
    ),
    "sgd_momentum": (
        lambda: gradtx.sgd(1e-2, momentum=0.9),
        lambda: optax.sgd(1e-2, momentum=0.9),
        lambda ps, **kw: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, **kw),
    ),
    "rmsprop": (
        lambda: gradtx.rmsprop(1e-3, eps_in_sqrt=False),
        lambda: optax.rmsprop(1e-3, eps_in_sqrt=False),
        lambda ps, **kw: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.9, **kw),
    ),
    "lion": (
        lambda: gradtx.lion(1e-4, weight_decay=0.0),
        lambda: optax.lion(1e-4),
        None,
    ),
    "adafactor": (
        lambda: gradtx.adafactor(1e-3),
        lambda: optax.adafactor(1e-3),
        None,
    ),
    "adagrad": (
        lambda: gradtx.adagrad(1e-2),
        lambda: optax.adagrad(1e-2),
        lambda ps, **kw: torch.optim.Adagrad(ps, lr=1e-2, **kw),
    ),
}


def _params(shapes):
    return {f"p{i:04d}": jnp.full(s, 0.5, jnp.float32) for i, s in enumerate(shapes)}


def _state_bytes_per_param(state, n_params: int) -> float:
    return sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes")) / n_params


def time_jax(tx, shapes, repeats: int) -> dict:
    params = _params(shapes)
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 1e-3, p.dtype), params)
    n = sum(int(np.prod(s)) for s in shapes)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    state = tx.init(params)
    bpp = _state_bytes_per_param(state, n)
    t0 = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(3):
        params, state = compiled(params, state, grads)
    jax.block_until_ready((params, state))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        params, state = compiled(params, state, grads)
        jax.block_until_ready((params, state))
        times.append(time.perf_counter() - t0)
    return {"step_ms": 1e3 * statistics.median(times), "compile_s": compile_s, "state_bytes_per_param": bpp}


def time_torch(make, shapes, repeats: int, **flags) -> dict:
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.full(s, 0.5)) for s in shapes]
    for p in ps:
        p.grad = torch.full(p.shape, 1e-3)
    opt = make(ps, **flags)
    for _ in range(3):
        opt.step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    n = sum(int(np.prod(s)) for s in shapes)
    state_bytes = sum(
        v.numel() * v.element_size() for st in opt.state.values() for v in st.values() if torch.is_tensor(v)
    )
    return {
        "step_ms": 1e3 * statistics.median(times),
        "compile_s": None,
        "state_bytes_per_param": state_bytes / n,
    }


def run_case(case: Case, repeats: int) -> dict:
    make_gradtx, make_optax, make_torch = OPTIMIZERS[case.optimizer]
    results = {"gradtx": time_jax(make_gradtx(), case.shapes, repeats)}
    if optax is not None and make_optax is not None:
        results["optax"] = time_jax(make_optax(), case.shapes, repeats)
    if torch is not None and make_torch is not None:
        for label, flags in (("torch fused", {"fused": True}), ("torch foreach", {"foreach": True})):
            with contextlib.suppress(TypeError, RuntimeError):  # no such implementation
                results[label] = time_torch(make_torch, case.shapes, repeats, **flags)
    return results


def floor_ms(shapes, repeats: int) -> tuple[float, str]:
    """The fastest fused single-array Adam available on this machine, same total size."""
    total = ((sum(int(np.prod(s)) for s in shapes),),)
    if torch is not None:
        return time_torch(OPTIMIZERS["adam"][2], total, repeats, fused=True)[
            "step_ms"
        ], "torch fused Adam, 1 tensor"
    return time_jax(gradtx.adam(1e-3), total, repeats)["step_ms"], "gradtx adam, 1 leaf"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="docs/img", help="directory for bench_step.json and .png")
    parser.add_argument("--only", default=None, help="run only cases whose name contains this text")
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 20)
    rows = []
    for case in cases(args.quick):
        if args.only and args.only not in case.name:
            continue
        n = sum(int(np.prod(s)) for s in case.shapes)
        results = run_case(case, repeats)
        floor, floor_name = floor_ms(case.shapes, repeats) if case.optimizer == "adam" else (None, None)
        row = {
            "case": case.name,
            "leaves": len(case.shapes),
            "params": n,
            "results": results,
            "floor_ms": floor,
            "floor": floor_name,
        }
        rows.append(row)
        print(format_row(row), flush=True)
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "optax": getattr(optax, "__version__", None),
            "torch": getattr(torch, "__version__", None),
        },
        "quick": args.quick,
        "repeats": repeats,
        "rows": rows,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_step.json").write_text(json.dumps(report, indent=2))
    plot(report, out / "bench_step.png")
    print(markdown_table(report))


def format_row(row: dict) -> str:
    parts = [
        f"{lib} {r['step_ms']:.2f} ms" + (f" (compile {r['compile_s']:.1f} s)" if r["compile_s"] else "")
        for lib, r in row["results"].items()
    ]
    return f"{row['case']:32s} " + " | ".join(parts)


def markdown_table(report: dict) -> str:
    lines = [
        "| case | gradtx ms | optax ms | torch fused ms | torch foreach ms | gradtx / optax | gradtx / floor "
        "| gradtx compile s | optax compile s | gradtx state B/param |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ms(r, lib):
        return f"{r[lib]['step_ms']:.2f}" if lib in r else "–"

    for row in report["rows"]:
        r = row["results"]
        g = r["gradtx"]
        ratio_optax = f"{g['step_ms'] / r['optax']['step_ms']:.2f}" if "optax" in r else "–"
        ratio_floor = f"{g['step_ms'] / row['floor_ms']:.2f}" if row["floor_ms"] else "–"
        optax_c = f"{r['optax']['compile_s']:.2f}" if "optax" in r else "–"
        lines.append(
            f"| {row['case']} | {ms(r, 'gradtx')} | {ms(r, 'optax')} | {ms(r, 'torch fused')} "
            f"| {ms(r, 'torch foreach')} | {ratio_optax} | {ratio_floor} | {g['compile_s']:.2f} | {optax_c} "
            f"| {g['state_bytes_per_param']:.2f} |"
        )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = report["rows"]
    libs = ["gradtx", "optax", "torch fused", "torch foreach"]
    fig, (ax_t, ax_c) = plt.subplots(1, 2, figsize=(14, 0.45 * len(rows) + 2.5))
    y = np.arange(len(rows))
    height = 0.2
    for i, lib in enumerate(libs):
        vals = [row["results"].get(lib, {}).get("step_ms", np.nan) for row in rows]
        ax_t.barh(y + (i - 1.5) * height, vals, height, label=lib)
        comp = [row["results"].get(lib, {}).get("compile_s") or np.nan for row in rows]
        if lib in ("gradtx", "optax"):
            ax_c.barh(y + (i - 0.5) * 0.35, comp, 0.35, label=lib)
    for ax, title, unit in (
        (ax_t, "Step time (median)", "ms, log scale"),
        (ax_c, "Compile time", "s, log scale"),
    ):
        ax.set_yticks(y, [row["case"] for row in rows])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_title(title)
        ax.legend(loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    ax_c.set_yticklabels([])
    m = report["machine"]
    fig.suptitle(f"Optimizer step, float32, {m['backend']} ({m['cpus']} cores), jax {m['jax']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
