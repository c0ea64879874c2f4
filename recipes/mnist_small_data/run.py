"""Reproduce Table 2 of Bietti et al. (ICML 2019): MNIST with 300 / 1,000 training examples.

Resumable runner. Every finished run is appended at once (open/append/flush/fsync, one line) to
``results/runs.csv``; on restart, finished (row, n, seed, config hash) cells are skipped. Rows with a
validation grid (``table2.yaml``) first train each grid value at n=300, seed 0 and keep the best
validation accuracy (never the test set); those runs go to ``results/tuning.csv`` the same way. A tuning
run also records its test accuracy, which the choice never reads: the chosen value's tuning run *is* the
table's (n=300, seed 0) cell (training is seeded and deterministic, so re-training it would give the same
numbers) and is copied to ``runs.csv`` instead of being trained twice.

Each run trains the paper's network in a plain-PyTorch loop (SGD momentum 0.9, lr 0.05, batch 128,
StepLR γ=0.5) with the row's penalties and constraints (``rkhsreg.training``), on the data of
:class:`rkhsreg.lightning.MNISTSubset`, then evaluates once on the validation split (last 10k of the
permutation) and the official test set. A ``pl.Trainer`` adds ~1 s of overhead per run and a
validation pass per epoch that this schedule does not need; the loop computes the same loss as
``RegularizedClassifier``.

Usage::

    python recipes/mnist_small_data/run.py --n 300 --seeds 0 --threads 1 --data-dir ../shared/data
    python recipes/mnist_small_data/run.py --rows wd,tau_delta_sn --n 300,1000 --seeds 0-2
    python recipes/mnist_small_data/run.py --summary          # results/table.{md,csv} only
    python recipes/mnist_small_data/run.py --summary --docs docs/mnist_studies.md   # and the docs' table
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rkhsreg import ConfigurationError
from rkhsreg.plugin_api import check_device

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common import results as _results  # noqa: E402
from recipes._common import runner as _runner  # noqa: E402
from recipes._common.config_keys import load_rows, parse_ints, set_key  # noqa: E402
from recipes._common.runner import select_rows  # noqa: E402
from recipes._common.scripts import load_script  # noqa: E402

HERE = Path(__file__).resolve().parent
INITS = ("he_fan_in", "paper", "torch")
TABLE = HERE / "table2.yaml"
HASH_KEYS = ("model", "data", "trainer", "init")  # the config sections a run's hash covers
COLUMNS = ["row", "n", "seed", "epochs", "val_acc", "test_acc", "train_acc", "seconds", "eval_examples", "config_hash",
           "hparams", "git_commit", "machine", "threads", "finished_at"]


# ----------------------------------------------------------------------------- configuration

def load_table(path: Path = TABLE) -> dict[str, Any]:
    """The rows of Table 2 (``table2.yaml``) with their configs loaded, keyed by row name."""
    meta, rows = load_rows(path)
    for row in rows.values():
        row["paper"] = {int(k): float(v) for k, v in row["paper"].items()}
    init = str(meta.get("init", "he_fan_in"))
    if init not in INITS:
        raise SystemExit(f"{path}: init={init!r} is not allowed; choose one of {', '.join(INITS)}.")
    for row in rows.values():
        row["cfg"]["init"] = init
    epochs_by_n = {}
    for key, value in (meta.get("epochs_by_n") or {}).items():
        if isinstance(key, bool) or not isinstance(key, int):
            raise SystemExit(f"{path}: epochs_by_n key {key!r} is not allowed; use a training-set size (int), "
                             "e.g. {1000: 20}.")
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise SystemExit(f"{path}: epochs_by_n[{key}]={value!r} is not allowed; pass an int >= 1.")
        epochs_by_n[int(key)] = value
    for row in rows.values():
        row["set_by_n"] = _set_by_n(path, row)
    compare = [list(pair) for pair in meta.get("compare") or []]
    for pair in compare:
        if len(pair) != 2 or any(name not in rows for name in pair):
            raise SystemExit(f"{path}: compare entry {pair!r} is not allowed; pass [row, other row] with row names "
                             f"from {', '.join(rows)}.")
    return {"tune_n": int(meta.get("tune_n", 300)), "tune_seed": int(meta.get("tune_seed", 0)), "init": init,
            "epochs_by_n": epochs_by_n, "rows": rows, "compare": compare,
            "published": HERE / "published" / str(meta.get("published", "."))}


def _set_by_n(path: Path, row: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """A row's ``set_by_n: {n: {dotted key: value}}``: values fixed at one training-set size only, applied over
    the row's validation choice to its table cells (never to its grid points), e.g. the choice of a study run at
    that n; every key must exist in the config."""
    out: dict[int, dict[str, Any]] = {}
    for n, values in (row.get("set_by_n") or {}).items():
        if isinstance(n, bool) or not isinstance(n, int) or not isinstance(values, dict):
            raise SystemExit(f"{path}: row {row['name']}: set_by_n entry {n!r}: {values!r} is not allowed; use "
                             "{training-set size (int): {dotted key: value}}, e.g. {1000: {model.lr: 0.05}}.")
        probe = copy.deepcopy(row["cfg"])
        for key, value in values.items():
            try:
                set_key(probe, key, value)
            except KeyError as exc:
                raise SystemExit(f"{path}: row {row['name']}: set_by_n[{n}]: {exc.args[0]}") from None
        out[int(n)] = dict(values)
    return out


def resolved(cfg: dict[str, Any], n: int, epochs: int | None) -> dict[str, Any]:
    """A copy of ``cfg`` for ``n`` training examples and ``epochs`` epochs (StepLR period scaled alike)."""
    out = copy.deepcopy(cfg)
    base = int(out["trainer"]["max_epochs"])
    epochs = base if epochs is None else int(epochs)
    step = out["model"].get("lr_step_size")
    if step is not None:
        out["model"]["lr_step_size"] = max(1, round(int(step) * epochs / base))
    out["trainer"]["max_epochs"] = epochs
    out["data"]["n"] = int(n)
    return out


def config_hash(cfg: dict[str, Any]) -> str:
    """A short hash of the resolved config: a change of any hyper-parameter makes a new cell."""
    return _runner.config_hash(cfg, HASH_KEYS)


def hparams(cfg: dict[str, Any]) -> str:
    """The hyper-parameters that differ between rows, as compact JSON (for the CSV)."""
    model, data = cfg["model"], cfg["data"]
    keep = {"lr": model["lr"], "weight_decay": model["weight_decay"], "lr_step_size": model.get("lr_step_size"),
            "penalties": model.get("penalties"), "constraints": model.get("constraints"),
            "augment": data.get("augment", False), "init": cfg.get("init")}
    if data.get("augment"):
        keep["augment_kwargs"] = data.get("augment_kwargs")
    return json.dumps(keep, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- training

@torch.no_grad()
def initialize(net: torch.nn.Module, scheme: str) -> None:
    """Initialise the network's weights in place.

    Args:
        net: the network.
        scheme: ``"he_fan_in"``: kaiming normal, fan_in, ReLU gain, for every conv and linear weight
            (converges in tens of epochs); ``"paper"``: the reference code's normal(0, √(2 / (k·k·out)))
            for convs (fan_out) and PyTorch's default for the linear layer (a long initial plateau at
            n=300: ~30 epochs near chance, which its 501 epochs absorb but our CPU schedule cannot);
            ``"torch"``: PyTorch's defaults (the same plateau).
    """
    if scheme == "torch":
        return
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            if scheme == "he_fan_in":
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif scheme == "paper" and isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif scheme not in INITS:
                raise ValueError(f"init={scheme!r} is not allowed; choose one of {', '.join(INITS)}.")


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader: Iterable[Any], device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` (eval mode, on ``device``) over ``loader``."""
    model.eval()
    correct = total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += int((model(x).argmax(1) == y).sum())
        total += int(y.numel())
    return correct / max(total, 1)


def _head(loader: Iterable[Any], limit: int | None) -> Iterable[Any]:
    """The batches of ``loader`` up to ``limit`` examples (all when None)."""
    seen = 0
    for x, y in loader:
        if limit is not None and seen + len(y) > limit:
            x, y = x[:limit - seen], y[:limit - seen]
        if len(y) == 0:
            return
        seen += len(y)
        yield x, y


def train_one(cfg: dict[str, Any], seed: int, data_dir: str | None, *, evaluate_test: bool = True,
              log_every: int = 10, label: str = "", eval_examples: int | None = None,
              evaluate_val: bool = True, trace: Callable[[dict[str, Any]], None] | None = None,
              device: torch.device | str = "cpu") -> dict[str, Any]:
    """Train one run of a resolved config and evaluate it.

    Args:
        cfg: a resolved row config (:func:`resolved`).
        seed: the run's seed (subset permutation 42+seed, initialisation, shuffling, augmentation).
        data_dir: MNIST data root (None: ``$RKHSREG_DATA``, else ``./data``).
        evaluate_test: also measure test accuracy (False for tuning runs: the test set is not looked at).
        log_every: print a progress line every this many epochs (0: never).
        label: prefix of the progress lines.
        eval_examples: evaluate on the first this many validation/test examples (None: all 10,000).
        evaluate_val: measure validation accuracy (``val_acc`` None when False).
        trace: called after every SGD step's backward with ``{"epoch", "step", "lr", "ce", "loss",
            "penalties": {label: weighted value}, "grad_norm" (ℓ2 norm of every parameter's gradient, after
            the penalties), "batch_acc"}`` (floats; see ``trace.py``). None: nothing is measured.
        device: where the network trains and is evaluated (batches are moved there; the data pipeline,
            its deformations and the seeded generators stay on the CPU, so the batches are the same).

    Returns:
        ``{"val_acc", "test_acc", "train_acc", "seconds", "model"}`` (accuracies in %; ``test_acc`` None when
        skipped; ``model`` the trained network, in eval mode).
    """
    from rkhsreg.lightning import MNISTSubset
    from rkhsreg.models import mnist_vgg5
    from rkhsreg.training import apply_constraints, build_constraints, build_penalties, evaluate_penalties

    model_cfg, data_cfg = cfg["model"], dict(cfg["data"])
    torch.manual_seed(seed)
    net = mnist_vgg5(num_classes=int(model_cfg.get("num_classes", 10)), in_chans=int(model_cfg.get("in_chans", 1)))
    initialize(net, cfg.get("init", "he_fan_in"))  # on the CPU, so the initial weights do not depend on device
    net.to(device)
    data = MNISTSubset(seed=seed, data_dir=data_dir, **data_cfg)
    data.setup("fit")
    penalties = build_penalties(copy.deepcopy(model_cfg.get("penalties")))
    constraints = build_constraints(copy.deepcopy(model_cfg.get("constraints")))
    opt = torch.optim.SGD(net.parameters(), lr=float(model_cfg["lr"]), momentum=float(model_cfg["momentum"]),
                          weight_decay=float(model_cfg["weight_decay"]))
    step = model_cfg.get("lr_step_size")
    sched = (torch.optim.lr_scheduler.StepLR(opt, step_size=int(step), gamma=float(model_cfg["lr_gamma"]))
             if step else None)
    epochs = int(cfg["trainer"]["max_epochs"])
    start = time.perf_counter()
    steps = 0
    for epoch in range(epochs):
        for c in constraints.values():
            c.set_epoch(epoch)
        net.train()
        seen = correct = 0
        total_loss = 0.0
        for x, y in data.train_dataloader():
            x, y = x.to(device), y.to(device)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            terms = evaluate_penalties(net, x, y, penalties)
            full = terms.combine(loss)
            opt.zero_grad(set_to_none=True)
            full.backward()
            if trace is not None:
                trace(_step_record(net, epoch, steps, opt, loss, full, terms, logits, y))
            steps += 1
            opt.step()
            apply_constraints(net, constraints)
            seen += len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            total_loss += float(full.detach()) * len(y)
        if sched is not None:
            sched.step()
        if not math.isfinite(total_loss):
            raise FloatingPointError(f"{label}: the training loss became {total_loss} at epoch {epoch + 1}")
        if log_every and ((epoch + 1) % log_every == 0 or epoch + 1 == epochs):
            elapsed = time.perf_counter() - start
            print(f"    {label} epoch {epoch + 1:3d}/{epochs} loss {total_loss / seen:.4f} "
                  f"train acc {100 * correct / seen:5.1f}% {elapsed:7.1f}s "
                  f"(ETA {elapsed / (epoch + 1) * (epochs - epoch - 1):.0f}s)", flush=True)
    seconds = time.perf_counter() - start
    train_acc = 100 * correct / max(seen, 1)
    val_acc = 100 * accuracy(net, _head(data.val_dataloader(), eval_examples), device) if evaluate_val else None
    test_acc = None
    if evaluate_test:
        data.setup("test")
        test_acc = 100 * accuracy(net, _head(data.test_dataloader(), eval_examples), device)
    net.eval()
    return {"val_acc": val_acc, "test_acc": test_acc, "train_acc": train_acc, "seconds": seconds, "model": net}


def _step_record(net: torch.nn.Module, epoch: int, step: int, opt: torch.optim.Optimizer, ce: torch.Tensor,
                 full: torch.Tensor, terms: Any, logits: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """One SGD step as seen by ``train_one(trace=...)`` (after the backward, before the update)."""
    grads = [p.grad.detach().pow(2).sum() for p in net.parameters() if p.grad is not None]
    return {"epoch": epoch, "step": step, "lr": float(opt.param_groups[0]["lr"]), "ce": float(ce.detach()),
            "loss": float(full.detach()), "penalties": {k: float(v) for k, v in terms.weighted.items()},
            "grad_norm": float(torch.stack(grads).sum().sqrt()) if grads else 0.0,
            "batch_acc": float((logits.detach().argmax(1) == y).float().mean())}


def _cell(r: Mapping[str, str]) -> tuple[str, int, int, str, str]:
    """A CSV record's cell key: (row, n, seed, config hash, evaluation scope)."""
    return r["row"], int(r["n"]), int(r["seed"]), r["config_hash"], r["eval_examples"]


class Runner(_runner.GridRunner):
    """Runs cells of the table, tuning rows on the validation split first; resumable through the CSVs
    (the shared kit: :class:`recipes._common.runner.GridRunner`)."""

    columns = COLUMNS
    hash_keys = HASH_KEYS

    def __init__(self, table: dict[str, Any], results: Path, data_dir: str | None, epochs: int | None,
                 threads: int, log_every: int = 10, eval_examples: int | None = None, dry: bool = False,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(table["rows"], results, threads=threads, device=torch.device(device), dry=dry)
        self.table, self.data_dir, self.epochs, self.log_every = table, data_dir, epochs, log_every
        self.eval_examples = eval_examples
        self.scope = "all" if eval_examples is None else str(eval_examples)

    def train(self, cfg: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
        """Train and evaluate one resolved config (:func:`train_one`)."""
        return train_one(cfg, seed, self.data_dir, log_every=self.log_every, label=label,
                         eval_examples=self.eval_examples, device=self.device)

    def fields(self, row: str, n: int, seed: int, cfg: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """One run's CSV fields before its provenance (:meth:`stamp`)."""
        fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
        return {"row": row, "n": n, "seed": seed, "epochs": cfg["trainer"]["max_epochs"],
                "val_acc": fmt(result["val_acc"]), "test_acc": fmt(result["test_acc"]),
                "train_acc": fmt(result["train_acc"]), "seconds": f"{result['seconds']:.1f}",
                "eval_examples": self.scope, "config_hash": self.config_hash(cfg), "hparams": hparams(cfg)}

    # -- the validation grid: each point trained at (tune_n, tune_seed); its validation accuracy is its score
    def grid_config(self, name: str, choice: Mapping[str, Any]) -> dict[str, Any]:
        n = self.table["tune_n"]
        cfg = resolved(self.rows[name]["cfg"], n, self.epochs_for(n))
        for key, value in choice.items():
            set_key(cfg, key, value)
        return cfg

    def score(self, name: str, cfg: dict[str, Any], label: str) -> float | None:
        n, seed = self.table["tune_n"], self.table["tune_seed"]
        # a table run of the same config at (tune_n, tune_seed) counts as a grid point: only its validation
        # accuracy is read
        done = self.finished([self.runs_path, self.tuning_path], _cell)
        key = (name, n, seed, self.config_hash(cfg), self.scope)
        if key not in done:
            if self.dry:
                return None
            print(f"[tune] {label} (n={n}, seed={seed}, validation split)", flush=True)
            result = self.train(cfg, seed, label)
            done[key] = self.record(self.tuning_path, self.fields(name, n, seed, cfg, result))
            print(f"[tune] {label} -> val {result['val_acc']:.2f}% ({result['seconds']:.0f}s)", flush=True)
        return float(done[key]["val_acc"])

    def epochs_for(self, n: int) -> int | None:
        """Epochs at ``n``: ``--epochs`` when given, else ``table2.yaml``'s ``epochs_by_n``, else the config's."""
        return self.epochs if self.epochs is not None else self.table.get("epochs_by_n", {}).get(n)

    def config(self, name: str, n: int) -> dict[str, Any]:
        """The resolved config of row ``name`` at ``n`` with its tuned values, then the row's ``set_by_n`` values
        for ``n`` (``LookupError`` while a dry runner misses a grid point)."""
        choice = self.choose(name)
        if choice is None:
            raise LookupError(f"{name}: its validation grid has not been trained")
        cfg = resolved(self.rows[name]["cfg"], n, self.epochs_for(n))
        for key, value in {**choice, **self.rows[name]["set_by_n"].get(n, {})}.items():
            set_key(cfg, key, value)
        return cfg

    def current_hashes(self, ns: Sequence[int]) -> dict[tuple[str, int], str]:
        """``{(row, n): hash}`` of the configs the grids currently choose (rows whose grid is incomplete left out)."""
        out = {}
        for name in self.rows:
            for n in ns:
                try:
                    out[(name, n)] = self.config_hash(self.config(name, n))
                except LookupError:
                    pass
        return out

    # -- cells
    def run(self, rows: Sequence[str], ns: Sequence[int], seeds: Sequence[int]) -> int:
        """Train every missing (row, n, seed) cell, seeds outermost; returns the number of runs trained."""
        trained = 0
        for seed in seeds:
            for n in ns:
                for name in rows:
                    cfg = self.config(name, n)
                    h = self.config_hash(cfg)
                    key = (name, n, seed, h, self.scope)
                    if key in self.finished(self.runs_path, _cell):
                        print(f"[skip] {name} n={n} seed={seed} (finished, config {h})", flush=True)
                        continue
                    tuned = self.finished(self.tuning_path, _cell).get(key)
                    if tuned and tuned["test_acc"]:  # the grid's run of this very config: copied, not retrained
                        self.append(self.runs_path, tuned)
                        print(f"[copy] {name} n={n} seed={seed} from tuning.csv (config {h}): val "
                              f"{tuned['val_acc']}% test {tuned['test_acc']}%", flush=True)
                        continue
                    print(f"[run ] {name} n={n} seed={seed} epochs={cfg['trainer']['max_epochs']} config {h} "
                          f"{hparams(cfg)}", flush=True)
                    result = self.train(cfg, seed, f"{name}/{n}/{seed}")
                    self.record(self.runs_path, self.fields(name, n, seed, cfg, result))
                    trained += 1
                    print(f"[done] {name} n={n} seed={seed}: val {result['val_acc']:.2f}% test "
                          f"{result['test_acc']:.2f}% ({result['seconds']:.0f}s)", flush=True)
        return trained


# ----------------------------------------------------------------------------- summary

def summarize(table: dict[str, Any], results: Path, ns: Sequence[int] = (300, 1000)) -> str:
    """Write ``results/table.{md,csv}`` for the configs the validation grids chose (``summary.py``); returns
    the Markdown."""
    summary = load_script("mnist_small_data_summary", HERE / "summary.py")
    ns = sorted(set(ns) | {int(r["n"]) for r in _results.read_runs(results / "runs.csv")})
    current = Runner(table, results, None, None, 1, dry=True).current_hashes(ns)
    return summary.summarize(table, results, current, ns)


def plot_accuracy(results: Path) -> Path:
    """``results/accuracy_vs_n.png`` from ``results/table.csv`` (``plot.py``, loaded by path like ``demo.py`` loads us)."""
    plot = load_script("mnist_small_data_plot", HERE / "plot.py").plot
    return plot(results / "table.csv", results / "accuracy_vs_n.png")


# ----------------------------------------------------------------------------- command line

def _named(path: Path) -> str:
    """``path`` as a docs marker names it: relative to the repository root when inside it, else absolute."""
    path, root = path.resolve(), HERE.parents[1]
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def check_run_args(args: argparse.Namespace) -> torch.device:
    """Check the options ``run.py`` and ``trace.py`` share (``--epochs``, ``--threads``, ``--eval-examples``,
    ``--device``; ``SystemExit`` naming the option otherwise), apply ``--threads`` and return the device."""
    if args.epochs is not None and args.epochs < 1:
        raise SystemExit(f"--epochs={args.epochs} is out of range; pass an int >= 1.")
    if args.threads < 1:
        raise SystemExit(f"--threads={args.threads} is out of range; pass an int >= 1.")
    if args.eval_examples is not None and args.eval_examples < 1:
        raise SystemExit(f"--eval-examples={args.eval_examples} is out of range; pass an int >= 1 or leave it out.")
    try:
        device = check_device("--device", args.device)
    except ConfigurationError as err:
        raise SystemExit(str(err)) from None
    torch.set_num_threads(args.threads)
    return device


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Reproduce Table 2 (MNIST, 300 / 1,000 examples); resumable.")
    parser.add_argument("--rows", default="all", help="comma-separated row names in the order to run, or 'all'")
    parser.add_argument("--n", default="300,1000", help="training-set sizes, e.g. 300,1000")
    parser.add_argument("--seeds", default="0", help="seeds, e.g. 0 or 0-2 or 0,3")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every n (default: table2.yaml's epochs_by_n, else each config's max_epochs)")
    parser.add_argument("--data-dir", default=None, help="MNIST root with MNIST/raw (default: $RKHSREG_DATA, ./data)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu",
                        help="where to train: cpu (default), cuda, cuda:1… (the config hash does not include it: a "
                             "finished cell is skipped whatever device ran it; runs.csv's machine column names it)")
    parser.add_argument("--results", default=str(Path("results") / "mnist_small_data"),
                        help="results folder (default: a folder of your own, results/mnist_small_data; the published results are in recipes/mnist_small_data/published/, pass them only to rebuild their tables)")
    parser.add_argument("--table", default=str(TABLE), help="the rows file (table2.yaml)")
    parser.add_argument("--log-every", type=int, default=10, help="progress line every this many epochs")
    parser.add_argument("--summary", action="store_true", help="only write results/table.{md,csv} and print it")
    parser.add_argument("--docs", default=None,
                        help="also write the summary into this Markdown page's '<!-- table:start (…table.md) -->' block "
                             "and the plot over the image after its '<!-- image: …accuracy_vs_n.png -->' marker")
    parser.add_argument("--eval-examples", type=int, default=None,
                        help="evaluate on the first N validation/test examples (default: all 10,000; tests use few)")
    args = parser.parse_args(argv)

    table = load_table(Path(args.table))
    results = Path(args.results)
    ns = parse_ints(args.n, "n")
    if args.summary:
        text = summarize(table, results)
        print(text)
        png = plot_accuracy(results)
        print(f"written: {png}")
        if args.docs:  # the markers name the table file (and the plot) relative to the repository root
            try:
                body = text.partition("\n\n")[2]   # the table without its title line
                print(f"written: {_results.embed_table(args.docs, _named(results / 'table.md'), body)}")
                for copy in _results.embed_images(args.docs, _named(png), png.read_bytes()):
                    print(f"written: {copy}")
            except (OSError, ValueError) as err:
                raise SystemExit(f"--docs={args.docs!r}: {err}") from None
        return 0
    rows = select_rows(args.rows, table["rows"])
    device = check_run_args(args)
    runner = Runner(table, results, args.data_dir, args.epochs, args.threads, log_every=args.log_every,
                    eval_examples=args.eval_examples, device=device)
    trained = runner.run(rows, ns, parse_ints(args.seeds, "seeds"))
    print(f"{trained} run(s) trained; results in {results / 'runs.csv'}", flush=True)
    print(summarize(table, results))
    print(_results.published_table(table["published"], results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
