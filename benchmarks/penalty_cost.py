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

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.step_cost import Config, config_main  # noqa: E402

CONFIGS = [
    Config("plain (noise floor)", "plain"),
    Config("weight decay 5e-4", "weight_decay"),
    Config("‖f‖²_δ per class, candidates=4", "penalty", "adversarial_perturbation", {"epsilon": 1.0, "candidates": 4}),
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
    config_main(__doc__.splitlines()[0], CONFIGS)


if __name__ == "__main__":
    main()
