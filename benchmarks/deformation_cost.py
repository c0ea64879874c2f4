"""Cost of the deformation penalties relative to a plain training step on the paper's MNIST network.

For each configuration: the median over steps of the wall time of an SGD step (momentum 0.9, lr 0.05,
batch 128, CPU) with the penalty added to the loss divided by the plain step timed just before it;
the forward/backward passes the penalty reports (full-batch equivalents) and the value it found (for
the adversarial search, also the random search's and the exhaustive search's values on the same
examples). Every ratio is measured twice in the same process (rounds 1 and 2). The model is first trained for 30
plain steps on real MNIST (if found; random images otherwise) so its gradients are not those of a
random network. Also times the "(∗)" augmentation (RandomDeformation of the whole batch).

Paper reference (their code, CPU, same net, 2 threads): ‖f‖²_τ 4.6×, ‖D_τ f‖² 3.55×.

Usage::

    python benchmarks/deformation_cost.py [--data-dir DIR] [--threads 2] [--steps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import rkhsreg
from rkhsreg.models import mnist_vgg5
from rkhsreg.transforms import RandomDeformation

CONFIGS: list[tuple[str, str, dict]] = [
    ("‖f‖²_τ random (paper: 32 ex × 31 deformations)", "adversarial_deformation", {}),
    ("‖f‖²_τ random, joint", "adversarial_deformation", {"mode": "joint"}),
    ("‖f‖²_τ adversarial (32 ex, 5 steps, candidates=4)", "adversarial_deformation", {"search": "adversarial"}),
    ("‖f‖²_τ adversarial, candidates=all", "adversarial_deformation",
     {"search": "adversarial", "candidates": "all"}),
    ("‖f‖²_τ adversarial, joint", "adversarial_deformation", {"search": "adversarial", "mode": "joint"}),
    ("‖D_τ f‖² (paper: 32 ex × 30 tangents)", "tangent_propagation", {}),
    ("‖D_τ f‖² joint", "tangent_propagation", {"mode": "joint"}),
]


def _data(data_dir: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        from torchvision.datasets import MNIST
        ds = MNIST(data_dir, train=True, download=False)
        return ds.data[:2048].float().div(255).unsqueeze(1), ds.targets[:2048], "MNIST"
    except Exception:  # no torchvision or no data: timing does not depend much on the pixels
        g = torch.Generator().manual_seed(0)
        return torch.rand(2048, 1, 28, 28, generator=g), torch.randint(0, 10, (2048,), generator=g), "random"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("RKHSREG_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                              "data"))
    parser.add_argument("--data-dir", default=default_dir)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median)")
    parser.add_argument("--only", default="", help="substring filter on the configuration labels")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    x_all, y_all, source = _data(args.data_dir)
    torch.manual_seed(0)
    model = mnist_vgg5()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        idx = torch.randint(0, len(x_all), (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
        opt.step()
    x, y = x_all[:128], y_all[:128]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"data: {source}, median of {args.steps} steps, two rounds")

    def step(penalty=None, augment=None) -> float:
        t = time.perf_counter()
        inputs = x if augment is None else augment(x)
        loss = F.cross_entropy(model(inputs), y)
        if penalty is not None:
            loss = loss + penalty(model, inputs, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    def ratio(**kw) -> tuple[list[float], float]:
        """Two rounds; each the median over ``steps`` of (step with the plugin) / (the plain step just
        before it): interleaving keeps the ratio meaningful on a machine whose load drifts."""
        rounds = []
        for _ in range(2):
            step(), step(**kw)  # warm-up
            plains, ratios = [], []
            for _ in range(args.steps):
                plains.append(step())
                ratios.append(step(**kw) / plains[-1])
            rounds.append(statistics.median(ratios))
        return rounds, statistics.median(plains)

    results = []
    configs = [(label, name, kw) for label, name, kw in CONFIGS if args.only in label]
    if args.only in "(∗) RandomDeformation of the batch":
        rounds, plain = ratio(augment=RandomDeformation(seed=0))
        results.append({"label": "(∗) RandomDeformation of the batch", "ratios": rounds, "plain_seconds": plain})
        print(f"{results[-1]['label']:<55} {rounds[0]:5.2f}× {rounds[1]:5.2f}×   (plain step {plain:.3f} s)",
              flush=True)
    for label, name, kw in configs:
        penalty = rkhsreg.create_penalty(name, **kw)
        rounds, plain = ratio(penalty=penalty)
        passes = penalty.last_passes  # the last timed call's (estimate() below would add to this object)
        forward, backward = passes.forward, passes.backward
        # values on the same examples: every search draws its example subset first from the same state
        state = penalty.state_dict()
        value = penalty.estimate(model, x, y).item()
        extra = ""
        if name == "adversarial_deformation" and kw.get("search") == "adversarial":
            compare = {"random": {**kw, "search": "random"}}
            if kw.get("mode", "per_class") == "per_class":
                compare["exhaustive"] = {**kw, "candidates": "all"}
            for key, other_kw in compare.items():
                other = rkhsreg.create_penalty(name, **other_kw)
                other.load_state_dict(state)
                extra += f"   {key} {other.estimate(model, x, y).item():.4g}"
        results.append({"label": label, "penalty": name, "kwargs": kw, "ratios": rounds, "plain_seconds": plain,
                        "passes": {"forward": forward, "backward": backward}, "value": value})
        print(f"{label:<55} {rounds[0]:5.2f}× {rounds[1]:5.2f}×   passes fwd {forward:5.2f} "
              f"bwd {backward:5.2f}   value {value:.4g}{extra}   (plain step {plain:.3f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "data": source, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
