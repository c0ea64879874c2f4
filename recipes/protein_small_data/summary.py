"""Table 3's summary: ``runs.csv`` → ``table.md`` / ``table.csv`` (mean auROC50 ± s.e. over the reporting tasks, next
to the paper's), the rank agreement with the paper and the paired differences between rows, task by task.

Loaded by ``run.py`` (``--summary``, and after a run) as a sibling script; it reads results files and writes tables,
and trains nothing. Which config of each cell is reported (``current``) is the runner's to say.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common.results import csv_text, read_runs, write_atomic  # noqa: E402
from recipes._common.runner import mean_std  # noqa: E402

COLUMNS_MD = {0: "no_da", 1: "da"}


def _mean_sem(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (``None`` for one value)."""
    mean, std = mean_std(values)
    return mean, (None if std is None else std / math.sqrt(len(values)))


def paired(a: dict[str, float], b: dict[str, float]) -> tuple[float, float | None, int, int, int] | None:
    """Mean ± s.e. of ``a[t] − b[t]`` over common tasks, and wins / ties / losses of ``a``; None without overlap."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diffs = [a[t] - b[t] for t in common]
    mean, sem = _mean_sem(diffs)
    return (mean, sem, sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))


def paired_lines(table: dict[str, Any], cells: dict[tuple[str, int], dict[str, float]]) -> str:
    """Markdown table of paired differences: each row vs no regularization, and (∗) vs no augmentation.

    Every row of a task starts from the same weights (seed = task), so per-task differences remove
    the task-to-task spread that dominates the standard errors of the means.
    """
    def fmt(result: tuple | None) -> str:
        if result is None:
            return "—"
        mean, sem, win, tie, loss = result
        return f"{mean:+.3f}" + (f" ± {sem:.3f}" if sem is not None else "") + f" ({win}/{tie}/{loss})"

    lines = ["Paired differences of auROC50 over common reporting tasks (mean ± s.e., wins/ties/losses):",
             "", "| method | − none | − none (∗) | (∗) − no DA |", "|---|---|---|---|"]
    base = table["rows"] and next(iter(table["rows"]))
    for name, row in table["rows"].items():
        if not any((name, a) in cells for a in (0, 1)):
            continue
        vs = [fmt(paired(cells[(name, a)], cells[(base, a)])) if name != base and (name, a) in cells
              and (base, a) in cells else "—" for a in (0, 1)]
        da = fmt(paired(cells[(name, 1)], cells[(name, 0)])) if (name, 1) in cells and (name, 0) in cells else "—"
        lines.append(f"| {row['label']} | {vs[0]} | {vs[1]} | {da} |")
    return "\n".join(lines)


def summarize(table: dict[str, Any], results: Path, current: dict[tuple[str, int], str]) -> str:
    """Write ``table.md`` and ``table.csv`` (atomically) from ``runs.csv``; returns the Markdown.

    For each (row, augment) the runs of the current config (``current``: ``{(row, augment): config hash}`` of the
    grids' choice; every config of the cell when empty) are averaged over the reporting tasks; a cell with fewer
    tasks than the others says how many it has.
    """
    runs = read_runs(results / "runs.csv")
    header = ["row", "label"]
    for a in (0, 1):
        tag = COLUMNS_MD[a]
        header += [f"paper_{tag}", f"auroc50_{tag}", f"sem_{tag}", f"auroc_{tag}", f"roc50_{tag}", f"tasks_{tag}",
                   f"seconds_{tag}", f"hparams_{tag}"]
    md = ["| method | paper | ours auROC50 ± s.e. (tasks) | auROC | ROC50 | paper (∗) | ours (∗) auROC50 (tasks) "
          "| auROC (∗) | ROC50 (∗) | s/run |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    records, ranks = [], {0: [], 1: []}
    cell_values: dict[tuple[str, int], dict[str, float]] = {}
    for name, row in table["rows"].items():
        rec: dict[str, Any] = {"row": name, "label": row["label"]}
        cells, secs = [], []
        for a in (0, 1):
            tag = COLUMNS_MD[a]
            paper = row["paper"][tag]
            rec[f"paper_{tag}"] = paper
            mine = [r for r in runs if r["row"] == name and int(r["augment"]) == a and
                    (not current or r["config_hash"] == current.get((name, a)))]
            by_task = {r["task"]: r for r in mine}
            if not by_task:
                cells.append(f"{paper:.3f} | — | — | —")
                continue
            vals = [float(r["auroc50"]) for r in by_task.values()]
            cell_values[(name, a)] = {t: float(r["auroc50"]) for t, r in by_task.items()}
            mean, sem = _mean_sem(vals)
            au = statistics.fmean(float(r["auroc"]) for r in by_task.values())
            r50 = statistics.fmean(float(r["roc50"]) for r in by_task.values())
            sec = statistics.fmean(float(r["seconds"]) for r in by_task.values())
            ranks[a].append((mean, row["label"], paper))
            rec.update({f"auroc50_{tag}": round(mean, 4), f"sem_{tag}": None if sem is None else round(sem, 4),
                        f"auroc_{tag}": round(au, 4), f"roc50_{tag}": round(r50, 4), f"tasks_{tag}": len(vals),
                        f"seconds_{tag}": round(sec, 1), f"hparams_{tag}": next(iter(by_task.values()))["hparams"]})
            cells.append(f"{paper:.3f} | {mean:.3f}" + (f" ± {sem:.3f}" if sem is not None else "")
                         + f" ({len(vals)}) | {au:.3f} | {r50:.3f}")
            secs.append(f"{sec:.0f}")
        records.append(rec)
        md.append(f"| {row['label']} | " + " | ".join(cells) + f" | {' / '.join(secs) or '—'} |")
    order_lines = []
    for a in (0, 1):
        if ranks[a]:
            ours = [lab for _, lab, _ in sorted(ranks[a], reverse=True)]
            paper = [lab for _, lab, _ in sorted(((p, lab, p) for _, lab, p in ranks[a]), reverse=True)]
            order_lines.append(f"- {'with' if a else 'without'} augmentation, ours best first: {', '.join(ours)}; "
                               f"paper (same rows): {', '.join(paper)}")
        if len(ranks[a]) >= 3:
            from scipy.stats import kendalltau, spearmanr

            ours_v, paper_v = [m for m, _, _ in ranks[a]], [p for _, _, p in ranks[a]]
            order_lines.append(f"  rank agreement with the paper over these {len(ours_v)} rows: Spearman ρ = "
                               f"{spearmanr(ours_v, paper_v)[0]:.2f}, Kendall τ = {kendalltau(ours_v, paper_v)[0]:.2f}")
    paired = paired_lines(table, cell_values)
    machines = sorted({r["machine"] for r in runs})
    text = ("# Table 3 (mean test auROC50 over the reporting tasks; the paper's numbers are on SCOP 1.67)\n\n"
            + "\n".join(md) + "\n\n" + "\n".join(order_lines) + "\n\n" + paired + "\n\n"
            f"{len(runs)} runs from results/runs.csv; machine(s): {'; '.join(machines) or '—'}. "
            "auROC50 = ROC area for FPR ≤ 0.5, normalised (paper's); ROC50 = area up to the first 50 false "
            "positives (classic); s/run = mean training seconds (without / with augmentation). "
            "The data differ from the paper's (see docs/protein_small_data.md).\n")
    write_atomic(results / "table.md", text)
    write_atomic(results / "table.csv", csv_text(header, records))
    return text
