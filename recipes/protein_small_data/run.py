"""Reproduce Table 3 of Bietti et al. (ICML 2019): small-data protein classification, mean auROC50.

Resumable runner. Cells are (row, augmentation off/on, task). Every finished run is appended at
once (one line, open/append/flush/fsync) to ``results/runs.csv``; on restart, finished (row,
augment, task, config hash) cells are skipped. Rows with a grid (``table3.yaml``) first train each
grid value on every tuning task (no augmentation; ``results/tuning.csv``) and keep the value with
the best mean test auROC50 over the tuning tasks; the reporting tasks never take part in a choice.

Tasks: ``tasks.source: standin`` (default) builds SCOP-like tasks from real offline protein sets
(:func:`rkhsreg.data.build_standin_tasks`); ``--source scop --scop-root DIR`` uses the SCOP 1.67
benchmark itself (``--download`` fetches it when online), first half of the sorted tasks for tuning.

Each run: the paper's protein CNN (:func:`rkhsreg.protein_models.protein_cnn`), Adam lr 0.01,
the row's penalties and constraints (:mod:`rkhsreg.training`), optional BLOSUM62 substitutions
(:class:`rkhsreg.data.BlosumSubstitution`, a fresh draw each epoch), then auROC, auROC50 (paper,
FPR ≤ 0.5 normalised) and ROC50 (first 50 false positives) on the task's test set.

Usage::

    python recipes/protein_small_data/run.py --data-dir ../shared/data            # the whole grid
    python recipes/protein_small_data/run.py --rows none,delta_sn --augment 0
    python recipes/protein_small_data/run.py --summary                          # results/table.{md,csv}
    python recipes/protein_small_data/run.py --source scop --scop-root data/scop167 --download
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common import runner as _runner  # noqa: E402
from recipes._common.config_keys import load_rows, set_key  # noqa: E402
from recipes._common.results import machine, published_table  # noqa: E402
from recipes._common.runner import check_positive, select_rows  # noqa: E402
from recipes._common.scripts import load_script  # noqa: E402

HERE = Path(__file__).resolve().parent
TABLE = HERE / "table3.yaml"
HASH_KEYS = ("model", "data", "trainer")  # the config sections a run's hash covers
COLUMNS = ["row", "augment", "task", "half", "group", "epochs", "auroc50", "auroc", "roc50", "train_loss", "seconds",
           "config_hash", "hparams", "git_commit", "machine", "threads", "finished_at"]


# ----------------------------------------------------------------------------- configuration

def load_table(path: Path = TABLE) -> dict[str, Any]:
    """``table3.yaml`` with every row's config loaded, rows keyed by name (in the file's order)."""
    meta, rows = load_rows(path)
    return {"tasks": dict(meta["tasks"]), "augment": dict(meta["augment"]), "rows": rows}


def resolved(cfg: dict[str, Any], augment: bool, p: float, epochs: int | None) -> dict[str, Any]:
    """A copy of ``cfg`` with the augmentation switched on/off and ``epochs`` applied."""
    out = copy.deepcopy(cfg)
    out["data"]["augment_p"] = float(p) if augment else 0.0
    if epochs is not None:
        out["trainer"]["max_epochs"] = int(epochs)
    return out


def config_hash(cfg: dict[str, Any]) -> str:
    """Short hash of model/data/trainer: any hyper-parameter change makes a new cell."""
    return _runner.config_hash(cfg, HASH_KEYS)


def hparams(cfg: dict[str, Any]) -> str:
    """The hyper-parameters that differ between rows, as compact JSON."""
    m = cfg["model"]
    keep = {"weight_decay": m["weight_decay"], "penalties": m.get("penalties"), "constraints": m.get("constraints"),
            "augment_p": cfg["data"].get("augment_p", 0.0)}
    return json.dumps(keep, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- tasks

def build_tasks(spec: dict[str, Any], source: str, data_dir: str | None, scop_root: str | None,
                download: bool) -> list[Any]:
    """The task list, every task with ``meta["half"]`` = ``"tune"`` or ``"report"``."""
    from rkhsreg.data import build_standin_tasks, download_scop167, list_scop_tasks, load_scop_task

    if source == "standin":
        return build_standin_tasks(data_dir, datasets=spec["datasets"], tasks_per_dataset=int(spec["tasks_per_dataset"]),
                                   train_size=int(spec["train_size"]), test_positives=int(spec["test_positives"]),
                                   test_negatives=int(spec["test_negatives"]),
                                   seed=int(spec["seed"]))
    if scop_root is None:
        raise SystemExit("--source scop needs --scop-root DIR (the unpacked SCOP167-superfamily benchmark).")
    if download:
        download_scop167(scop_root)
    names = list_scop_tasks(scop_root)
    tasks = []
    for i, name in enumerate(names):
        task = load_scop_task(scop_root, name, train_size=int(spec["scop_train_size"]), seed=int(spec["seed"]) + i)
        task.meta["half"] = "tune" if i < len(names) // 2 else "report"
        tasks.append(task)
    return tasks


class EncodedTask:
    """A task's sequences as residue indices (one-hot made per run, so the augmentation can act on indices)."""

    def __init__(self, task: Any, length: int, unknown: str) -> None:
        from rkhsreg.data.protein import sequence_indices

        self.task = task
        self.train = sequence_indices(task.train_sequences, length, unknown)
        self.test = sequence_indices(task.test_sequences, length, unknown)
        self.y_train = torch.tensor(task.train_labels, dtype=torch.long)
        self.y_test = torch.tensor(task.test_labels, dtype=torch.long)


# ----------------------------------------------------------------------------- training

def _build_model(model_cfg: dict[str, Any]) -> torch.nn.Module:
    module, _, name = str(model_cfg["model"]).rpartition(".")
    factory = getattr(importlib.import_module(module), name)
    return factory(num_classes=int(model_cfg["num_classes"]), width=int(model_cfg["width"]),
                   kernel_size=int(model_cfg["kernel_size"]))


@torch.no_grad()
def scores(net: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """logit₁ − logit₀ of every row of ``x`` (eval mode)."""
    net.eval()
    out = [net(x[i:i + batch]) for i in range(0, len(x), batch)]
    logits = torch.cat(out)
    return logits[:, 1] - logits[:, 0]


def train_one(cfg: dict[str, Any], data: EncodedTask, seed: int, label: str = "") -> dict[str, Any]:
    """Train one run of a resolved config on one task and score its test set.

    The seed fixes the initialisation, the batch order and the augmentation stream; runs of
    different rows on the same task share the initialisation.

    Returns:
        ``{"auroc50", "auroc", "roc50", "train_loss", "seconds"}``.
    """
    from rkhsreg.data.protein import one_hot_indices
    from rkhsreg.data.substitutions import BlosumSubstitution
    from rkhsreg.metrics import auroc, auroc_at_fpr, roc_n
    from rkhsreg.training import apply_constraints, build_constraints, build_penalties, evaluate_penalties

    model_cfg, data_cfg = cfg["model"], cfg["data"]
    torch.manual_seed(seed)
    net = _build_model(model_cfg)
    penalties = build_penalties(copy.deepcopy(model_cfg.get("penalties")))
    constraints = build_constraints(copy.deepcopy(model_cfg.get("constraints")))
    if model_cfg.get("optimizer", "adam") != "adam":
        raise SystemExit(f"optimizer={model_cfg.get('optimizer')!r} is not supported here; use adam (the paper's).")
    opt = torch.optim.Adam(net.parameters(), lr=float(model_cfg["lr"]), weight_decay=float(model_cfg["weight_decay"]))
    p = float(data_cfg.get("augment_p", 0.0))
    augment = BlosumSubstitution(p=p, seed=seed) if p > 0 else None
    order = torch.Generator().manual_seed(seed)
    batch = int(data_cfg["batch_size"])
    epochs = int(cfg["trainer"]["max_epochs"])
    n = len(data.y_train)
    x_clean = one_hot_indices(data.train)
    start = time.perf_counter()
    total = math.nan
    for epoch in range(epochs):
        for c in constraints.values():
            c.set_epoch(epoch)
        x_all = one_hot_indices(augment(data.train)) if augment is not None else x_clean
        net.train()
        total, perm = 0.0, torch.randperm(n, generator=order)
        for i in range(0, n, batch):
            rows = perm[i:i + batch]
            x, y = x_all[rows], data.y_train[rows]
            loss = F.cross_entropy(net(x), y)
            full = evaluate_penalties(net, x, y, penalties).combine(loss)
            opt.zero_grad(set_to_none=True)
            full.backward()
            opt.step()
            apply_constraints(net, constraints)
            total += float(full.detach()) * len(rows)
        total /= n
        if not math.isfinite(total):
            raise FloatingPointError(f"{label}: the training loss became {total} at epoch {epoch + 1}")
    seconds = time.perf_counter() - start
    s = scores(net, one_hot_indices(data.test)).numpy()
    y = data.y_test.numpy()
    return {"auroc50": auroc_at_fpr(y, s, 0.5), "auroc": auroc(y, s), "roc50": roc_n(y, s, 50),
            "train_loss": total, "seconds": seconds}


# ----------------------------------------------------------------------------- runner

class Runner(_runner.GridRunner):
    """Runs the cells, tuning rows on the tuning tasks first; resumable through the CSVs (the shared kit:
    :class:`recipes._common.runner.GridRunner`). A grid point's score is its mean auROC50 over the tuning tasks."""

    columns = COLUMNS
    hash_keys = HASH_KEYS

    def __init__(self, table: dict[str, Any], results: Path, tasks: list[Any], epochs: int | None, threads: int,
                 dry: bool = False) -> None:
        super().__init__(table["rows"], results, threads=threads, dry=dry)
        self.table, self.epochs, self.tasks = table, epochs, tasks
        self._encoded: dict[str, EncodedTask] = {}

    def train(self, cfg: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
        """Train ``cfg`` on the task ``label`` names (``row/task``)."""
        task = next(t for t in self.tasks if t.name == label.split("/", 1)[1])
        return train_one(cfg, self.encoded(task, cfg), seed, label=label)

    def seed_of(self, task: Any) -> int:
        """One seed per task (its position in the task list): every row starts from the same weights."""
        return [t.name for t in self.tasks].index(task.name)

    def encoded(self, task: Any, cfg: dict[str, Any]) -> EncodedTask:
        key = f"{task.name}:{cfg['data']['length']}:{cfg['data']['unknown']}"
        if key not in self._encoded:
            self._encoded[key] = EncodedTask(task, int(cfg["data"]["length"]), str(cfg["data"]["unknown"]))
        return self._encoded[key]

    def half(self, which: str) -> list[Any]:
        return [t for t in self.tasks if t.meta["half"] == which]

    def _run_cells(self, path: Path, row: str, augment: int, cfg: dict[str, Any], tasks: list[Any]) -> list[float]:
        """Train ``cfg`` on every task not yet in ``path``; returns the auROC50 of all of them."""
        h = self.config_hash(cfg)
        done = {r["task"]: r for r in self.read(path)
                if r["row"] == row and int(r["augment"]) == augment and r["config_hash"] == h}
        values = []
        for task in tasks:
            if task.name in done:
                values.append(float(done[task.name]["auroc50"]))
                continue
            if self.dry:
                continue
            result = self.train(cfg, self.seed_of(task), f"{row}/{task.name}")
            self.record(path, {
                "row": row, "augment": augment, "task": task.name, "half": task.meta["half"], "group": task.group,
                "epochs": cfg["trainer"]["max_epochs"], "auroc50": f"{result['auroc50']:.4f}",
                "auroc": f"{result['auroc']:.4f}", "roc50": f"{result['roc50']:.4f}",
                "train_loss": f"{result['train_loss']:.4f}", "seconds": f"{result['seconds']:.1f}",
                "config_hash": h, "hparams": hparams(cfg)})
            values.append(result["auroc50"])
            print(f"[done] {path.stem} {row} da={augment} {task.name}: auROC50 {result['auroc50']:.3f} "
                  f"auROC {result['auroc']:.3f} ROC50 {result['roc50']:.3f} ({result['seconds']:.0f}s) {hparams(cfg)}",
                  flush=True)
        return values

    # -- the validation grid: every tuning task, no augmentation
    def grid_config(self, name: str, choice: Mapping[str, Any]) -> dict[str, Any]:
        cfg = resolved(self.rows[name]["cfg"], False, 0.0, self.epochs)
        for key, value in choice.items():
            set_key(cfg, key, value)
        return cfg

    def score(self, name: str, cfg: dict[str, Any], label: str) -> float | None:
        tune = self.half("tune")
        got = self._run_cells(self.tuning_path, name, 0, cfg, tune)
        return sum(got) / len(got) if got and len(got) == len(tune) else None

    def config(self, name: str, augment: int) -> dict[str, Any] | None:
        """The resolved config of a reporting cell, or None while its grid is not finished."""
        choice = self.choose(name)
        if choice is None:
            return None
        cfg = resolved(self.rows[name]["cfg"], bool(augment), self.table["augment"]["substitution_p"], self.epochs)
        for key, value in choice.items():
            set_key(cfg, key, value)
        return cfg

    def run(self, rows: Sequence[str], augments: Sequence[int]) -> None:
        """Every (row, augment) on the reporting tasks; the no-augmentation column of all rows first."""
        tuned = [n for n in rows if self.rows[n].get("grid") or self.rows[n].get("inherit")]
        if tuned and not self.half("tune"):
            raise SystemExit(f"rows {tuned} choose hyper-parameters on tuning tasks, but there are none "
                             f"({len(self.tasks)} task(s), all reporting); use more tasks or only untuned rows.")
        if not self.half("report"):
            raise SystemExit(f"no reporting task among the {len(self.tasks)} task(s); use more tasks.")
        for augment in augments:
            for name in rows:
                print(f"[row ] {name} da={augment}", flush=True)
                cfg = self.config(name, augment)  # runs the tuning grid first when needed
                if cfg is None:  # only in a dry run: the grid is not finished
                    continue
                self._run_cells(self.runs_path, name, augment, cfg, self.half("report"))


# ----------------------------------------------------------------------------- summary

def summarize(table: dict[str, Any], results: Path, runner: Runner) -> str:
    """Write ``results/table.{md,csv}`` for the configs the grids chose (``summary.py``); returns the Markdown."""
    current = {(name, augment): config_hash(cfg) for name in table["rows"] for augment in (0, 1)
               if (cfg := runner.config(name, augment)) is not None}
    return load_script("protein_small_data_summary", HERE / "summary.py").summarize(table, results, current)


# ----------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Reproduce Table 3 (protein small data, auROC50); resumable.")
    parser.add_argument("--rows", default="all", help="comma-separated row names, or 'all'")
    parser.add_argument("--augment", default="0,1", help="columns to run: 0 (no augmentation), 1 (∗), or 0,1")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: each config's max_epochs)")
    parser.add_argument("--data-dir", default=None, help="data root with protein/aaanalysis (default: $RKHSREG_DATA)")
    parser.add_argument("--source", choices=("standin", "scop"), default=None, help="tasks (default: table3.yaml)")
    parser.add_argument("--scop-root", default=None, help="folder of the unpacked SCOP 1.67 benchmark")
    parser.add_argument("--download", action="store_true", help="download the SCOP 1.67 benchmark (needs internet)")
    parser.add_argument("--tasks-per-dataset", type=int, default=None, help="override table3.yaml (stand-in)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--results", default=str(Path("results") / "protein_small_data"),
                        help="results folder (default: a folder of your own, results/protein_small_data; the published results are in recipes/protein_small_data/published/)")
    parser.add_argument("--table", default=str(TABLE), help="the rows file (table3.yaml)")
    parser.add_argument("--summary", action="store_true", help="only write results/table.{md,csv} and print it")
    args = parser.parse_args(argv)

    table = load_table(Path(args.table))
    spec = table["tasks"]
    source = args.source or spec.get("source", "standin")
    if args.tasks_per_dataset is not None:
        check_positive("tasks-per-dataset", args.tasks_per_dataset, minimum=2)
        spec["tasks_per_dataset"] = args.tasks_per_dataset
    check_positive("epochs", args.epochs)
    check_positive("threads", args.threads)
    rows = select_rows(args.rows, table["rows"])
    try:
        augments = sorted({int(a) for a in args.augment.split(",") if a.strip()})
    except ValueError:
        augments = []
    if not augments or not set(augments) <= {0, 1}:
        raise SystemExit(f"--augment={args.augment!r} is not allowed; pass 0, 1 or 0,1.")
    torch.set_num_threads(args.threads)
    from rkhsreg.data.root import DatasetNotFoundError

    try:
        tasks = build_tasks(spec, source, args.data_dir, args.scop_root, args.download)
    except DatasetNotFoundError as err:
        raise SystemExit(str(err)) from None
    results = Path(args.results)
    runner = Runner(table, results, tasks, args.epochs, args.threads, dry=args.summary)
    if not args.summary:
        print(f"{len(tasks)} tasks ({len(runner.half('tune'))} tuning, {len(runner.half('report'))} reporting); "
              f"source {source}; machine {machine()}", flush=True)
        runner.run(rows, augments)
    runner.dry = True
    print(summarize(table, results, runner))
    if not args.summary:
        print(published_table(HERE / "published", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
