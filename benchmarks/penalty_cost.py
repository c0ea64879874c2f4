"""Cost of each penalty relative to a plain training step on the paper's MNIST network, ‖f‖²_δ variants included.

The configurations below are measured by :func:`benchmarks.step_cost.measure_model` with the shared
step-timing helper (:func:`benchmarks._timing.compare_steps`): median time ratio of a step with the
penalty to a plain step (SGD momentum 0.9, batch 128), peak-memory ratio, the penalty's
forward/backward passes, twice in one process. The model is first trained for 100 plain steps on real
MNIST. Also checks the value target of ``adversarial_perturbation``: the candidate search finds the
value of the straightforward one-PGD-per-(class, example) algorithm (``benchmarks/_reference_delta.py``)
on the same model and batch (column "value": ÷ straightforward).

Usage::

    python benchmarks/penalty_cost.py [--data-dir DIR] [--threads 1] [--steps 3] [--only SUBSTRING] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import machine_info, write_json  # noqa: E402
from benchmarks.step_cost import Config, format_rows, measure_model  # noqa: E402

CONFIGS = [
    Config("plain (noise floor)", "plain"),
    Config("weight decay 5e-4", "weight_decay"),
    Config("‖f‖²_δ per class, candidates=4 (default)", "penalty", "adversarial_perturbation", {"epsilon": 1.0}),
    Config("‖f‖²_δ per class, candidates=8", "penalty", "adversarial_perturbation", {"epsilon": 1.0, "candidates": 8}),
    Config("‖f‖²_δ per class, candidates=1", "penalty", "adversarial_perturbation", {"epsilon": 1.0, "candidates": 1}),
    Config("‖f‖²_δ per class, exhaustive (candidates='all')", "penalty", "adversarial_perturbation",
           {"epsilon": 1.0, "candidates": "all"}),
    Config("‖f‖²_δ joint", "penalty", "adversarial_perturbation", {"epsilon": 1.0, "mode": "joint"}),
    Config("‖f‖²_δ straightforward: one PGD per class and example", "reference"),
    Config("‖∇f‖² per class", "penalty", "gradient_norm", {}),
    Config("grad-ℓ2", "penalty", "loss_gradient", {}),
    Config("PGD-ℓ2 adversarial training (5 steps)", "penalty", "adversarial_training", {"epsilon": 1.0}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed step pairs per round (median)")
    parser.add_argument("--only", default="", help="substring filter on the configuration labels")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {machine_info()}")
    print(format_rows([]))
    result = measure_model("mnist_vgg5", steps=args.steps, only=args.only, data_dir=args.data_dir, configs=CONFIGS)
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
