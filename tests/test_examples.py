"""Smoke tests of the examples: each runs as a user would run it, at a tiny size."""

import importlib
import json

import pytest

for module in ("flax", "matplotlib", "sklearn", "tqdm"):
    pytest.importorskip(module, reason="the examples need the `examples` extra")

from tests.example_runner import EXAMPLES, run_example  # noqa: E402


def test_compare_optimizers_runs_and_reports(tmp_path):
    args = ["--steps", "20", "--optimizers", "sgd,adam", "--out", str(tmp_path)]
    result = run_example("compare_optimizers.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    lines = result.stdout.splitlines()
    header = next(line.split() for line in lines if line.startswith("#"))
    assert header == ["#", "optimizer", "lr", "train", "loss", "val", "acc", "compile", "s", "train", "s"]
    assert {line.split()[1] for line in lines if line[:1].isdigit()} == {"SGD", "Adam"}

    figure = tmp_path / "compare_optimizers.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size > 10_000  # axes, curves and legend, not an empty canvas

    saved = json.loads((tmp_path / "compare_optimizers.json").read_text())
    runs = {run["optimizer"]: run for run in saved["runs"]}
    assert set(runs) == {"sgd", "adam"}
    assert len(runs["adam"]["batch_losses"]) == 20
    adam_loss = runs["adam"]["train_losses"]  # on the full training set, before and after training
    assert adam_loss[-1] < 0.9 * adam_loss[0]


@pytest.fixture
def compare_optimizers(monkeypatch):
    """The example imported as a module (scripts import their helpers from their own folder)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("compare_optimizers")


def test_compare_optimizers_parses_its_flags(compare_optimizers, tmp_path):
    args = compare_optimizers.parse_args(["--optimizers", " Adam,sgd,adam ", "--out", str(tmp_path)])
    assert args.optimizers == ["adam", "sgd"]
    assert args.out == tmp_path
    assert compare_optimizers.parse_args([]).optimizers == list(compare_optimizers.OPTIMIZERS)


def test_compare_optimizers_rejects_unknown_names(compare_optimizers, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare_optimizers.parse_args(["--optimizers", "adam,lion"])
    assert exit_info.value.code == 2
    assert "unknown optimizer(s) ['lion']" in capsys.readouterr().err
