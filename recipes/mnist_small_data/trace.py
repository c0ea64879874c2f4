"""Trace one Table 2 run step by step: cross-entropy, each penalty, gradient norm, batch accuracy.

Trains a row's config exactly as ``run.py`` does (the validation grids' choices from ``results/``, the same
seed, data and schedule), optionally with values overridden by ``--set``, and writes one CSV line per SGD
step. It then prints the largest cross-entropy and gradient norm, and the *relapses*: steps after which
the batch accuracy had reached ``--fit`` (default 0.5) where it fell back below ``--chance`` (default
0.3), i.e. training diverged and restarted from near chance. Written for the grad-ℓ2 row, whose
validation grid is not monotone in λ (docs/mnist_small_data.md), but works for every row.

Usage::

    python recipes/mnist_small_data/trace.py --row grad_l2 --seed 1 --out /tmp/grad_l2_seed1.csv
    python recipes/mnist_small_data/trace.py --row grad_l2 --set model.penalties.loss_gradient.weight=0.3
    python recipes/mnist_small_data/trace.py --row wd --out /tmp/wd.csv      # the baseline's trace
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common import results as _results  # noqa: E402
from recipes._common.config_keys import set_key  # noqa: E402
from recipes._common.scripts import load_script  # noqa: E402

HERE = Path(__file__).resolve().parent
FIELDS = ["epoch", "step", "lr", "ce", "loss", "grad_norm", "batch_acc"]


def _load_runner() -> Any:
    return load_script("mnist_small_data_run", HERE / "run.py")


def relapses(records: Sequence[dict[str, Any]], fit: float = 0.5, chance: float = 0.3) -> list[int]:
    """Steps whose batch accuracy fell below ``chance`` after some earlier step had reached ``fit``."""
    out, reached = [], False
    for r in records:
        if reached and r["batch_acc"] < chance:
            out.append(int(r["step"]))
            reached = False  # count one relapse until the network fits again
        reached = reached or r["batch_acc"] >= fit
    return out


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=0.3", ...]`` -> ``{"a.b": 0.3}`` (values parsed as YAML scalars)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r} is not allowed; pass dotted.key=value, e.g. "
                             "model.penalties.loss_gradient.weight=0.3.")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    run = _load_runner()
    parser = argparse.ArgumentParser(description="Trace one Table 2 run step by step.")
    parser.add_argument("--row", required=True, help="row name (table2.yaml)")
    parser.add_argument("--n", type=int, default=300, help="training-set size")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: as run.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value after the grids' choice (repeatable)")
    parser.add_argument("--table", default=str(run.TABLE), help="the rows file (table2.yaml)")
    parser.add_argument("--results", default=str(HERE / "published"), help="results folder holding the grids' runs")
    parser.add_argument("--data-dir", default=None, help="MNIST root with MNIST/raw (default: $RKHSREG_DATA, ./data)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="where to train: cpu (default), cuda, cuda:1…")
    parser.add_argument("--out", default=None, help="CSV file for the per-step records (default: print only)")
    parser.add_argument("--eval-examples", type=int, default=None,
                        help="evaluate on the first N validation/test examples (default: all 10,000; tests use few)")
    parser.add_argument("--fit", type=float, default=0.5,
                        help="batch accuracy that counts as learning (before a relapse)")
    parser.add_argument("--chance", type=float, default=0.3, help="batch accuracy that counts as a relapse")
    args = parser.parse_args(argv)

    table = run.load_table(Path(args.table))
    if args.row not in table["rows"]:
        raise SystemExit(f"--row={args.row!r} is unknown; choose from {', '.join(table['rows'])}.")
    if args.n < 1:
        raise SystemExit(f"--n={args.n} is out of range; pass an int >= 1.")
    if not 0 <= args.chance < args.fit <= 1:
        raise SystemExit(f"--chance={args.chance}, --fit={args.fit} are not allowed; need 0 <= chance < fit <= 1.")
    device = run.check_run_args(args)
    # the grids' choice as the table made it (its epochs, every evaluation image); --epochs applies afterwards
    runner = run.Runner(table, Path(args.results), args.data_dir, None, args.threads, dry=True)
    overrides = parse_set(args.set)
    row = table["rows"][args.row]
    tuned = set(row.get("grid") or {}) | set(row.get("inherit") or {})
    chosen = runner.choose(args.row)
    if chosen is None:
        if not tuned <= set(overrides):
            raise SystemExit(f"--row={args.row}: its validation grid is unfinished in {args.results}; "
                             f"run run.py for it first or pass every tuned value with --set "
                             f"({', '.join(sorted(tuned))}).")
        chosen = {}
    cfg = run.resolved(row["cfg"], args.n,
                       args.epochs if args.epochs is not None else runner.epochs_for(args.n))
    for key, value in {**chosen, **overrides}.items():
        try:
            set_key(cfg, key, value)
        except (KeyError, TypeError) as err:
            raise SystemExit(f"--set {key}={value!r}: {err}") from None
    records: list[dict[str, Any]] = []

    def keep(record: dict[str, Any]) -> None:
        flat = {k: record[k] for k in FIELDS}
        flat.update({f"penalty:{k}": v for k, v in record["penalties"].items()})
        records.append(flat)

    print(f"[trace] {args.row} n={args.n} seed={args.seed} {run.hparams(cfg)}", flush=True)
    result = run.train_one(cfg, args.seed, args.data_dir, label=f"{args.row}/{args.n}/{args.seed}",
                           eval_examples=args.eval_examples, trace=keep, device=device)
    header = FIELDS + sorted({k for r in records for k in r} - set(FIELDS))
    if args.out:
        print(f"written: {_results.atomic_write(args.out, _results.csv_text(header, records))}")
    worst = max(records, key=lambda r: r["ce"])
    steep = max(records, key=lambda r: r["grad_norm"])
    back = relapses(records, args.fit, args.chance)
    print(f"[trace] val {result['val_acc']:.2f}% test {result['test_acc']:.2f}% train {result['train_acc']:.2f}%; "
          f"max cross-entropy {worst['ce']:.3f} (step {worst['step']}), max gradient norm {steep['grad_norm']:.2f} "
          f"(step {steep['step']}); relapses to < {args.chance:.0%} batch accuracy after reaching {args.fit:.0%}: "
          f"{len(back)}" + (f" (steps {', '.join(map(str, back))})" if back else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
