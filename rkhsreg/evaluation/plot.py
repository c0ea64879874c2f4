"""Accuracy-against-ε figures of one or several results: PNG, PDF or SVG by the file's extension (matplotlib, Agg).

Example:
    >>> from rkhsreg.evaluation import plot_results
    >>> plot_results(["baseline.json", "regularized.json"], "fig.pdf",
    ...              labels=["weight decay", "‖f‖²_δ"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rkhsreg._errors import ConfigurationError
from rkhsreg.evaluation.figure import draw_curves
from rkhsreg.evaluation.result import RobustnessResult

__all__ = ["plot_results"]


def _as_result(item: Any) -> Any:
    if isinstance(item, RobustnessResult):
        return item
    if isinstance(item, (str, os.PathLike)):
        return RobustnessResult.load(item)
    raise ConfigurationError(f"results: {item!r} is not allowed; pass RobustnessResult objects or paths of the "
                             "JSON files they saved.")


def plot_results(results: Sequence[Any], path: str | os.PathLike | None = None, *,
                 labels: Sequence[str] | None = None, title: str | None = None, xlabel: str | None = None,
                 ax: Any = None, overwrite: bool = False) -> Any:
    """Draw robust accuracy (and certified accuracy, when computed) against ε for one or several results.

    Each result gets one colour: a solid line for the accuracy under attack (an upper bound on the true robust
    accuracy), a dashed one for the certified accuracy (a lower bound). ε = 0 is the clean accuracy. The
    x-axis shows ε as given to the evaluation (input units), the norm named.

    Args:
        results: :class:`~rkhsreg.evaluation.RobustnessResult` objects, or paths of the JSON files that
            :meth:`~rkhsreg.evaluation.RobustnessResult.save` wrote; all of one norm.
        path: write the figure there, atomically, as PNG, PDF or SVG by its extension; ``None``: only draw.
        labels: one legend label per result (default: the JSON file's name, else ``"model 1"``, …).
        title: the figure's title (default: none, as a paper's figure has its caption).
        xlabel: the x-axis label (default ``"ε (ℓ2 radius)"`` or ``"ε (ℓ∞ radius)"``).
        ax: a matplotlib ``Axes`` to draw on (default: a new figure).
        overwrite: replace ``path`` if it exists (default: refuse, before drawing).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ConfigurationError: no results, results of different norms, labels that do not match the results, an
            extension other than ``.png``, ``.pdf`` or ``.svg``.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> fig = plot_results([plain, regularized], "fig.svg", labels=["plain", "regularized"])  # doctest: +SKIP
    """
    if isinstance(results, (str, os.PathLike)) or not isinstance(results, Sequence):
        results = [results]
    if not results:
        raise ConfigurationError("results=[] is not allowed; pass at least one RobustnessResult or JSON path.")
    loaded = [_as_result(r) for r in results]
    if labels is None:
        labels = [Path(os.fspath(r)).stem if isinstance(r, (str, os.PathLike)) else
                  ("" if len(results) == 1 else f"model {i + 1}") for i, r in enumerate(results)]
    elif isinstance(labels, str) or len(labels) != len(loaded):
        raise ConfigurationError(f"labels={labels!r} is not allowed; pass one label per result ({len(loaded)}).")
    return draw_curves(loaded, labels, path, title=title, xlabel=xlabel, ax=ax, overwrite=overwrite)
