"""The documentation: every public name has an API entry, and the site builds strictly."""

import importlib.util
import pathlib
import re
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
    # Not -q: mkdocs counts the warnings that --strict turns into a failure with its logging
    # handler, which -q silences, so that a quiet strict build passes whatever it warns about.
    result = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(tmp_path / "site")],
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


IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+\.png)\)")


def test_every_figure_is_shown_and_every_shown_figure_exists():
    """The committed figures under docs/img/ and the ``![...](...png)`` on the pages match both ways."""
    docs = ROOT / "docs"
    shown = {
        (page.parent / m["path"]).resolve()
        for page in docs.rglob("*.md")
        for m in IMAGE.finditer(page.read_text())
    }
    committed = {path.resolve() for path in (docs / "img").rglob("*.png")}
    assert not shown - committed, f"pages show missing figures: {sorted(map(str, shown - committed))}"
    assert not committed - shown, f"figures no page shows: {sorted(map(str, committed - shown))}"


def test_docstrings_rst_becomes_markdown_for_the_site():
    """docs/griffe_rst.py: what the API reference shows of a docstring written for help()."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docstring = (
        "Adam.\n\n.. math::\n    m_t = \\beta m_{t-1}\n\n"
        "See :func:`scale_by_adam`, :func:`nowhere` and :math:`\\beta`;\n"
        "    >= 4.\n\nExample:\n    >>> 1\n    1"
    )
    assert module.RstToMarkdown().markdown(docstring) == (
        "Adam.\n\n\n$$\nm_t = \\beta m_{t-1}\n$$\n\n"
        "See [`scale_by_adam`][gradtx.scale_by_adam], `nowhere` and $\\beta$;\n"
        "    \\>= 4.\n\nExamples:\n    >>> 1\n    1"
    )
