"""The documentation: every public name has an API entry, and the site builds strictly."""

import pathlib
import shutil
import subprocess
import sys

import pytest

import gradtx

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _public_names(module):
    return sorted(
        name
        for name in vars(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), type(sys))
    )


def _api_text():
    return "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.md")))


def test_every_public_name_is_in_the_api_reference():
    text = _api_text()
    missing = [n for n in _public_names(gradtx) if f"::: gradtx.{n}\n" not in text]
    missing += [
        f"schedules.{n}" for n in _public_names(gradtx.schedules) if f"::: gradtx.schedules.{n}\n" not in text
    ]
    assert not missing, f"public names missing from docs/api/*.md: {missing}"


def test_api_reference_names_exist():
    """The reverse: no page documents a name that is gone."""
    for line in _api_text().splitlines():
        if line.startswith("::: "):
            obj = gradtx
            for part in line[4:].strip().split(".")[1:]:
                obj = getattr(obj, part)


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    mkdocs = shutil.which("mkdocs")
    assert mkdocs, "mkdocs is importable but its command is not on PATH"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _pages_with_code():
    for page in sorted((ROOT / "docs").rglob("*.md")):
        blocks = [b.split("```")[0] for b in page.read_text().split("```python\n")[1:]]
        if blocks:
            yield pytest.param(blocks, id=str(page.relative_to(ROOT / "docs").with_suffix("")))


@pytest.mark.parametrize("blocks", list(_pages_with_code()))
def test_docs_code_blocks_run(blocks):
    """Every Python block on a docs page runs as written, in order, like a notebook."""
    namespace = {"__name__": "docs_example"}
    for code in blocks:
        exec(compile(code, "<docs>", "exec"), namespace)
