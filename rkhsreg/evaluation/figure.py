"""Draw accuracy against ε for results already in memory, and write the figure as PNG, PDF or SVG by the
file's extension (matplotlib, Agg backend). Knows no result class: it reads ``norm``, ``epsilons``,
``clean_accuracy``, ``robust_accuracy`` and ``certified_accuracy``. The public entry points are
:func:`rkhsreg.evaluation.plot_results` and :meth:`rkhsreg.evaluation.RobustnessResult.plot`.

Example:
    >>> draw_curves([result], ["‖f‖²_δ"], "fig.pdf")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rkhsreg._atomic import atomic_write, refuse_existing
from rkhsreg._errors import ConfigurationError

__all__ = ["PLOT_FORMATS", "draw_curves", "plot_format", "write_figure"]

#: File formats a plot is written in, chosen by the path's extension.
PLOT_FORMATS = ("png", "pdf", "svg")

_NORM_NAMES = {"l2": "ℓ2", "linf": "ℓ∞"}


def plot_format(path: str | os.PathLike) -> str:
    """The format of a plot file from its extension (``png``, ``pdf`` or ``svg``).

    Raises:
        ConfigurationError: another extension, named with the allowed ones.

    Example:
        >>> plot_format("results/fig.pdf")
        'pdf'
    """
    suffix = Path(os.fspath(path)).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise ConfigurationError(f"path={os.fspath(path)!r}: a plot is written as "
                                 f"{', '.join('.' + f for f in PLOT_FORMATS)} (chosen by the extension); "
                                 "pass a file name ending in one of them.")
    return suffix


def write_figure(fig: Any, path: str | os.PathLike, *, overwrite: bool = False, **savefig: Any) -> Path:
    """Write a matplotlib figure to ``path`` atomically, in the format its extension names (:func:`plot_format`),
    refusing an existing file unless ``overwrite`` (:func:`rkhsreg._atomic.refuse_existing`). PDF and SVG get no
    creation date, so the same figure gives the same bytes.

    Example:
        >>> write_figure(fig, "figures/curve.svg")  # doctest: +SKIP
    """
    fmt = plot_format(path)
    refuse_existing([path], overwrite=overwrite)
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt in ("pdf", "svg") else None  # reproducible bytes for the same figure
    fig.savefig(buffer, format=fmt, metadata=metadata, **savefig)
    return atomic_write(path, buffer.getvalue(), overwrite=overwrite)


def draw_curves(loaded: Sequence[Any], labels: Sequence[str], path: str | os.PathLike | None = None, *,
                title: str | None = None, xlabel: str | None = None, ax: Any = None, overwrite: bool = False) -> Any:
    """One colour per result: solid under attack, dashed certified; see :func:`rkhsreg.evaluation.plot_results`."""
    norms = sorted({r.norm for r in loaded})
    if len(norms) > 1:
        raise ConfigurationError(f"results of different norms ({', '.join(norms)}) cannot share an ε axis; plot "
                                 "each norm in its own figure.")
    if path is not None:            # the format and the overwrite policy before drawing anything
        plot_format(path)
        refuse_existing([path], overwrite=overwrite)
    try:
        import matplotlib
        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'rkhsreg[eval]'") from exc
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    else:
        fig = ax.figure
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", [None])
    for number, (result, label) in enumerate(zip(loaded, labels)):
        color = colors[number % len(colors)]
        prefix = f"{label}: " if label else ""
        start = result.epsilons[0] > 0
        eps = [0.0, *result.epsilons] if start else list(result.epsilons)
        attacked = [result.clean_accuracy, *result.robust_accuracy] if start else list(result.robust_accuracy)
        ax.plot(eps, attacked, marker="o", color=color, label=f"{prefix}robust accuracy (attacks)")
        if result.certified_accuracy is not None:
            certified = ([result.clean_accuracy, *result.certified_accuracy] if start
                         else list(result.certified_accuracy))
            ax.plot(eps, certified, marker="s", linestyle="--", color=color, label=f"{prefix}certified accuracy")
    ax.set_xlabel(xlabel if xlabel is not None else f"ε ({_NORM_NAMES.get(norms[0], norms[0])} radius)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if path is not None:
        write_figure(fig, path, overwrite=overwrite, bbox_inches="tight")
    if own:
        plt.close(fig)
    return fig
