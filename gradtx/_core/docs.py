"""Argument descriptions shared by many docstrings, written once.

A docstring decorated with :func:`shared_docs` may write ``{learning_rate}``
(or any key of ``GLOSSARY``) in its Args section; the decorator fills it in.
Braces around other words are left alone, so LaTeX in docstrings is safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

GLOSSARY: dict[str, str] = {
    "learning_rate": (
        "step size, a number or a schedule ``fn(step) -> value`` "
        "(see ``gradtx.schedules``); stored in the state as ``learning_rate``."
    ),
    "b1": "exponential decay rate of the first-moment (mean) estimate, in [0, 1).",
    "b2": "exponential decay rate of the second-moment estimate, in [0, 1).",
    "eps": "added to the denominator for numerical stability; must be >= 0.",
    "eps_root": (
        "added inside the square root of the denominator (useful when "
        "differentiating through the update); must be >= 0."
    ),
    "weight_decay": "coefficient of the L2 penalty ``weight_decay * params`` added to the gradient.",
    "mu_dtype": "dtype of the first-moment buffer; ``None`` uses each parameter's dtype.",
    "nu_dtype": "dtype of the second-moment buffer; ``None`` uses each parameter's dtype.",
    "mask": (
        "a pytree of booleans with the parameters' structure, or a function of "
        "the parameters returning one; leaves marked ``False`` are left untouched."
    ),
    "hyperparams_note": (
        "Every numeric hyperparameter lives in the optimizer state: read it with "
        "``gradtx.get_hyperparam`` and change it with ``gradtx.set_hyperparam`` "
        "without recompiling."
    ),
}


def docstring_filler(glossary: dict[str, str]) -> Callable[[F], F]:
    """A decorator filling ``{name}`` tokens of a docstring from ``glossary``."""
    token = re.compile(r"\{(" + "|".join(map(re.escape, glossary)) + r")\}")

    def fill(fn: F) -> F:
        if fn.__doc__:
            fn.__doc__ = token.sub(lambda m: glossary[m.group(1)], fn.__doc__)
        return fn

    return fill


shared_docs = docstring_filler(GLOSSARY)
"""Fills ``{name}`` tokens of a docstring from :data:`GLOSSARY`."""
