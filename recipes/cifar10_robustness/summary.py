"""The CIFAR-10 trade-off's summary: ``runs.csv`` → ``table.md`` / ``table.csv`` (every run, and the best robust
accuracy per ε next to the paper's Figure 1) and ``tradeoff.png`` (one panel per ε_test).

Loaded by ``run.py`` (``--summary``, and after a run) as a sibling script; it reads results files and writes tables
and the plot, and trains nothing.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common.results import atomic_write, csv_text, read_runs  # noqa: E402


def _points(runs: list[dict[str, str]]) -> dict[tuple[str, bool], list[dict[str, Any]]]:
    """Per (row, sn): one point per strength (the latest run of each), in increasing strength."""
    latest: dict[tuple[str, bool, str], dict[str, str]] = {}
    for r in runs:
        latest[(r["row"], r["sn"] == "1", r["strength"])] = r
    out: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for (row, sn, strength), r in latest.items():
        out.setdefault((row, sn), []).append({
            "strength": strength, "standard": float(r["standard_acc"]), "eps": json.loads(r["eps_test"]),
            "eval_clean": float(r["eval_clean_acc"]),
            "robust": json.loads(r["robust_acc"]), "epochs": r["epochs"], "train_examples": r["train_examples"],
            "eval_examples": r["eval_examples"], "eval_steps": r["eval_steps"]})
    for pts in out.values():
        pts.sort(key=lambda p: -1.0 if p["strength"] == "" else float(p["strength"]))
    return out


def summarize(experiment: dict[str, Any], profile: str, results: Path) -> str:
    """Write ``table.md``, ``table.csv`` and ``tradeoff.png`` (atomically) from ``runs.csv``; return the Markdown."""
    runs = read_runs(results / "runs.csv")
    eps_test = experiment["eps_test"]
    points = _points(runs)
    header = ("| row | SN | strength | standard | clean (robustness images) | "
              + " | ".join(f"robust ε={e:g}" for e in eps_test) + " |")
    md = [f"# CIFAR-10 robustness trade-off — profile `{profile}`", "",
          "Standard accuracy (test images of the profile) and robust accuracy under ℓ2 perturbations of norm ε_test "
          "(pixel units), from `rkhsreg.evaluation.evaluate_robustness` (FAB-T, APGD-CE, APGD-T: an upper bound on "
          "the true robust accuracy) on the first robustness images of them; \"clean (robustness images)\" is the "
          "accuracy on those images, which the robust accuracies are to be compared with.", "", "## Every run", "",
          header, "|---|---|---|---|---|" + "---|" * len(eps_test)]
    table_rows = []
    for row in experiment["rows"]:
        for sn in (False, True):
            for p in points.get((row, sn), []):
                robust = dict(zip(p["eps"], p["robust"]))
                cells_ = [robust.get(e) for e in eps_test]
                shown_cells = " | ".join("—" if c is None else f"{c:.3f}" for c in cells_)
                md.append(f"| {experiment['rows'][row]['label']} | {'yes' if sn else 'no'} | "
                          f"{p['strength'] or '—'} | {p['standard']:.3f} | {p['eval_clean']:.3f} | {shown_cells} |")
                table_rows.append({"row": row, "sn": int(sn), "strength": p["strength"], "standard": p["standard"],
                                   "eval_clean": p["eval_clean"],
                                   **{f"robust_{e:g}": c for e, c in zip(eps_test, cells_)}})
    md += ["", "## Best robust accuracy per ε_test (its standard accuracy), next to the paper", "",
           "Paper: Figure 1, VGG-11, 40-step PGD-ℓ2 evaluation (an attack later shown to be weak; ours is stronger, "
           "so the same model scores lower here).", "",
           "| row | SN | " + " | ".join(f"ε={e:g} ours | ε={e:g} paper" for e in eps_test) + " |",
           "|---|---|" + "---|---|" * len(eps_test)]
    for row, spec in experiment["rows"].items():
        for sn in (False, True):
            pts = points.get((row, sn), [])
            paper = {float(p["eps_test"]): p for p in spec.get("paper") or [] if bool(p["sn"]) == sn}
            if not pts and not paper:
                continue
            cells_ = []
            for e in eps_test:
                best = max(pts, key=lambda p: (dict(zip(p["eps"], p["robust"])).get(e, -1), p["standard"]),
                           default=None)
                ours = "—" if best is None or e not in best["eps"] else \
                    f"{dict(zip(best['eps'], best['robust']))[e]:.3f} ({best['standard']:.3f})"
                ref = paper.get(e)
                cells_.append(f"{ours} | " + ("—" if ref is None else f"{ref['robust']:.3f} ({ref['standard']:.3f})"))
            md.append(f"| {spec['label']} | {'yes' if sn else 'no'} | " + " | ".join(cells_) + " |")
    machines = sorted({r["machine"] for r in runs})
    settings = sorted({(r["epochs"], r["train_examples"], r["test_examples"], r["eval_examples"], r["eval_steps"])
                       for r in runs})
    shown = sum(len(p) for p in points.values())
    md += ["", f"{shown} runs shown (the latest of each cell) of {len(runs)} in `runs.csv`; machine(s): "
           f"{'; '.join(machines) or '—'}; (epochs, training images, test images, robustness images, attack "
           f"steps): {settings or '—'}. Plot: `tradeoff.png`."]
    text = "\n".join(md) + "\n"
    fields = ["row", "sn", "strength", "standard", "eval_clean"] + [f"robust_{e:g}" for e in eps_test]
    atomic_write(results / "table.md", text)
    atomic_write(results / "table.csv", csv_text(fields, table_rows))
    atomic_write(results / "tradeoff.png", plot(experiment, points, profile))
    return text


def plot(experiment: dict[str, Any], points: dict[tuple[str, bool], list[dict[str, Any]]], profile: str) -> bytes:
    """The standard-vs-robust figure (one panel per ε_test) as PNG bytes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps_test = experiment["eps_test"]
    fig, axes = plt.subplots(1, len(eps_test), figsize=(4.2 * len(eps_test), 4.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, e in enumerate(eps_test):
        ax = axes[0][i]
        for j, (row, spec) in enumerate(experiment["rows"].items()):
            color = colors[j % len(colors)]
            for sn in (False, True):
                pts = sorted((p for p in points.get((row, sn), []) if e in p["eps"]), key=lambda p: p["standard"])
                if pts:
                    xs = [p["standard"] for p in pts]
                    ys = [dict(zip(p["eps"], p["robust"]))[e] for p in pts]
                    ax.plot(xs, ys, "o-" if not sn else "s--", color=color, ms=4, lw=1,
                            label=f"{spec['label']}{' + SN' if sn else ''}")
                for ref in spec.get("paper") or []:
                    if float(ref["eps_test"]) == e and bool(ref["sn"]) == sn:
                        ax.plot([ref["standard"]], [ref["robust"]], "*", color=color, ms=12, mec="black",
                                label=f"paper: {spec['label']}{' + SN' if sn else ''}")
        ax.set_title(f"ε_test = {e:g}")
        ax.set_xlabel("standard accuracy")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("robust accuracy (ℓ2)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=min(6, len(seen)), fontsize=8,
               frameon=False)
    fig.suptitle(f"CIFAR-10 robustness trade-off, profile {profile} (stars: paper, 40-step PGD evaluation)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
