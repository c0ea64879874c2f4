"""Cost of the spectral-norm projection and penalty relative to a plain SGD step, MNIST network (CPU).

Measured by :func:`benchmarks.step_cost.measure_model` with the shared step-timing helper: time and
peak-memory ratios to a plain step (SGD momentum 0.9, batch 128, two rounds in one process); for the
projections also "projection alone": (plain step + median time of the projection call) / plain step,
which is free of the noise of two step medians. Radius 0.5 as in the paper, so the projections work at
every step. Targets: reshaped projection ≤ 1.05×, operator ≤ 1.25×.

Usage::

    python benchmarks/spectral_cost.py [--data-dir DIR] [--threads 1] [--steps 5] [--json out.json]
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

_SN = "spectral_norm_projection"
CONFIGS = [
    Config("projection, reshaped σ, scale (default)", "constraint", _SN, {"radius": 0.5}),
    Config("projection, reshaped σ, clip (paper, exact)", "constraint", _SN, {"radius": 0.5, "projection": "clip"}),
    Config("projection, conv operator norm, scale", "constraint", _SN, {"radius": 0.5, "method": "operator"}),
    Config("SN penalty, 2 warm-started power iterations", "penalty", "spectral_norm", {"weight": 0.01}),
    Config("SN penalty, exact SVD", "penalty", "spectral_norm", {"weight": 0.01, "exact": True}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="timed step pairs per round (median)")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {machine_info()}")
    print(format_rows([]))
    result = measure_model("mnist_vgg5", steps=args.steps, data_dir=args.data_dir, configs=CONFIGS)
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
