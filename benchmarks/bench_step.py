"""Optimizer step benchmark: gradtx vs optax vs torch, in one process and one run.

Usage::

    python benchmarks/bench_step.py                # full sizes (several minutes on 2 cores)
    python benchmarks/bench_step.py --quick        # small sizes, a smoke run
    python benchmarks/bench_step.py --out docs/img # where bench_step.json / .png go

Each case times one optimizer step on a tree of float32 parameters: for JAX
libraries a jitted ``update`` + ``apply_updates`` with parameters and state
donated; for torch ``optimizer.step()`` with gradients already in ``.grad``.
Reported per case and library: median step time, compile time (JAX), state
bytes per parameter, peak memory of the step, and ratios to optax and to the
*floor*: the fastest fused single-array Adam available in this run (torch's
fused Adam on one tensor of the same total size, else gradtx on one leaf).

Adam cases also time a *per-leaf floor*: the least a JAX program with one
buffer per leaf can do, Adam's three updates per leaf written as plain jnp
with every hyperparameter a compile-time constant (``floor_adam``). The gap
between a library and it is the library's own overhead; the gap between it
and torch's fused kernel is the backend's.

Peak memory of a JAX step is XLA's buffer assignment for the compiled step
(arguments + outputs - donated aliases + temporaries); for torch it is the
bytes of the live tensors (parameters, gradients, state; temporaries inside
``step()`` are not seen). Timing is wall clock after warm-up; the median of
``--repeats`` steps, taken in rounds that alternate the libraries of a case
(``time_interleaved``), so that no library always runs right after another's
compile or on a slow spell of the machine. Nothing here asserts a target: the
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
        Case("clip+adamw 1 leaf", ((big,),), "clip_adamw"),
        Case(f"adam 8-bit {len(mlp_shapes(big))} leaves (MLP)", mlp_shapes(big), "adam_8bit"),
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
    "adam_8bit": (  # no 8-bit Adam in optax or torch.optim: timed against gradtx's fp32 Adam
        lambda: gradtx.adam(1e-3, mu_dtype="int8", nu_dtype="uint8"),
        None,
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


def _step_peak_bytes(compiled) -> float | None:
    """XLA's peak memory for one call of ``compiled``: what its buffer assignment holds at once."""
    m = compiled.memory_analysis()
    if m is None:  # not every backend reports it
        return None
    return m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes


def floor_adam(params, state, grads):
    """Adam with constant hyperparameters, one plain jnp expression per leaf: the per-leaf floor."""
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
    count = state["count"] + 1
    t = count.astype(jnp.float32)
    step_size = lr / (1 - b1**t)
    rsqrt_bc2 = jax.lax.rsqrt(1 - b2**t)
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * (g * g), state["nu"], grads)
    params = jax.tree.map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) * rsqrt_bc2 + eps), params, mu, nu)
    return params, {"count": count, "mu": mu, "nu": nu}


def _floor_init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    return {"count": jnp.zeros([], jnp.int32), "mu": zeros(), "nu": zeros()}


@dataclasses.dataclass
class Timed:
    """One library's step on one case, ready to run: ``run()`` does a step and waits for it."""

    run: Callable[[], None]
    info: dict  # compile_s, state_bytes_per_param, peak_bytes_per_param
    times: list = dataclasses.field(default_factory=list)


def prepare_jax(tx, shapes, step=None, init=None) -> Timed:
    """``tx`` (or a raw ``step(params, state, grads)`` with its ``init``) jitted, donated, compiled."""
    params = _params(shapes)
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 1e-3, p.dtype), params)
    n = sum(int(np.prod(s)) for s in shapes)

    if step is None:

        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s

        init = tx.init

    state = init(params)
    bpp = _state_bytes_per_param(state, n)
    t0 = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    compile_s = time.perf_counter() - t0
    peak = _step_peak_bytes(compiled)
    carry = [params, state]

    def run() -> None:
        carry[:] = compiled(carry[0], carry[1], grads)
        jax.block_until_ready(carry)

    info = {
        "compile_s": compile_s,
        "state_bytes_per_param": bpp,
        "peak_bytes_per_param": None if peak is None else peak / n,
    }
    return Timed(run, info)


def prepare_torch(make, shapes, **flags) -> Timed:
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.full(s, 0.5)) for s in shapes]
    for p in ps:
        p.grad = torch.full(p.shape, 1e-3)
    opt = make(ps, **flags)
    opt.step()  # creates the state
    n = sum(int(np.prod(s)) for s in shapes)
    state_bytes = sum(
        v.numel() * v.element_size() for st in opt.state.values() for v in st.values() if torch.is_tensor(v)
    )
    live_bytes = state_bytes + sum(2 * p.numel() * p.element_size() for p in ps)  # params and grads
    info = {
        "compile_s": None,
        "state_bytes_per_param": state_bytes / n,
        "peak_bytes_per_param": live_bytes / n,
    }
    return Timed(opt.step, info)


def time_interleaved(timed: dict[str, Timed], repeats: int, rounds: int = 4) -> dict[str, float]:
    """Median step time (ms) of each entry, measured in ``rounds`` alternating rounds.

    Each round runs every entry in turn (a pause, a warm-up step, then its
    share of ``repeats`` timed steps), starting from a different entry each
    round, so a slow spell of the machine or the cache state left by the
    previous library does not fall on one library only. The pause lets the
    previous library's worker threads go idle: torch's OpenMP threads spin
    for a while after a step, and a JAX step started meanwhile runs up to 20 %
    slower on 2 cores (measured).
    """
    names = list(timed)
    per_round = max(1, -(-repeats // rounds))
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = timed[name]
            time.sleep(0.02)
            t.run()
            for _ in range(per_round):
                t0 = time.perf_counter()
                t.run()
                t.times.append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t.times) for name, t in timed.items()}


FLOOR_NAME = "floor (fused single-array Adam)"
PLAIN_ADAM = {"gradtx": "gradtx adam (same tree)", "optax": "optax adam (same tree)"}


def run_case(case: Case, repeats: int) -> tuple[dict, str | None]:
    """Every library on ``case``, timed in alternation; returns the results and the floor's name."""
    make_gradtx, make_optax, make_torch = OPTIMIZERS[case.optimizer]
    timed = {"gradtx": prepare_jax(make_gradtx(), case.shapes)}
    if optax is not None and make_optax is not None:
        timed["optax"] = prepare_jax(make_optax(), case.shapes)
    if torch is not None and make_torch is not None:
        for label, flags in (("torch fused", {"fused": True}), ("torch foreach", {"foreach": True})):
            with contextlib.suppress(TypeError, RuntimeError):  # no such implementation
                timed[label] = prepare_torch(make_torch, case.shapes, **flags)
    if case.optimizer == "clip_adamw":  # the plain Adam the clipped AdamW is held against
        timed[PLAIN_ADAM["gradtx"]] = prepare_jax(gradtx.adam(1e-3), case.shapes)
        if optax is not None:
            timed[PLAIN_ADAM["optax"]] = prepare_jax(optax.adam(1e-3), case.shapes)
    if case.optimizer == "adam_8bit":
        timed[PLAIN_ADAM["gradtx"]] = prepare_jax(gradtx.adam(1e-3), case.shapes)
    floor = None
    if case.optimizer == "adam":
        timed["per-leaf floor"] = prepare_jax(None, case.shapes, floor_adam, _floor_init)
        total = ((sum(int(np.prod(s)) for s in case.shapes),),)
        if torch is not None:  # the fastest fused single-array Adam available
            timed[FLOOR_NAME] = prepare_torch(OPTIMIZERS["adam"][2], total, fused=True)
            floor = "torch fused Adam, 1 tensor"
        else:
            timed[FLOOR_NAME] = prepare_jax(gradtx.adam(1e-3), total)
            floor = "gradtx adam, 1 leaf"
    step_ms = time_interleaved(timed, repeats)
    results = {name: {"step_ms": step_ms[name], **t.info} for name, t in timed.items()}
    return results, floor


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
        results, floor_name = run_case(case, repeats)
        floor = results.pop(FLOOR_NAME)["step_ms"] if floor_name else None
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


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a / b:.2f}"


def markdown_table(report: dict) -> str:
    """Markdown tables: time, each library against its plain Adam on the same tree, memory, targets."""

    def get(r, lib, key, fmt):
        v = r.get(lib, {}).get(key)
        return "–" if v is None else format(v, fmt)

    time_lines = [
        "| case | gradtx ms | optax ms | torch fused ms | torch foreach ms | per-leaf floor ms "
        "| gradtx / optax | gradtx / floor | gradtx / per-leaf floor "
        "| gradtx compile s | optax compile s | per-leaf floor compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    same_tree_lines = [
        "| case | gradtx ms | gradtx adam ms | gradtx ratio | optax ms | optax adam ms | optax ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    memory_lines = [
        "| case | gradtx state | gradtx step peak | optax step peak | torch live tensors |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        r = row["results"]
        step = {lib: r[lib]["step_ms"] for lib in r}
        time_lines.append(
            f"| {row['case']} | "
            + " | ".join(
                get(r, lib, "step_ms", ".2f")
                for lib in ("gradtx", "optax", "torch fused", "torch foreach", "per-leaf floor")
            )
            + f" | {_ratio(step['gradtx'], step.get('optax'))} | {_ratio(step['gradtx'], row['floor_ms'])}"
            + f" | {_ratio(step['gradtx'], step.get('per-leaf floor'))} | "
            + " | ".join(get(r, lib, "compile_s", ".2f") for lib in ("gradtx", "optax", "per-leaf floor"))
            + " |"
        )
        if PLAIN_ADAM["gradtx"] in r:
            cells = []
            for lib in ("gradtx", "optax"):
                cells += [get(r, lib, "step_ms", ".2f"), get(r, PLAIN_ADAM[lib], "step_ms", ".2f")]
                cells.append(_ratio(step.get(lib), step.get(PLAIN_ADAM[lib])))
            same_tree_lines.append(f"| {row['case']} | " + " | ".join(cells) + " |")
        torch_lib = "torch fused" if "torch fused" in r else "torch foreach"
        memory_lines.append(
            f"| {row['case']} | {get(r, 'gradtx', 'state_bytes_per_param', '.2f')} | "
            + " | ".join(get(r, lib, "peak_bytes_per_param", ".2f") for lib in ("gradtx", "optax", torch_lib))
            + " |"
        )
    return "\n".join(
        [
            "Time:",
            "",
            *time_lines,
            "",
            "Against plain Adam of the same library on the same tree (timed in the same rounds):",
            "",
            *same_tree_lines,
            "",
            "Memory, bytes per parameter:",
            "",
            *memory_lines,
            "",
            "Targets of the performance issue:",
            "",
            targets_table(report),
        ]
    )


def targets_table(report: dict) -> str:
    """Each target of the performance issue with the value this run measured."""
    rows = {row["case"].split(" (")[0]: row for row in report["rows"]}

    def find(prefix):
        return next((row for name, row in rows.items() if name.startswith(prefix)), None)

    def step(row, lib):
        return row["results"].get(lib, {}).get("step_ms") if row else None

    def res(row, lib, key):
        return row["results"].get(lib, {}).get(key) if row else None

    lines = ["| target | measured | met |", "|---|---|---|"]

    def add(target, value, limit, fmt=".2f", unit="x"):
        if value is None:
            lines.append(f"| {target} | not measured | – |")
        else:
            lines.append(f"| {target} | {value:{fmt}}{unit} | {'yes' if value <= limit else 'no'} |")

    for prefix, label in (("adam 1 leaf", "1 leaf"), ("adam 40 leaves", "40 leaves")):
        row = find(prefix)
        t = step(row, "torch fused")
        add(f"Adam {label} <= 1.1x torch fused", None if t is None else step(row, "gradtx") / t, 1.1)
    many = max(
        (row for row in report["rows"] if row["case"].startswith("adam ") and "x" in row["case"]),
        key=lambda row: row["leaves"],
        default=None,
    )
    if many is not None:
        o = step(many, "optax")
        add(
            f"Adam {many['leaves']} leaves <= 0.5x optax step",
            None if o is None else step(many, "gradtx") / o,
            0.5,
        )
        add(f"Adam {many['leaves']} leaves compile <= 2 s", res(many, "gradtx", "compile_s"), 2.0, unit=" s")
    for row in report["rows"]:
        if row["case"].startswith("clip+adamw"):
            plain = step(row, PLAIN_ADAM["gradtx"])
            value = None if plain is None else step(row, "gradtx") / plain
            add(f"{row['case']}: clip_by_norm + adamw <= 1.2x plain gradtx adam", value, 1.2)
            if row["leaves"] > 1:
                add(f"{row['case']}: compile <= 2 s", res(row, "gradtx", "compile_s"), 2.0, unit=" s")
    eight = find("adam 8-bit")
    add(
        "8-bit Adam state <= 2.1 B/param", res(eight, "gradtx", "state_bytes_per_param"), 2.1, unit=" B/param"
    )
    for row in report["rows"]:
        opt = row["case"].split(" ")[0]
        if opt in ("sgd_momentum", "rmsprop", "adagrad", "lion", "adafactor"):
            o = step(row, "optax")
            value = None if o is None else step(row, "gradtx") / o
            # "No regression" within the run-to-run spread of a shared 2-core machine.
            add(f"{opt} vs optax: no regression (<= 1.10x)", value, 1.10)
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = report["rows"]
    libs = ["gradtx", "optax", "torch fused", "torch foreach", "per-leaf floor"]
    compiled_libs = ["gradtx", "optax", "per-leaf floor"]
    fig, (ax_t, ax_c) = plt.subplots(1, 2, figsize=(14, 0.5 * len(rows) + 2.5))
    y = np.arange(len(rows))
    height = 0.8 / len(libs)
    for i, lib in enumerate(libs):
        color = f"C{i}"  # the same color for a library in both panels
        vals = [row["results"].get(lib, {}).get("step_ms", np.nan) for row in rows]
        ax_t.barh(y + (i - (len(libs) - 1) / 2) * height, vals, height, label=lib, color=color)
        if lib in compiled_libs:
            k = compiled_libs.index(lib)
            comp = [row["results"].get(lib, {}).get("compile_s") or np.nan for row in rows]
            ax_c.barh(y + (k - 1) * 0.27, comp, 0.27, label=lib, color=color)
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
