"""The getting-started page and the migration guides: every name they cite exists.

Every inline code span on these pages (the name-by-name tables included) is
parsed as Python; each ``gradtx.*``, ``optax.*`` and ``torch.*`` name in it
must resolve in the installed library, and each keyword argument of a call
must be a parameter of the function called. The torch training loop of
``migrating_from_torch.md`` is fenced as ``py`` so that the docs test, which
runs the ``python`` blocks, does not need torch; here it runs when torch is
installed, and must end on the same weights as the gradtx loop beside it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import gradtx

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = ["getting_started.md", "migrating_from_optax.md", "migrating_from_torch.md"]
LIBRARIES = ("gradtx", "optax", "torch")
# A row that says "(torch ≥ 2.9)" names something only recent torch versions have.
TORCH_VERSION_NOTE = re.compile(r"torch ≥ (\d+)\.(\d+)")


def _without_fences(text: str) -> str:
    """The page with its fenced code blocks removed (they are run, not parsed)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _lines(page: str) -> list[str]:
    return _without_fences((DOCS / page).read_text()).splitlines()


def _code_spans(line: str) -> list[str]:
    return re.findall(r"`([^`]+)`", line)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for an attribute chain on a bare name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _references(span: str) -> Iterator[tuple[str, list[str]]]:
    """``(dotted name, keyword arguments it is called with)`` for each library name in ``span``."""
    try:
        tree = ast.parse(span)
    except SyntaxError:  # prose in backticks, e.g. `1 − β₂ᵗ`: take the dotted names only
        for name in re.findall(r"\b(?:gradtx|optax|torch)(?:\.\w+)+", span):
            yield name, []
        return
    for node in ast.walk(tree):
        name = _dotted(node.func) if isinstance(node, ast.Call) else _dotted(node)
        if name and name.split(".")[0] in LIBRARIES and "." in name:
            keywords = [k.arg for k in node.keywords if k.arg] if isinstance(node, ast.Call) else []
            yield name, keywords


def _page_references(page: str, library: str) -> list[tuple[str, list[str], str]]:
    """``(name, keywords, the line it is on)`` for every ``library.*`` name on ``page``."""
    return [
        (name, keywords, line)
        for line in _lines(page)
        for span in _code_spans(line)
        for name, keywords in _references(span)
        if name.split(".")[0] == library
    ]


def _resolve(module: ModuleType, dotted: str) -> Any:
    obj = module
    for i, part in enumerate(dotted.split(".")[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            # A submodule not imported by its package's __init__.
            obj = importlib.import_module(".".join(dotted.split(".")[: i + 1]))
    return obj


def _unknown_keywords(fn: Any, keywords: list[str]) -> list[str]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no introspectable signature
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in keywords if k not in params]


def _problems(page: str, module: ModuleType, may_be_missing=lambda line: False) -> list[str]:
    """What is wrong with the ``module.*`` names on ``page``; a name on a line for which
    ``may_be_missing`` is true may be absent (the row says which version added it)."""
    problems = []
    for name, keywords, line in _page_references(page, module.__name__):
        try:
            obj = _resolve(module, name)
        except (AttributeError, ModuleNotFoundError):
            if not may_be_missing(line):
                problems.append(f"{name} does not exist")
            continue
        problems += [f"{name}() has no argument {k!r}" for k in _unknown_keywords(obj, keywords)]
    return sorted(set(problems))


@pytest.mark.parametrize("page", PAGES)
def test_gradtx_names_exist(page):
    assert _page_references(page, "gradtx"), f"no gradtx names found on {page}: is the parser broken?"
    assert not _problems(page, gradtx), _problems(page, gradtx)


def test_optax_names_exist():
    optax = pytest.importorskip("optax")
    # The name-by-name tables cover well over a hundred optax names.
    assert len({name for name, _, _ in _page_references("migrating_from_optax.md", "optax")}) > 150
    for page in PAGES:
        assert not _problems(page, optax), _problems(page, optax)


def _too_recent_for(torch: ModuleType):
    """Whether a line names a torch version newer than the installed one."""
    installed = tuple(int(v) for v in re.findall(r"\d+", torch.__version__)[:2])

    def skip(line: str) -> bool:
        note = TORCH_VERSION_NOTE.search(line)
        return bool(note) and installed < (int(note[1]), int(note[2]))

    return skip


def test_torch_names_exist():
    torch = pytest.importorskip("torch")
    assert len({name for name, _, _ in _page_references("migrating_from_torch.md", "torch")}) > 40
    for page in PAGES:
        problems = _problems(page, torch, may_be_missing=_too_recent_for(torch))
        assert not problems, problems


def _table(page: str, header: str) -> list[list[str]]:
    """The body rows (as lists of cells) of the table whose header row starts with ``header``."""
    lines = _lines(page)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:  # past the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _parameter_names(callables: list[Any]) -> set[str]:
    names = set()
    for fn in callables:
        try:
            names |= set(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
    return names


def test_torch_argument_table_names_real_arguments():
    torch = pytest.importorskip("torch")
    optimizers = [
        cls
        for cls in vars(torch.optim).values()
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)
    ]
    torch_args = _parameter_names(optimizers)
    gradtx_args = _parameter_names(
        [fn for module in (gradtx, gradtx.schedules) for fn in vars(module).values() if callable(fn)]
        + [gradtx.minimize]
    )
    rows = _table("migrating_from_torch.md", "torch argument")
    assert len(rows) > 10
    for torch_cell, gradtx_cell, _ in rows:
        assert set(_code_spans(torch_cell)) <= torch_args, torch_cell
        assert set(_code_spans(gradtx_cell)) <= gradtx_args, gradtx_cell


def _fenced(page: str, language: str) -> list[str]:
    return [block.split("```")[0] for block in (DOCS / page).read_text().split(f"```{language}\n")[1:]]


def test_side_by_side_loops_end_on_the_same_weights():
    pytest.importorskip("torch")
    page = "migrating_from_torch.md"
    (torch_loop,) = _fenced(page, "py")
    torch_namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(torch_loop, f"<{page}: torch>", "exec"), torch_namespace)

    gradtx_namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in _fenced(page, "python"):
        exec(compile(block, f"<{page}>", "exec"), gradtx_namespace)

    np.testing.assert_allclose(
        gradtx_namespace["gradtx_weights"], torch_namespace["torch_weights"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(torch_namespace["torch_weights"], [2.0, -1.0, 0.5], atol=5e-3)
