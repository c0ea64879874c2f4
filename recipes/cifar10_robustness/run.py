"""The robustness trade-off of Bietti et al. (ICML 2019, Figure 1) on CIFAR-10: standard vs robust accuracy.

Grid: rows (``profiles.yaml``: clean, PGD-ℓ2, ‖f‖²_δ, ‖∇f‖², grad-ℓ2; each in ``configs/<row>.yaml``)
× the row's strengths for the profile × {no SN, SN projection}. Each cell trains a network with
``RegularizedClassifier`` + ``pl.Trainer`` on :class:`rkhsreg.lightning.CIFAR10Data` (random crop 4 + flip),
then measures the standard accuracy on the profile's test images and the robust accuracy at
ε_test ∈ {0.1, 0.5, 1.0, 1.5} (ℓ2, pixel units) with :func:`rkhsreg.evaluation.evaluate_robustness`
on the first ``evaluation.n_examples`` of them.

Resumable: every finished cell is appended at once (one fsync'ed line) to
``results/<profile>/runs.csv``; a cell whose (row, sn, strength, seed, config hash) is there is
skipped. ``--summary`` (also run after training) writes ``table.md``, ``table.csv`` and
``tradeoff.png`` (one panel per ε_test, the paper's reference points as stars) atomically.

Usage::

    python recipes/cifar10_robustness/run.py --profile gpu                     # the experiment (GPU)
    python recipes/cifar10_robustness/run.py --profile cpu-smoke --threads 1   # pipeline check on a CPU
    python recipes/cifar10_robustness/run.py --profile cpu-smoke --summary     # table + plot only
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common import results as _results  # noqa: E402
from recipes._common import runner as _runner  # noqa: E402
from recipes._common.config_keys import parse_ints  # noqa: E402
from recipes._common.results import machine  # noqa: E402
from recipes._common.runner import check_positive, select_rows  # noqa: E402
from recipes._common.scripts import load_script  # noqa: E402

HERE = Path(__file__).resolve().parent
PROFILES = HERE / "profiles.yaml"
COLUMNS = ["row", "sn", "strength", "seed", "standard_acc", "eval_clean_acc", "robust_acc", "eps_test",
           "train_acc", "epochs", "train_examples", "test_examples", "eval_examples", "eval_steps", "train_seconds",
           "eval_seconds", "warnings", "config_hash", "config", "git_commit", "machine", "device", "threads",
           "finished_at"]


# ----------------------------------------------------------------------------- configuration

def load_experiment(path: Path = PROFILES, configs: Path | None = None) -> dict[str, Any]:
    """``profiles.yaml`` with every row's ``configs/<row>.yaml`` loaded under ``rows``."""
    meta = yaml.safe_load(path.read_text())
    folder = configs or path.parent / "configs"
    rows = {}
    for name in meta["rows"]:
        row = yaml.safe_load((folder / f"{name}.yaml").read_text())
        row["name"] = name
        rows[name] = row
    return {"rows": rows, "profiles": meta["profiles"], "eps_test": [float(e) for e in meta["eps_test"]]}


def resolve(experiment: dict[str, Any], profile: str, row: str, strength: float | None, sn: bool,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration of one cell (what its hash covers)."""
    base = copy.deepcopy(experiment["profiles"][profile])
    spec = experiment["rows"][row]
    penalties = {}
    if spec.get("penalty"):
        kwargs = dict(spec.get("fixed") or {})
        if strength is not None:
            kwargs[spec["strength"]] = float(strength)
        penalties[spec["penalty"]] = kwargs
    constraints = {"spectral_norm_projection": dict(base["sn"])} if sn else {}
    cfg = {"profile": profile, "model": base["model"], "data": base["data"], "trainer": base["trainer"],
           "optim": base["optim"], "penalties": penalties, "constraints": constraints,
           "evaluation": {**base["evaluation"], "epsilons": experiment["eps_test"]}}
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        cfg[section][key] = value
    return cfg


def config_hash(cfg: dict[str, Any]) -> str:
    """Hash of everything that changes a cell's result (``num_workers`` left out)."""
    cfg = copy.deepcopy(cfg)
    cfg["data"].pop("num_workers", None)
    return _runner.config_hash(cfg)


def cells(experiment: dict[str, Any], profile: str, rows: Sequence[str], sn: Sequence[bool],
          max_strengths: int | None) -> list[tuple[str, float | None, bool]]:
    """``(row, strength, sn)`` in run order: row by row, no SN before SN, strengths in the file's order."""
    out = []
    for row in rows:
        strengths = experiment["rows"][row]["strengths"][profile]
        if max_strengths is not None:
            strengths = strengths[:max_strengths]
        for use_sn in sn:
            out += [(row, None if s is None else float(s), use_sn) for s in strengths]
    return out


# ----------------------------------------------------------------------------- one cell

def build_network(model: dict[str, Any]) -> torch.nn.Module:
    """The profile's network: ``vgg11`` (with ``width``) or ``resnet18``."""
    from rkhsreg.cifar_models import cifar_resnet18, cifar_vgg11
    arch = model["arch"]
    if arch == "vgg11":
        return cifar_vgg11(width=int(model.get("width", 64)))
    if arch == "resnet18":
        return cifar_resnet18()
    raise SystemExit(f"model.arch={arch!r} is not allowed; choose vgg11 or resnet18.")


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


@torch.no_grad()
def accuracy(net: torch.nn.Module, loader: Any, device: torch.device) -> float:
    """Top-1 accuracy of ``net`` (eval mode) over ``loader``."""
    net.eval()
    correct = total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += int((net(x).argmax(1) == y).sum())
        total += int(y.numel())
    return correct / max(total, 1)


def train_cell(cfg: dict[str, Any], seed: int, data_dir: str | None, cache_dir: str | None,
               label: str = "") -> dict[str, Any]:
    """Train and evaluate one cell; returns the accuracies, times, sanity warnings and the robustness result."""
    from rkhsreg.lightning import CIFAR10Data
    from rkhsreg.evaluation import AttackSettings, evaluate_robustness
    from rkhsreg.lightning import RegularizedClassifier
    import pytorch_lightning as pl

    _quiet_lightning()
    pl.seed_everything(seed, workers=True, verbose=False)
    dm = CIFAR10Data(data_dir=data_dir, cache_dir=cache_dir, seed=seed, **cfg["data"])
    optim = cfg["optim"]
    clf = RegularizedClassifier(build_network(cfg["model"]), num_classes=10, in_chans=3, lr=optim["lr"],
                                momentum=optim["momentum"], weight_decay=optim["weight_decay"],
                                lr_step_size=optim["lr_step_size"], lr_gamma=optim["lr_gamma"],
                                penalties=copy.deepcopy(cfg["penalties"]) or None,
                                constraints=copy.deepcopy(cfg["constraints"]) or None)
    trainer_cfg = cfg["trainer"]
    progress = _EpochLog(label, pl)
    trainer = pl.Trainer(max_epochs=int(trainer_cfg["max_epochs"]), accelerator=trainer_cfg.get("accelerator", "auto"),
                         devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[progress.callback])
    start = time.perf_counter()
    trainer.fit(clf, datamodule=dm)
    train_seconds = time.perf_counter() - start
    train_acc = trainer.callback_metrics.get("train/acc_epoch")
    if not all(torch.isfinite(p).all() for p in clf.net.parameters()):
        raise FloatingPointError(f"{label}: the weights became non-finite during training")
    net = clf.net.eval()
    device = next(net.parameters()).device
    start = time.perf_counter()
    standard = accuracy(net, dm.test_dataloader(), device)
    ev = cfg["evaluation"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_robustness(net, dm.test_set, norm="l2", epsilons=ev["epsilons"],
                                     attack=AttackSettings(steps=int(ev["steps"])),
                                     batch_size=int(ev["batch_size"]), n_examples=int(ev["n_examples"]), seed=seed,
                                     sanity=bool(ev.get("sanity", True)))
    eval_seconds = time.perf_counter() - start
    notes = sorted({f"{type(w.message).__name__}: {str(w.message)[:160]}" for w in caught
                    if "Robustness" in type(w.message).__name__ or "Masked" in type(w.message).__name__
                    or "Nondeterminism" in type(w.message).__name__})
    result.metadata.update({"label": label, "config": cfg, "seed": seed, "standard_acc": standard})
    return {"result": result, "standard_acc": standard, "eval_clean_acc": result.clean_accuracy,
            "robust_acc": list(result.robust_accuracy), "train_acc": None if train_acc is None else float(train_acc),
            "train_seconds": train_seconds, "eval_seconds": eval_seconds, "warnings": notes,
            "device": str(device), "eval_examples": result.n_examples}


class _EpochLog:
    """Prints one line per epoch (loss, accuracy, time); a Lightning callback built lazily."""

    def __init__(self, label: str, pl: Any) -> None:
        outer = self
        self.label, self.start = label, time.perf_counter()

        class _Callback(pl.Callback):
            def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
                m = trainer.callback_metrics
                loss, acc = m.get("train/loss_epoch"), m.get("train/acc_epoch")
                print(f"    {outer.label} epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
                      f"loss {float(loss) if loss is not None else float('nan'):.4f} "
                      f"acc {float(acc) if acc is not None else float('nan'):.3f} "
                      f"{time.perf_counter() - outer.start:7.1f}s", flush=True)

        self.callback = _Callback()


# ----------------------------------------------------------------------------- runner

class Runner(_runner.Runner):
    """The grid's cells, row × strength × SN × seed (the shared kit: :class:`recipes._common.runner.Runner`); no
    validation grid: every strength is a point of the trade-off curve."""

    columns = COLUMNS

    def __init__(self, experiment: dict[str, Any], profile: str, results: Path, *, overrides: dict[str, Any],
                 data_dir: str | None, cache_dir: str | None, threads: int) -> None:
        super().__init__(experiment["rows"], results, threads=threads)
        self.experiment, self.profile, self.overrides = experiment, profile, overrides
        self.data_dir, self.cache_dir = data_dir, cache_dir

    def config_hash(self, cfg: dict[str, Any]) -> str:
        return config_hash(cfg)

    def train(self, cfg: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
        return train_cell(cfg, seed, self.data_dir, self.cache_dir, label=label)

    def run(self, rows: Sequence[str], sn: Sequence[bool], seeds: Sequence[int], max_strengths: int | None) -> int:
        """Train every missing cell; returns how many were trained."""
        trained = 0
        for seed in seeds:
            for row, strength, use_sn in cells(self.experiment, self.profile, rows, sn, max_strengths):
                cfg = resolve(self.experiment, self.profile, row, strength, use_sn, self.overrides)
                h = self.config_hash(cfg)
                tag = "" if strength is None else f"{strength:g}"
                key = (row, str(int(use_sn)), tag, str(seed), h)
                name = f"{row}{'+SN' if use_sn else ''}" + ("" if strength is None else f"@{strength:g}")
                if key in self.finished(self.runs_path, _key):
                    print(f"[skip] {name} seed={seed} (finished, config {h})", flush=True)
                    continue
                print(f"[run ] {name} seed={seed} config {h}", flush=True)
                res = self.train(cfg, seed, name)
                res["result"].to_json(self.results / "runs" / f"{row}_sn{int(use_sn)}_{tag or 'none'}_seed{seed}_{h}"
                                      ".json", per_example=False)
                record = self.stamp({
                    "row": row, "sn": int(use_sn), "strength": tag, "seed": seed,
                    "standard_acc": f"{res['standard_acc']:.4f}", "eval_clean_acc": f"{res['eval_clean_acc']:.4f}",
                    "robust_acc": json.dumps([round(a, 4) for a in res["robust_acc"]]),
                    "eps_test": json.dumps(cfg["evaluation"]["epsilons"]),
                    "train_acc": "" if res["train_acc"] is None else f"{res['train_acc']:.4f}",
                    "epochs": cfg["trainer"]["max_epochs"], "train_examples": cfg["data"]["train_examples"] or "all",
                    "test_examples": cfg["data"]["test_examples"] or "all", "eval_examples": res["eval_examples"],
                    "eval_steps": cfg["evaluation"]["steps"], "train_seconds": f"{res['train_seconds']:.1f}",
                    "eval_seconds": f"{res['eval_seconds']:.1f}", "warnings": " | ".join(res["warnings"]),
                    "config_hash": h, "config": json.dumps(cfg, sort_keys=True, separators=(",", ":")),
                    "device": res["device"]})
                record["machine"] = machine(res["device"])   # the device Lightning chose, not the runner's
                self.append(self.runs_path, record)
                trained += 1
                robust = ", ".join(f"{e:g}: {a:.3f}" for e, a in zip(cfg["evaluation"]["epsilons"],
                                                                     res["robust_acc"]))
                print(f"[done] {name}: standard {res['standard_acc']:.3f}, robust {{{robust}}} "
                      f"({res['train_seconds']:.0f}s + {res['eval_seconds']:.0f}s)", flush=True)
        return trained


def _key(r: dict[str, str]) -> tuple[str, str, str, str, str]:
    """A CSV record's cell key: (row, sn, strength, seed, config hash)."""
    return r["row"], r["sn"], r["strength"], r["seed"], r["config_hash"]


# ----------------------------------------------------------------------------- summary

def summarize(experiment: dict[str, Any], profile: str, results: Path) -> str:
    """Write ``results/table.{md,csv}`` and ``tradeoff.png`` (``summary.py``); returns the Markdown."""
    return load_script("cifar10_robustness_summary", HERE / "summary.py").summarize(experiment, profile, results)


# ----------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="CIFAR-10 robustness trade-off (Figure 1); resumable grid runner.")
    parser.add_argument("--profile", default="cpu-smoke", help="gpu or cpu-smoke (profiles.yaml)")
    parser.add_argument("--rows", default="all", help="comma-separated rows, or 'all'")
    parser.add_argument("--sn", default="both", choices=("both", "off", "on"), help="SN projection cells to run")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--max-strengths", type=int, default=None, help="only the first N strengths of each row")
    parser.add_argument("--arch", default=None, choices=("vgg11", "resnet18"), help="override the profile's network")
    parser.add_argument("--width", type=int, default=None, help="override the VGG width")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--train-examples", type=int, default=None, help="override the training subset size")
    parser.add_argument("--test-examples", type=int, default=None, help="override the test subset size")
    parser.add_argument("--eval-examples", type=int, default=None, help="override the robustness subset size")
    parser.add_argument("--eval-steps", type=int, default=None, help="override the attack steps")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (not in the config hash)")
    parser.add_argument("--data-dir", default=None, help="data root (default $RKHSREG_DATA, else ./data)")
    parser.add_argument("--cache-dir", default=None, help="where the JPEG archive is extracted "
                                                           "(default $RKHSREG_CACHE, else ~/.cache/rkhsreg)")
    parser.add_argument("--results", default=None,
                        help="results folder (default results/cifar10_robustness/<profile>: a folder of your own; the published results are in recipes/cifar10_robustness/published/)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--summary", action="store_true", help="only write table.{md,csv} and tradeoff.png")
    args = parser.parse_args(argv)

    experiment = load_experiment()
    if args.profile not in experiment["profiles"]:
        raise SystemExit(f"--profile={args.profile!r} is not allowed; choose {', '.join(experiment['profiles'])}.")
    results = Path(args.results) if args.results else Path("results") / "cifar10_robustness" / args.profile
    if args.summary:
        print(summarize(experiment, args.profile, results))
        return 0
    rows = select_rows(args.rows, experiment["rows"])
    overrides: dict[str, Any] = {}
    for flag, key in (("arch", "model.arch"), ("width", "model.width"), ("epochs", "trainer.max_epochs"),
                      ("train_examples", "data.train_examples"), ("test_examples", "data.test_examples"),
                      ("eval_examples", "evaluation.n_examples"), ("eval_steps", "evaluation.steps"),
                      ("num_workers", "data.num_workers")):
        value = getattr(args, flag)
        if value is not None:
            if not isinstance(value, str):
                check_positive(flag.replace("_", "-"), value, minimum=0 if flag == "num_workers" else 1)
            overrides[key] = value
    check_positive("threads", args.threads)
    torch.set_num_threads(args.threads)
    sn = {"both": (False, True), "off": (False,), "on": (True,)}[args.sn]
    runner = Runner(experiment, args.profile, results, overrides=overrides, data_dir=args.data_dir,
                    cache_dir=args.cache_dir, threads=args.threads)
    trained = runner.run(rows, sn, parse_ints(args.seeds, "seeds"), args.max_strengths)
    print(f"{trained} run(s) trained; results in {results / 'runs.csv'}", flush=True)
    print(summarize(experiment, args.profile, results))
    print(_results.published_table(HERE / "published" / args.profile, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
