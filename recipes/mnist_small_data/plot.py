"""Plot test accuracy against the number of training examples, ours (mean ± std over seeds) next to the paper's.

Reads ``results/table.csv`` (written by ``run.py --summary``) and writes ``results/accuracy_vs_n.png``
atomically. ``run.py --summary`` calls it; it also runs alone::

    python recipes/mnist_small_data/plot.py [--results recipes/mnist_small_data/published]
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

from rkhsreg.evaluation.result import atomic_write

HERE = Path(__file__).resolve().parent


def read_table(path: Path) -> tuple[list[int], list[dict[str, str]]]:
    """The sizes n present in ``table.csv`` and its rows."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    ns = sorted({int(m.group(1)) for key in (rows[0] if rows else {}) for m in [re.fullmatch(r"paper_(\d+)", key)]
                 if m})
    return ns, rows


def plot(table_csv: Path, out_png: Path) -> Path:
    """Draw one line per row: ours solid with ±std bars (cells without runs left out), the paper's dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    ns, rows = read_table(table_csv)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    cmap = plt.get_cmap("tab20")
    for i, row in enumerate(rows):
        color = cmap(i % 20)
        ours = [(n, float(row[f"ours_mean_{n}"]), float(row[f"ours_std_{n}"] or 0)) for n in ns
                if row.get(f"ours_mean_{n}")]
        paper = [(n, float(row[f"paper_{n}"])) for n in ns if row.get(f"paper_{n}")]
        if ours:
            x, y, e = zip(*ours)
            ax.errorbar(x, y, yerr=e, color=color, marker="o", capsize=3, label=f"{row['label']} (ours)")
        if paper:
            x, y = zip(*paper)
            ax.plot(x, y, color=color, linestyle="--", marker="x", alpha=0.6)
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.xaxis.set_minor_locator(NullLocator())   # no log-scale labels such as 4×10² between
    ax.set_xlabel("training examples n")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_title("Table 2: ours (solid, mean ± std over seeds) vs paper (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        plt.close(fig)
    atomic_write(out_png, buf.getvalue())
    return out_png


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(HERE / "published"), help="folder holding table.csv")
    args = parser.parse_args(argv)
    table = Path(args.results) / "table.csv"
    if not table.is_file():
        raise SystemExit(f"--results: {table} does not exist; run `run.py --summary` first.")
    print(f"written: {plot(table, Path(args.results) / 'accuracy_vs_n.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
