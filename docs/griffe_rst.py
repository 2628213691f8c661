"""A griffe extension, for the docs site only: the docstrings' reStructuredText bits as Markdown.

The docstrings are written like optax's, to read well in ``help()``: ``.. math::`` blocks,
``:math:`` and ``:func:`` roles, and an ``Example:`` heading over the doctest. mkdocstrings renders
docstrings as Markdown, where those come out as literal text, and where griffe's Google parser takes
``Example:`` for an admonition, so that the doctest's ``>>>`` become nested block quotes. Before the
API reference is rendered, this rewrites (in memory; the sources keep their form):

- ``Example:`` as ``Examples:``, the Google-style section whose doctests render as code;
- ``.. math::`` blocks as ``$$ ... $$`` and ``:math:`x``` as ``$x$`` (pymdownx.arithmatex);
- ``:func:`name``` and ``:class:`name``` as a link to the name's API entry (``gradtx.name``,
  ``gradtx.schedules.name`` or ``gradtx.tree.name``, whichever docs/api/ documents), other roles
  and names without an entry as code;
- a line starting ``>=`` (a wrapped description) escaped, not a block quote;

and drops the docstrings that inspection finds on fields but that belong to something else: the
field's value's type (``int``'s, on ``block_size = 256``) or NamedTuple's "Alias for field number".

Enabled in mkdocs.yml under the python handler's ``extensions``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import griffe

_API_PAGES = Path(__file__).parent / "api"
_NAMESPACES = ("gradtx", "gradtx.schedules", "gradtx.tree")
_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
# The directive, then its body: lines indented deeper than it, and blank lines.
_MATH_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)*)", re.MULTILINE
)
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?P<role>[a-z]+):`~?(?P<name>[^`]+)`")
_GREATER_EQUAL = re.compile(r"^(\s*)>=", re.MULTILINE)
_NOT_THEIRS = re.compile(r"Alias for field number \d+")
_BUILTIN_DOCS = {inspect.cleandoc(t.__doc__) for t in (int, float, bool, str, bytes, tuple, list, dict)}


def _documented() -> set[str]:
    """The identifiers with an API entry: every ``::: gradtx...`` line of docs/api/*.md."""
    entries = set()
    for page in _API_PAGES.glob("*.md"):
        entries.update(line[4:].strip() for line in page.read_text().splitlines() if line.startswith("::: "))
    return entries


def _display_math(match: re.Match[str]) -> str:
    """A ``.. math::`` directive and its indented body as a ``$$`` display block."""
    indent = match["indent"]
    body = [f"{indent}{line.strip()}" for line in match["body"].splitlines() if line.strip()]
    return "\n".join(["", f"{indent}$$", *body, f"{indent}$$", "", ""])


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded package, once the object tree is complete."""

    def __init__(self) -> None:
        super().__init__()
        self._documented = _documented()

    def _role(self, match: re.Match[str]) -> str:
        name = match["name"]
        if match["role"] in ("func", "class"):
            candidates = [name] if name.startswith("gradtx.") else [f"{ns}.{name}" for ns in _NAMESPACES]
            for target in candidates:
                if target in self._documented:
                    return f"[`{name}`][{target}]"
        return f"`{name}`"

    def markdown(self, text: str) -> str:
        text = _EXAMPLE_HEADING.sub(r"\1Examples:", text)
        text = _MATH_BLOCK.sub(_display_math, text)
        text = _INLINE_MATH.sub(lambda m: f"${m[1].strip()}$", text)
        text = _GREATER_EQUAL.sub(r"\1\\>=", text)
        return _ROLE.sub(self._role, text)

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = obj.docstring.value
        if obj.is_attribute and (text in _BUILTIN_DOCS or _NOT_THEIRS.fullmatch(text)):
            obj.docstring = None
        else:
            obj.docstring.value = self.markdown(text)
