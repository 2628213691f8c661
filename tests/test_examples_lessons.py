"""Smoke tests of the lesson examples (learning rates, batch size): each runs as a user would run it, tiny."""

import importlib
import json

import pytest

for module in ("flax", "matplotlib", "sklearn", "tqdm"):
    pytest.importorskip(module, reason="the examples need the `examples` extra")

from tests.example_runner import EXAMPLES, assert_figure, run_example  # noqa: E402


def table_rows(stdout: str, first_header: str, count: int) -> dict[str, str]:
    """The ``count`` rows of the printed summary table, by their first cell."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    first_width = lines[start + 1].index(" ")  # the rule under the header: "-------  ----  ..."
    return {line[:first_width].strip(): line for line in lines[start + 2 : start + 2 + count]}


def test_learning_rates_runs_and_reports(tmp_path):
    # A rate of 50 overflows within a few steps: the NaN must be reported, not crash the table or plot.
    args = ["--steps", "40", "--too-large", "50", "--out", str(tmp_path)]
    result = run_example("learning_rates.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = table_rows(result.stdout, "setting", 4)
    assert list(rows) == ["too large", "too small", "good constant", "warm-up + cosine"]
    assert "yes: NaN/inf" in rows["too large"]
    assert all(row.endswith("no") for name, row in rows.items() if name != "too large")
    assert_figure(tmp_path / "learning_rates.png")

    runs = {run["setting"]: run for run in json.loads((tmp_path / "learning_rates.json").read_text())["runs"]}
    assert None in runs["too large"]["batch_losses"]  # NaN saved as null: strict JSON
    # The lesson: in the same 40 steps, the good rate gets much further than the too-small one.
    assert runs["good constant"]["train_losses"][-1] < 0.5 * runs["too small"]["train_losses"][-1]
    # The rates read back from the optimizer state: the constants as set, the schedule warming up from 0.
    assert runs["too small"]["learning_rates"] == pytest.approx([1e-3] * 40)
    scheduled = runs["warm-up + cosine"]["learning_rates"]
    assert scheduled[0] == 0.0
    assert max(scheduled) == pytest.approx(0.1)
    assert scheduled[-1] < 0.01


def test_batch_size_runs_and_reports(tmp_path):
    args = ["--epochs", "3", "--batch-sizes", "1,full", "--out", str(tmp_path)]
    result = run_example("batch_size.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = table_rows(result.stdout, "batch", 2)
    assert list(rows) == ["1", "1437"]
    assert rows["1"].split()[1:3] == ["0.01", "1437"]  # lr, steps/epoch
    assert rows["1437"].split()[1:3] == ["1", "1"]
    assert_figure(tmp_path / "batch_size.png")

    runs = {run["batch_size"]: run for run in json.loads((tmp_path / "batch_size.json").read_text())["runs"]}
    assert len(runs[1]["train_losses"]) == 4  # before training and after each epoch
    assert len(runs[1]["epoch_seconds"]) == 3
    # The lesson: per epoch, 1,437 small steps get much further than one exact step.
    assert runs[1]["train_losses"][-1] < 0.2 * runs[1437]["train_losses"][-1]


@pytest.fixture
def batch_size(monkeypatch):
    """The example imported as a module (scripts import their helpers from their own folder)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("batch_size")


def test_batch_size_parses_sizes(batch_size):
    assert batch_size.parse_batch_sizes(" 1, 32,full,32,", 1437) == [1, 32, 1437]
    for bad in ("0", "2000", "x", ","):
        with pytest.raises(ValueError):
            batch_size.parse_batch_sizes(bad, 1437)


def test_batch_size_scales_the_learning_rate_up_to_a_cap(batch_size):
    assert [batch_size.learning_rate(b, 0.01, 1.0) for b in (1, 32, 1437)] == pytest.approx([0.01, 0.32, 1.0])


@pytest.fixture
def learning_rates(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("learning_rates")


def test_learning_rates_parses_its_flags(learning_rates, capsys):
    args = learning_rates.parse_args(["--steps", "200", "--optimizer", "adam", "--peak", "0.02"])
    assert (args.warmup, args.optimizer, args.peak, args.good) == (10, "adam", 0.02, None)
    with pytest.raises(SystemExit):
        learning_rates.parse_args(["--good", "-0.1"])
    assert "--good must be positive" in capsys.readouterr().err
