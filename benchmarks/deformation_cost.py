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

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.step_cost import Config, config_main  # noqa: E402

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
    config_main(__doc__.splitlines()[0], CONFIGS)


if __name__ == "__main__":
    main()
