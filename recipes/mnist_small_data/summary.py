"""Table 2's summary: ``runs.csv`` → ``table.md`` / ``table.csv`` (mean ± std over seeds next to the paper's cells)
and the paper's ordering claims checked on our means and seed by seed.

Loaded by ``run.py`` (``--summary``, and after every run) as a sibling script; it reads results files and writes
tables, and trains nothing. Which config of each row is reported (``current``) is the runner's to say: the hashes
of the configs its validation grids chose (:meth:`run.Runner.current_hashes`).

Example:
    >>> current = runner.current_hashes((300, 1000))                              # doctest: +SKIP
    >>> text = summarize(table, Path("results/mnist_small_data"), current)      # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common import results as _results  # noqa: E402
from recipes._common.runner import mean_std  # noqa: E402

def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def summarize(table: dict[str, Any], results: Path, current: dict[tuple[str, int], str],
              ns: Sequence[int] = (300, 1000)) -> str:
    """Write ``table.md`` and ``table.csv`` (atomically) from ``runs.csv``; returns the Markdown.

    For each (row, n) the runs of the current config (``current``: ``{(row, n): config hash}`` of the validation
    grids' choice) are reported; when it has none yet, the config with the most
    finished seeds (ties: the most recent) is reported and marked † (not the tuned config).
    """
    runs = _results.read_runs(results / "runs.csv")
    ns = sorted(set(ns) | {int(r["n"]) for r in runs})
    groups: dict[tuple[str, int], dict[str, list[dict[str, str]]]] = {}
    for r in runs:
        groups.setdefault((r["row"], int(r["n"])), {}).setdefault(r["config_hash"], []).append(r)
    header = ["row", "label"]
    for n in ns:
        header += [f"paper_{n}", f"ours_mean_{n}", f"ours_std_{n}", f"seeds_{n}", f"gap_{n}", f"epochs_{n}",
                   f"seconds_{n}", f"tuned_{n}"]
    out_rows = []
    md = ["| method | " + " | ".join(f"paper {n} | ours {n} (seeds) | gap {n}" for n in ns) + " | epochs | s/run |",
          "|---|" + "---|---|---|" * len(ns) + "---|---|"]
    for name, row in table["rows"].items():
        rec: dict[str, Any] = {"row": name, "label": row["label"]}
        cells, epochs_seen, secs_seen = [], [], []
        for n in ns:
            paper = row["paper"].get(n)
            options = groups.get((name, n), {})
            mark = ""
            best = options.get(current.get((name, n), ""))
            if best is None:
                best = max(options.values(), key=lambda g: (len({r["seed"] for r in g}),
                                                            max(r["finished_at"] for r in g)), default=None)
                mark = " †" if best else ""  # not the grids' choice (or the row's grid is unfinished)
            rec[f"paper_{n}"] = paper
            if best:
                by_seed = {r["seed"]: r for r in best}  # one run per seed
                accs = [float(r["test_acc"]) for r in by_seed.values()]
                rec[f"by_seed_{n}"] = {s: float(r["test_acc"]) for s, r in by_seed.items()}  # not a CSV column
                mean, std = mean_std(accs)
                secs = sum(float(r["seconds"]) for r in by_seed.values()) / len(by_seed)
                rec.update({f"ours_mean_{n}": round(mean, 2), f"ours_std_{n}": None if std is None else round(std, 2),
                            f"seeds_{n}": len(accs), f"gap_{n}": round(mean - paper, 2) if paper else None,
                            f"epochs_{n}": best[0]["epochs"], f"seconds_{n}": round(secs),
                            f"tuned_{n}": not mark})
                ours = f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "") + f" ({len(accs)}){mark}"
                cells.append(f"{_pct(paper)} | {ours} | " + ("—" if paper is None else f"{mean - paper:+.2f}"))
                epochs_seen.append(f"{best[0]['epochs']}")
                secs_seen.append(f"{secs:.0f}")
            else:
                rec.update({f"ours_mean_{n}": None, f"ours_std_{n}": None, f"seeds_{n}": 0, f"gap_{n}": None,
                            f"epochs_{n}": None, f"seconds_{n}": None})
                cells.append(f"{_pct(paper)} | — | —")
                epochs_seen.append("—")
                secs_seen.append("—")
        out_rows.append(rec)
        md.append(f"| {row['label']} | " + " | ".join(cells) + f" | {' / '.join(epochs_seen)} | "
                  f"{' / '.join(secs_seen)} |")
    machines = sorted({r["machine"] for r in runs})
    text = ("# Table 2 (MNIST test accuracy %, mean ± std over seeds; gap = ours − paper)\n\n"
            + "\n".join(md) + "\n\n"
            f"{len(runs)} runs from results/runs.csv; machine(s): {'; '.join(machines) or '—'}. "
            "epochs and s/run (mean training seconds per run) are given per n, in the column order. "
            "†: no run of the hyper-parameters the validation grid chose yet (or its grid is unfinished); "
            "another config is shown.\n" + ordering(table, out_rows, ns))
    _results.atomic_write(results / "table.md", text)
    _results.atomic_write(results / "table.csv", _results.csv_text(header, out_rows))
    return text


def paired_gain(ours: dict[str, float], base: dict[str, float]) -> tuple[float, float | None, int] | None:
    """Mean ± std over the seeds both have of ``ours[seed] − base[seed]`` (a seed fixes the training subset,
    the initialisation and the batch order, so the paired difference removes most of the seed noise)."""
    shared = sorted(set(ours) & set(base))
    if not shared:
        return None
    mean, std = mean_std([ours[s] - base[s] for s in shared])
    return mean, std, len(shared)


def agreement(ours: Sequence[float], paper: Sequence[float]) -> tuple[float, float, list[float]]:
    """How far our means follow the paper's over the same rows: Spearman ρ and Kendall τ of the two columns
    (ties ranked as in scipy), and the per-row gaps ours − paper."""
    from scipy.stats import kendalltau, spearmanr

    return (float(spearmanr(ours, paper)[0]), float(kendalltau(ours, paper)[0]),
            [o - p for o, p in zip(ours, paper, strict=True)])


def ordering(table: dict[str, Any], records: Sequence[dict[str, Any]], ns: Sequence[int],
             baseline: str = "wd", top: int = 4) -> str:
    """The paper's ordering claims checked on our means, one line per n: the rows not above ``baseline``
    (the paper: every regularizer beats weight decay) and our best row next to the paper's best row; the rank
    agreement of our means with the paper's and where the paper's ``top`` best rows rank among ours (3 rows
    or more); then, when per-seed results are known, each row's
    paired gain over ``baseline`` on the seeds both ran, and the paper's best row minus each of our ``top`` best
    other rows on the seeds both ran (means over different seeds are not comparable)."""
    lines = []
    for n in ns:
        ours = {r["row"]: r[f"ours_mean_{n}"] for r in records if r.get(f"ours_mean_{n}") is not None}
        paper = {r["row"]: r[f"paper_{n}"] for r in records if r.get(f"paper_{n}") is not None}
        if baseline not in ours or len(ours) < 2:
            continue
        label = lambda name: table["rows"][name]["label"]  # noqa: E731
        below = [f"{label(k)} {v:.2f}" for k, v in ours.items() if k != baseline and v <= ours[baseline]]
        best = max(ours, key=ours.get)
        paper_best = max(paper, key=paper.get) if paper else None
        lines.append(f"- n={n} ({len(ours)} of {len(table['rows'])} rows): not above {label(baseline)} "
                     f"({ours[baseline]:.2f}): {', '.join(below) or 'none'}; our best: {label(best)} {ours[best]:.2f}"
                     + (f" (paper's best: {label(paper_best)} {paper[paper_best]:.2f})" if paper_best else "") + ".")
        shared = [k for k in ours if k in paper]
        if len(shared) >= 3:
            rho, tau, gaps = agreement([ours[k] for k in shared], [paper[k] for k in shared])
            worst = max(range(len(shared)), key=lambda i: abs(gaps[i]))
            lines.append(f"  - agreement with the paper over these {len(shared)} rows: Spearman ρ = {rho:.2f}, "
                         f"Kendall τ = {tau:.2f}; mean |gap| {sum(map(abs, gaps)) / len(gaps):.2f}, largest "
                         f"{gaps[worst]:+.2f} ({label(shared[worst])}).")
            # the paper's "the τ+δ combinations are best": where its best rows rank among ours (1 = our best)
            leaders = sorted(shared, key=lambda k: -paper[k])[:top]
            ranks = [f"{label(k)} {1 + sum(ours[j] > ours[k] for j in shared)}" for k in leaders]
            lines.append(f"  - the paper's {len(leaders)} best rows, ranked among our {len(shared)} (1 = best): "
                         + ", ".join(ranks) + ".")
        seeds = {r["row"]: r[f"by_seed_{n}"] for r in records if r.get(f"by_seed_{n}")}
        gains = {k: paired_gain(v, seeds[baseline]) for k, v in seeds.items() if k != baseline and baseline in seeds}
        gains = {k: g for k, g in gains.items() if g is not None}
        if gains:
            items = [f"{label(k)} {m:+.2f}" + (f" ± {s:.2f}" if s is not None else "") + f" ({c})"
                     for k, (m, s, c) in sorted(gains.items(), key=lambda kv: -kv[1][0])]
            lines.append(f"  - paired gain over {label(baseline)}, seed by seed (mean ± std (seeds both ran)): "
                         + "; ".join(items) + ".")
        if paper_best in seeds:  # the paper's claim "the τ+δ combinations are best", seed by seed
            rivals = sorted((k for k in seeds if k != paper_best), key=lambda k: -ours.get(k, -math.inf))[:top]
            pairs = [(k, paired_gain(seeds[paper_best], seeds[k])) for k in rivals]
            items = [f"{label(k)} {g[0]:+.2f}" + (f" ± {g[1]:.2f}" if g[1] is not None else "") + f" ({g[2]})"
                     for k, g in pairs if g is not None]
            if items:
                lines.append(f"  - {label(paper_best)} (the paper's best row) minus our {len(rivals)} next best "
                             "rows, seed by seed: " + "; ".join(items) + ".")
        for a, b in table.get("compare", []):   # the table's named comparisons, seed by seed
            g = paired_gain(seeds[a], seeds[b]) if a in seeds and b in seeds else None
            if g is not None:
                lines.append(f"  - {label(a)} minus {label(b)}, seed by seed: {g[0]:+.2f}"
                             + (f" ± {g[1]:.2f}" if g[1] is not None else "") + f" ({g[2]}).")
    return ("\nOrdering check (means):\n" + "\n".join(lines) + "\n") if lines else ""
