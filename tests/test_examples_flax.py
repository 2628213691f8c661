"""Smoke tests of the Flax examples (linen TrainState, NNX Optimizer), each run as a user would, tiny."""

import importlib
import json

import pytest

for module in ("flax", "matplotlib", "sklearn", "tqdm", "orbax.checkpoint"):
    pytest.importorskip(module, reason="the examples need the `examples` extra")

from tests.example_runner import EXAMPLES, run_example  # noqa: E402

SCRIPTS = ["flax_linen_trainstate", "flax_nnx"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_flax_example_trains_checkpoints_and_resumes(name, tmp_path):
    args = ["--steps", "40", "--checkpoint-every", "10", "--batch-size", "32", "--out", str(tmp_path)]
    result = run_example(f"{name}.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    summary_lines = {line.split("  ")[0] for line in result.stdout.splitlines() if "  " in line}
    assert {"final train loss", "validation accuracy", "resume check", "compilation"} <= summary_lines
    assert "bit for bit" in result.stdout

    figure = tmp_path / f"{name}.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size > 10_000  # three panels with curves and legends, not an empty canvas

    saved = json.loads((tmp_path / f"{name}.json").read_text())
    summary, full, resumed = saved["summary"], saved["uninterrupted"], saved["resumed"]
    assert full["train_losses"][-1] < 0.7 * full["train_losses"][0]  # 40 steps, 4 of them warming up

    # Weight decay on the kernels only; biases and LayerNorm scales and offsets are left alone.
    assert summary["decayed"] and all(path.endswith("['kernel']") for path in summary["decayed"])
    assert sum(path.endswith("['scale']") for path in summary["not_decayed"]) == 2

    # The schedule, read from the optimizer state: warm-up from 0 to the peak, cosine decay to 0.
    rates = full["learning_rates"]
    assert rates[0] == 0.0 and max(rates) == pytest.approx(summary["peak_learning_rate"])
    assert summary["final_learning_rate"] == pytest.approx(0.0, abs=1e-9)

    # Checkpoints every 10 steps; the restart from the middle one lands on the uninterrupted run.
    assert summary["checkpoints"] == [10, 20, 30, 40]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir()) == [
        "10",
        "20",
        "30",
        "40",
    ]
    assert summary["resume_step"] == 20 and resumed["steps"][0] == 21
    assert summary["params_max_abs_diff"] <= 1e-6
    assert summary["opt_state_max_abs_diff"] <= 1e-6
    assert resumed["train_losses"] == pytest.approx(full["train_losses"][-len(resumed["train_losses"]) :])

    # One trace and one compilation for both runs, although the learning rate changed at every step.
    assert summary["traces"] == 1 and summary["compiles"] == 1


def test_flax_examples_need_a_checkpoint_to_resume_from(monkeypatch, capsys):
    """Both Flax examples parse their flags with _common.parse_resume_args."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    common = importlib.import_module("_common")
    for name in SCRIPTS:
        assert importlib.import_module(name).parse_resume_args is common.parse_resume_args
    parse = common.parse_resume_args
    assert parse("", ["--steps", "50", "--checkpoint-every", "49"]).checkpoint_every == 49
    with pytest.raises(SystemExit) as exit_info:
        parse("", ["--steps", "50", "--checkpoint-every", "50"])
    assert exit_info.value.code == 2
    assert "--checkpoint-every must be in [1, steps - 1]" in capsys.readouterr().err
