"""Runs the scripts in ``examples/`` as a user would, for the example smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    """Runs ``examples/<script>`` in a fresh interpreter that imports gradtx from this checkout."""
    return run_script(EXAMPLES / script, *args)


def run_script(path: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs the Python script ``path`` in a fresh interpreter that imports gradtx from this checkout."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=pythonpath),
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_figure(path: Path) -> None:
    """``path`` is a PNG with something drawn on it."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # axes, curves and legends, not an empty canvas
