"""Cost of the deformation penalties and of the "(∗)" augmentation relative to a plain step, MNIST network.

Measured by :func:`benchmarks.step_cost.measure_model` with the shared step-timing helper: time and
peak-memory ratios to a plain SGD step (batch 128, two rounds in one process) and the penalty's
forward/backward passes. For the adversarial searches the value found is printed next to the random
search's (and the exhaustive search's) on the same examples — every search draws its example subset
from the same generator state.

Paper reference (their code, CPU, same net, 2 threads): ‖f‖²_τ 4.6×, ‖D_τ f‖² 3.55×.

Usage::

    python benchmarks/deformation_cost.py [--data-dir DIR] [--threads 1] [--steps 3] [--only SUBSTRING]
        [--json out.json]
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

_ADV = {"search": "adversarial"}
CONFIGS = [
    Config("(∗) RandomDeformation of the batch", "augment"),
    Config("‖f‖²_τ random (paper: 32 ex × 31 deformations)", "penalty", "adversarial_deformation", {}),
    Config("‖f‖²_τ random, joint", "penalty", "adversarial_deformation", {"mode": "joint"}),
    Config("‖f‖²_τ adversarial (32 ex, 5 steps, candidates=4)", "penalty", "adversarial_deformation", _ADV,
           compare={"random": {}, "exhaustive": {**_ADV, "candidates": "all"}}),
    Config("‖f‖²_τ adversarial, candidates=all", "penalty", "adversarial_deformation", {**_ADV, "candidates": "all"}),
    Config("‖f‖²_τ adversarial, joint", "penalty", "adversarial_deformation", {**_ADV, "mode": "joint"},
           compare={"random": {"mode": "joint"}}),
    Config("‖D_τ f‖² (paper: 32 ex × 30 tangents)", "penalty", "tangent_propagation", {}),
    Config("‖D_τ f‖² joint", "penalty", "tangent_propagation", {"mode": "joint"}),
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
