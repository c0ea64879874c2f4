"""Is the robustness curve ever weaker than the official AutoAttack? Against several of AutoAttack's seeds.

A small MNIST network (``mnist_vgg5(width=16)``, trained as in ``benchmarks/evaluation_cost.py``) is evaluated on
the first ``--n-examples`` test digits, ℓ2, at each ε of ``--epsilons``:

* ``evaluate_robustness`` (default ensemble, 100 steps), with its borderline restarts (default: 4 extra runs
  on examples found adversarial within 1.1·ε but not broken at ε) and without them (``borderline_restarts=0``);
* the official AutoAttack (fra31's code, packaged on PyPI as ``pyautoattack``; ``version="standard"``, ℓ2:
  APGD-CE, APGD-T, FAB-T, Square with its own budgets) run alone at that ε with each seed of ``--seeds``.

A robust accuracy above AutoAttack's at some ε and seed means AutoAttack broke a digit the curve left
robust. ``pyautoattack`` is a benchmark dependency only (``pip install pyautoattack``).

Usage::

    python benchmarks/autoattack_seeds.py [--data-dir DIR] [--n-examples 200] [--seeds 0,1,2]
        [--epsilons 0.5,1,1.5,2] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import machine_info, write_json  # noqa: E402
from benchmarks.evaluation_cost import _mnist, _train  # noqa: E402
from rkhsreg.data.root import resolve_data_root  # noqa: E402
from rkhsreg.evaluation import AttackSettings, evaluate_robustness  # noqa: E402


def autoattack_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int,
                        device: str = "cpu") -> float:
    """Robust accuracy under the official AutoAttack (standard, ℓ2) at ``eps`` with ``seed``."""
    from pyautoattack import AutoAttack
    attack = AutoAttack(model, norm="L2", eps=eps, version="standard", seed=seed, device=device)
    attack.verbose = False
    adv = attack.run_standard_evaluation(x, y, batch_size=len(y))
    adv = adv[0] if isinstance(adv, tuple) else adv   # pyautoattack returns (x_adv, y_adv)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).double().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-examples", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epsilons", default="0.5,1,1.5,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_dir = str(resolve_data_root(args.data_dir))
    epsilons = [float(e) for e in args.epsilons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    model = _train(args.width, args.train_steps, data_dir).eval()
    x, y = _mnist(data_dir, train=False)
    x, y = x[:args.n_examples], y[:args.n_examples]
    report: dict[str, Any] = {"settings": vars(args), "machine": machine_info(), "curves": {}, "autoattack": {}}
    for label, restarts in (("restarts", 4), ("no restarts", 0)):
        start = time.perf_counter()
        result = evaluate_robustness(model, (x, y), epsilons=epsilons, sanity=False,
                                     attack=AttackSettings(borderline_restarts=restarts))
        report["curves"][label] = {"robust": result.robust_accuracy, "seconds": time.perf_counter() - start,
                                   "restart_stages": sum(1 for s in result.stages if s["restart"])}
        print(label, report["curves"][label], flush=True)
    for seed in seeds:
        start = time.perf_counter()
        report["autoattack"][str(seed)] = [autoattack_accuracy(model, x, y, e, seed) for e in epsilons]
        print(f"AutoAttack seed {seed}: {report['autoattack'][str(seed)]} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    lines = ["| ε | " + " | ".join(f"{e:g}" for e in epsilons) + " |", "|---|" + "---|" * len(epsilons)]
    for label, curve in report["curves"].items():
        lines.append(f"| rkhsreg curve ({label}) | " + " | ".join(f"{a:.3f}" for a in curve["robust"]) + " |")
    for seed, accs in report["autoattack"].items():
        lines.append(f"| AutoAttack, seed {seed} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
    best = [min(accs[i] for accs in report["autoattack"].values()) for i in range(len(epsilons))]
    lines.append("| AutoAttack, best seed per ε | " + " | ".join(f"{a:.3f}" for a in best) + " |")
    report["table"] = "\n".join(lines)
    report["curve_at_most_every_seed"] = {label: all(c <= min(a) + 1e-12 for c, a in zip(
        curve["robust"], zip(*report["autoattack"].values()))) for label, curve in report["curves"].items()}
    print(report["table"])
    print("curve ≤ AutoAttack with every seed, at every ε:", report["curve_at_most_every_seed"])
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
