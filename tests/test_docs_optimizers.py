"""The per-optimizer pages under docs/optimizers/: one per public optimizer, true to its signature.

The code blocks on these pages are executed by ``tests/test_docs.py`` (every
``docs/**/*.md`` page); this file checks what that test cannot: that every
optimizer has a page listed in the overview, that each page's defaults table
equals ``inspect.signature``, and that each page's trajectory figure exists.
"""

from __future__ import annotations

import inspect
import pathlib
import re
from typing import Any

import pytest

import gradtx

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "optimizers"
API = ROOT / "docs" / "api"

# Wrappers documented as optimizers (SAM changes the update rule, not just its plumbing).
WRAPPED = ("sam",)

# A defaults-table row: | `name` | default | meaning |
ROW = re.compile(r"^\|\s*`(?P<name>\w+)`\s*\|\s*(?P<default>[^|]*?)\s*\|")
REQUIRED = "*required*"


def public_optimizers() -> list[str]:
    """Every public gradtx name defined in ``gradtx._optimizers``, plus :data:`WRAPPED`."""
    defined = [
        name
        for name, obj in vars(gradtx).items()
        if not name.startswith("_") and getattr(obj, "__module__", "").startswith("gradtx._optimizers.")
    ]
    return sorted(defined) + list(WRAPPED)


OPTIMIZERS = public_optimizers()


def page(name: str) -> str:
    return (PAGES / f"{name}.md").read_text()


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section, up to the next ``## `` heading."""
    parts = text.split(f"\n## {title}\n", 1)
    assert len(parts) == 2, f"no '## {title}' section"
    return parts[1].split("\n## ", 1)[0]


def defaults_table(text: str) -> dict[str, str]:
    """``{argument: default cell}`` from the page's defaults table, in table order."""
    rows = (ROW.match(line) for line in section(text, "Defaults").splitlines())
    return {m["name"]: m["default"] for m in rows if m}


def cell_matches(cell: str, default: Any) -> bool:
    """Whether a defaults-table cell states ``default``.

    ``*required*`` stands for no default; a function default is written as its
    name; anything else is a backticked Python expression (it may use
    ``gradtx``) that must evaluate to an equal value of the same type.
    """
    if default is inspect.Parameter.empty:
        return cell == REQUIRED
    if not (cell.startswith("`") and cell.endswith("`")):
        return False
    expr = cell[1:-1]
    if inspect.isfunction(default):
        return expr == default.__name__
    value = eval(expr, {"__builtins__": {}, "gradtx": gradtx})  # trusted: the text of our own docs
    return type(value) is type(default) and value == default


def test_the_list_of_optimizers_is_complete():
    """Guards the discovery above: a refactor that moved the optimizers would empty the list."""
    assert len(OPTIMIZERS) >= 34, OPTIMIZERS
    assert {"sgd", "adam", "lbfgs", "muon", "schedule_free_adamw", "sam"} <= set(OPTIMIZERS)


def test_every_optimizer_has_a_page_linked_from_the_index():
    index = (PAGES / "index.md").read_text()
    missing = [n for n in OPTIMIZERS if not (PAGES / f"{n}.md").is_file()]
    unlinked = [n for n in OPTIMIZERS if f"]({n}.md)" not in index]
    assert not missing, f"optimizers without a page in docs/optimizers/: {missing}"
    assert not unlinked, f"optimizers not linked from docs/optimizers/index.md: {unlinked}"


def test_no_page_for_a_name_that_is_not_an_optimizer():
    pages = {p.stem for p in PAGES.glob("*.md")} - {"index"}
    assert pages == set(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_defaults_table_equals_the_signature(name):
    table = defaults_table(page(name))
    params = inspect.signature(getattr(gradtx, name)).parameters
    assert list(table) == list(params), "the table must list every argument, in signature order"
    wrong = {
        arg: (table[arg], p.default) for arg, p in params.items() if not cell_matches(table[arg], p.default)
    }
    assert not wrong, f"table cell vs signature default: {wrong}"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trajectory_figure_exists(name):
    link = f"](../img/trajectories/{name}.png)"
    assert link in page(name), f"the page must show {link}"
    figure = ROOT / "docs" / "img" / "trajectories" / f"{name}.png"
    assert figure.is_file(), f"missing figure {figure.relative_to(ROOT)} (made by docs/plot_trajectories.py)"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_page_has_the_update_rule_a_snippet_and_the_api_link(name):
    text = page(name)
    api_page = "wrappers" if name in WRAPPED else "optimizers"
    assert f"](../api/{api_page}.md#gradtx.{name})" in text
    assert f"::: gradtx.{name}\n" in (API / f"{api_page}.md").read_text()
    assert "\n$$\n" in section(text, "Update rule")
    code = section(text, "Usage")
    assert "```python\nimport gradtx, jax.numpy as jnp\n" in code
    assert f"gradtx.{name}(" in code
