"""Griffe extension for the API reference: read rkhsreg's Google-style docstrings as Napoleon does.

Two habits of the code base that Griffe renders badly, fixed before Griffe parses a docstring:

* the singular ``Example:`` heading, a section for Napoleon but an admonition for Griffe (its ``>>>``
  lines would render as Markdown: nested block quotes, ``[...]`` outputs taken for links), is read
  as ``Examples:``, whose doctest lines become code;
* Sphinx roles (``:func:`~rkhsreg.training.regularized_loss```) become code spans (``regularized_loss``;
  the full path without the ``~``), as Sphinx would display them;
* a doctest directive after another comment (``# warm start, doctest: +SKIP``), which Griffe's own
  trimming misses, is dropped.

Loaded by ``mkdocs.yml`` (``extensions:`` of the mkdocstrings Python handler); not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:(\s*)$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`(~?)([^`]+)`")
_TRAILING_DOCTEST = re.compile(r",\s*doctest:[^\n]*$", re.MULTILINE)


def _code_span(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class NapoleonHabits(griffe.Extension):
    """Apply the three rewrites above to every docstring before Griffe parses it."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _SINGULAR.sub(r"\1Examples:\2", obj.docstring.value)
            text = _TRAILING_DOCTEST.sub("", text)
            obj.docstring.value = _ROLE.sub(_code_span, text)
