"""Smoke tests of the gradient examples (vanishing/exploding gradients, meta-learning the learning rate).

Each runs as a user would run it, at a tiny size, and must still show its lesson in the numbers.
"""

import json
import math

import pytest

for module in ("flax", "matplotlib", "sklearn", "tqdm"):
    pytest.importorskip(module, reason="the examples need the `examples` extra")

from tests.example_runner import assert_figure, run_example  # noqa: E402


def test_vanishing_exploding_runs_and_reports(tmp_path):
    # 10 hidden layers are enough for every effect to show; 20 steps keep it quick.
    result = run_example("vanishing_exploding.py", "--depth", "10", "--steps", "20", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]

    lines = result.stdout.splitlines()
    header = next(line.split() for line in lines if line.startswith("activation"))
    assert header[:2] == ["activation", "init"] and header[-2:] == ["loss", "verdict"]
    rows = [line.split() for line in lines if line.startswith(("sigmoid ", "relu "))]
    assert len(rows) == 9  # 2 activations x 4 inits, and the clipped rerun
    assert_figure(tmp_path / "vanishing_exploding.png")

    saved = json.loads((tmp_path / "vanishing_exploding.json").read_text())
    runs = {(r["activation"], r["init"], r["max_norm"]): r for r in saved["runs"]}
    assert len(runs) == 9
    for run in runs.values():
        assert len(run["batch_losses"]) == 20
        assert len(run["layer_norms"][0]) == 11  # 10 hidden layers and the output layer

    # The verdicts come from gradtx.monitor's flags.
    assert runs["sigmoid", "glorot", None]["verdict"] == "vanishing"
    assert runs["relu", "small", None]["verdict"] == "vanishing"
    assert runs["relu", "large", None]["verdict"] == "exploding"
    assert runs["relu", "he", None]["verdict"] == "healthy"

    def first_over_last(run):
        norms = run["layer_norms"][0]  # at the first step: what the init did
        return norms[0] / norms[-1]

    # Sigmoid: the gradient shrinks layer after layer. ReLU with He: the same size at every depth.
    assert first_over_last(runs["sigmoid", "glorot", None]) < 1e-3
    assert 0.1 < first_over_last(runs["relu", "he", None]) < 10
    assert runs["relu", "he", None]["final_loss"] < math.log(10)  # it learns: below chance

    # Clipping: the exploding run either diverged or did worse than with its gradient clipped.
    unclipped = runs["relu", "large", None]["final_loss"]
    clipped = runs["relu", "large", 5.0]["final_loss"]
    assert clipped is not None and math.isfinite(clipped)
    assert unclipped is None or clipped < unclipped


def test_meta_learning_runs_and_reports(tmp_path):
    args = ["--inner-steps", "5", "--outer-steps", "8", "--init-lr", "0.01", "--out", str(tmp_path)]
    result = run_example("meta_learning.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    lines = result.stdout.splitlines()
    assert {line.split()[0] for line in lines if line.startswith(("initial ", "found ", "grid "))} == {
        "initial",
        "found",
        "grid",
    }
    assert any("Largest relative error" in line for line in lines)
    assert_figure(tmp_path / "meta_learning.png")

    saved = json.loads((tmp_path / "meta_learning.json").read_text())
    # jax.grad through the K optimizer steps agrees with a finite difference of the loss.
    assert saved["max_rel_error"] < 1e-2
    assert all(c["hypergrad"] * c["finite_diff"] > 0 for c in saved["checks"])  # same sign everywhere

    outer = saved["outer"]
    assert len(outer["lrs"]) == 9  # the start and after each of the 8 outer steps
    assert outer["lrs"][0] == pytest.approx(0.01)
    assert outer["hypergrads"][0] < 0  # too small a learning rate: the loss falls as it grows
    assert outer["lrs"][-1] > 10 * outer["lrs"][0]  # so hypergradient descent raises it
    assert outer["losses"][-1] < 0.5 * outer["losses"][0]
    assert saved["grid_best_lr"] > outer["lrs"][0]
