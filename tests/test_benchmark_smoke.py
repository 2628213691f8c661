"""The step benchmark still runs and reports every field (a smoke run at tiny sizes, no timing asserted).

The benchmark itself is a separate command (README, docs/performance.md);
this only keeps it from rotting between the runs that produce the figures.
"""

from __future__ import annotations

import json

import pytest

from tests.example_runner import ROOT, assert_figure, run_script


def test_quick_benchmark_writes_json_plot_and_targets(tmp_path):
    pytest.importorskip("optax")
    proc = run_script(
        ROOT / "benchmarks" / "bench_step.py",
        "--quick",
        "--only",
        "1 leaf",
        "--repeats",
        "2",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "bench_step.json").read_text())
    rows = {row["case"]: row for row in report["rows"]}
    assert set(rows) == {"adam 1 leaf", "clip+adamw 1 leaf"}

    adam = rows["adam 1 leaf"]
    assert {"gradtx", "optax", "per-leaf floor"} <= set(adam["results"])
    assert adam["floor_ms"] > 0 and adam["floor"]
    for lib, result in adam["results"].items():
        assert result["step_ms"] > 0, lib
        # A step holds at least its state (plus parameters and gradients).
        assert result["peak_bytes_per_param"] > result["state_bytes_per_param"], lib
    assert adam["results"]["gradtx"]["state_bytes_per_param"] == pytest.approx(8.0, abs=0.01)  # + scalars

    clip = rows["clip+adamw 1 leaf"]["results"]
    assert {"gradtx", "gradtx adam (same tree)", "optax", "optax adam (same tree)"} <= set(clip)

    assert_figure(tmp_path / "bench_step.png")
    assert "| Adam 1 leaf <= 1.1x torch fused |" in proc.stdout  # "not measured" without torch
    assert "clip+adamw 1 leaf: clip_by_norm + adamw <= 1.2x plain gradtx adam" in proc.stdout
