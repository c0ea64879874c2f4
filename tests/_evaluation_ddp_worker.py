"""One rank of the 2-process evaluation test: same data on every rank, batches sharded by the sweep."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rkhsreg import InputError  # noqa: E402
from rkhsreg.evaluation import evaluate_robustness  # noqa: E402
from rkhsreg.evaluation.settings import AttackSettings  # noqa: E402
from tests._ddp import exit_worker  # noqa: E402
from tests._evaluation_helpers import quadrant_data, trained_cnn  # noqa: E402

EPSILONS = [0.1, 0.25, 0.5, 1.0]
SETTINGS = dict(epsilons=EPSILONS, attack=AttackSettings(steps=5), batch_size=6, seed=7)


def problem():
    model = trained_cnn()
    x, y = quadrant_data(30, seed=11)
    return model, x, y


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    model, x, y = problem()
    result = evaluate_robustness(model, (x, y), **SETTINGS)
    # the same examples in another order on rank 1 (a shuffled loader): refused on every rank, before any attack
    order = torch.arange(x.shape[0]) if dist.get_rank() == 0 else torch.arange(x.shape[0]).flip(0)
    try:
        evaluate_robustness(model, (x[order], y[order]), **SETTINGS)
        mismatch = ""
    except InputError as exc:
        mismatch = str(exc)
    torch.save({"mismatch": mismatch,
                "rank": dist.get_rank(), "world": dist.get_world_size(), "distances": result.distances,
                "robust": result.robust_accuracy, "clean": result.clean_accuracy,
                "attacked": [s["attacked"] for s in result.stages],
                "rows": result.forward_rows + result.backward_rows,
                "checks": {k: v["passed"] for k, v in result.sanity["checks"].items()}},
               Path(args.out) / f"rank{os.environ['RANK']}.pt")
    exit_worker()


if __name__ == "__main__":
    main()
