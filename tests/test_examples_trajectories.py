"""Smoke tests of examples/trajectories.py (and the docs figures built on it), at a tiny size."""

import importlib
import json

import numpy as np
import pytest

for module in ("flax", "matplotlib", "sklearn", "tqdm"):
    pytest.importorskip(module, reason="the examples need the `examples` extra")

import gradtx  # noqa: E402
from tests.example_runner import EXAMPLES, ROOT, run_example  # noqa: E402


def test_trajectories_runs_and_reports(tmp_path):
    args = [
        "--steps",
        "60",
        "--optimizers",
        "sgd,adam",
        "--surfaces",
        "quadratic,saddle",
        "--out",
        str(tmp_path),
    ]
    result = run_example("trajectories.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    lines = result.stdout.splitlines()
    header = next(line.split() for line in lines if line.startswith("surface"))
    assert header[:4] == ["surface", "optimizer", "lr", "final"]
    rows = [line.split() for line in lines if line.split()[:1] in (["quadratic"], ["saddle"])]
    assert {(row[0], row[1]) for row in rows} == {
        (s, o) for s in ("quadratic", "saddle") for o in ("SGD", "Adam")
    }

    for name in ("trajectories.png", "trajectories_loss.png"):
        figure = tmp_path / name
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.stat().st_size > 10_000  # contours, paths and legends, not an empty canvas

    saved = json.loads((tmp_path / "trajectories.json").read_text())
    runs = {(r["surface"], r["optimizer"]): r for r in saved["runs"]}
    assert len(runs[("quadratic", "sgd")]["points"]) == 61  # the start, then one point per step
    for run in runs.values():
        assert run["losses"][-1] < run["losses"][0]
    # The lesson of the saddle (value 1/8 at the saddle point, 0 at the minima): after 60 steps
    # SGD still waits on it for the tiny gradient to grow, while Adam's rescaled steps have left.
    assert runs[("saddle", "sgd")]["final_loss"] > 0.1
    assert runs[("saddle", "adam")]["final_loss"] < 1e-2


@pytest.fixture
def trajectories(monkeypatch):
    """The example imported as a module (scripts import their helpers from their own folder)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("trajectories")


def test_trajectories_parses_its_flags(trajectories, tmp_path):
    args = trajectories.parse_args(
        ["--optimizers", " Adam,lbfgs,adam ", "--surfaces", "beale", "--out", str(tmp_path)]
    )
    assert args.optimizers == ["adam", "lbfgs"]
    assert args.surfaces == ["beale"]
    defaults = trajectories.parse_args([])
    assert defaults.optimizers == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    assert defaults.surfaces == ["quadratic", "rosenbrock", "beale", "saddle"]
    classic = {
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adadelta",
        "adam",
        "adamax",
        "nadam",
        "amsgrad",
    }
    assert classic <= set(trajectories.OPTIMIZERS)


def test_trajectories_rejects_unknown_names(trajectories, capsys):
    with pytest.raises(SystemExit) as exit_info:
        trajectories.parse_args(["--surfaces", "quadratic,himmelblau"])
    assert exit_info.value.code == 2
    assert "unknown surface(s) ['himmelblau']" in capsys.readouterr().err


def test_run_trajectory_takes_any_parameter_shape(trajectories):
    surface = trajectories.SURFACES["quadratic"]
    points = trajectories.run_trajectory(gradtx.sgd(0.01), surface, steps=5)
    assert points.shape == (6, 2)
    np.testing.assert_allclose(points[0], surface.start)
    # A (1, 2) matrix holds the same two numbers: plain SGD goes the same way.
    np.testing.assert_allclose(
        trajectories.run_trajectory(gradtx.sgd(0.01), surface, steps=5, shape=(1, 2)), points, rtol=1e-6
    )
    # L-BFGS gets what its line search needs (value, grad, value_fn) and solves a quadratic at once.
    lbfgs = trajectories.run_trajectory(gradtx.lbfgs(), surface, steps=10)
    assert surface.distance_to_minimum(lbfgs[-1]) < 1e-4


def test_docs_figures_cover_every_public_optimizer(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "docs"))
    plot_trajectories = importlib.import_module("plot_trajectories")
    optimizers = plot_trajectories.public_optimizers()
    assert {"sgd", "adam", "lbfgs", "muon", "schedule_free_adamw"} <= set(optimizers)
    assert set(optimizers) <= set(plot_trajectories.SPECS)
