"""Cost of each plugin relative to a plain training step on the paper's MNIST network.

For every configuration: median wall time of an SGD step (momentum 0.9, lr 0.05, batch 128, CPU)
with the plugin, divided by the median time of a plain step measured in the same process just
before; forward/backward passes the plugin reports (full-batch equivalents); peak resident memory
of the process. Each configuration runs in its own process (so peak memory is its own), and the
ratio is measured twice in that process (rounds 1 and 2). The model is first trained for 100 plain SGD
steps (lr 0.01) on real MNIST so gradients are not those of a random network.

Also checks the issue's value target: the candidate search of ``adversarial_perturbation`` finds a
value at least as large as the exhaustive per-(class, example) search (``candidates="all"``, the
reference code's algorithm) on the same model and batch.

Usage::

    python benchmarks/penalty_cost.py [--data-dir DIR] [--threads 2] [--steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time

CONFIGS: list[tuple[str, str, dict]] = [
    ("plain", "", {}),
    ("weight decay", "", {}),
    ("‖f‖²_δ per class (candidates=4, default)", "adversarial_perturbation", {"epsilon": 1.0}),
    ("‖f‖²_δ per class (candidates=8)", "adversarial_perturbation", {"epsilon": 1.0, "candidates": 8}),
    ("‖f‖²_δ per class (candidates=1)", "adversarial_perturbation", {"epsilon": 1.0, "candidates": 1}),
    ("‖f‖²_δ per class, exhaustive (reference algorithm)", "adversarial_perturbation",
     {"epsilon": 1.0, "candidates": "all"}),
    ("‖f‖²_δ joint", "adversarial_perturbation", {"epsilon": 1.0, "mode": "joint"}),
    ("‖∇f‖² per class", "gradient_norm", {}),
    ("grad-ℓ2", "loss_gradient", {}),
    ("PGD-ℓ2 (5 steps)", "adversarial_training", {"epsilon": 1.0}),
    ("‖f‖²_τ random (paper)", "adversarial_deformation", {}),
    ("‖f‖²_τ adversarial", "adversarial_deformation", {"search": "adversarial"}),
    ("‖D_τ f‖²", "tangent_propagation", {}),
    ("SN penalty (power it.)", "spectral_norm", {}),
    ("SN projection (default)", "constraint:spectral_norm_projection", {}),
    ("SN projection (operator)", "constraint:spectral_norm_projection",
     {"method": "operator", "input_shape": (1, 28, 28)}),
]


def _data(data_dir: str):
    import torch
    from torchvision.datasets import MNIST
    ds = MNIST(data_dir, train=True, download=False)
    return ds.data[:2048].float().div(255).unsqueeze(1), ds.targets[:2048]


def _child(label: str, plugin: str, kwargs: dict, data_dir: str, threads: int, steps: int, queue) -> None:
    import torch
    import torch.nn.functional as F

    import rkhsreg
    from rkhsreg.models import mnist_vgg5
    torch.set_num_threads(threads)
    x_all, y_all = _data(data_dir)
    torch.manual_seed(0)
    model = mnist_vgg5()
    # warm-up training at lr 0.01 (lr 0.05 from scratch diverges on some runs of this un-normalised net)
    warm = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, len(x_all), (128,), generator=g)
        warm.zero_grad()
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        loss.backward()
        warm.step()
    if not torch.isfinite(loss):
        raise RuntimeError(f"warm-up training diverged (loss {loss.item()}); the measurement would be meaningless")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                          weight_decay=5e-4 if label == "weight decay" else 0.0)
    x, y = x_all[:128], y_all[:128]
    penalty = constraint = None
    if plugin.startswith("constraint:"):
        constraint = rkhsreg.create_constraint(plugin.split(":", 1)[1], **kwargs)
    elif plugin:
        penalty = rkhsreg.create_penalty(plugin, **kwargs)

    def step(with_plugin: bool) -> float:
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        if with_plugin and penalty is not None:
            value = penalty(model, x, y)
            loss = value if penalty.replaces_loss else loss + value
        opt.zero_grad()
        loss.backward()
        opt.step()
        if with_plugin and constraint is not None:
            constraint(model)
        return time.perf_counter() - t

    rounds = []
    for _ in range(2):
        step(False), step(True)  # warm-up (first power iterations, allocator)
        plain = statistics.median(step(False) for _ in range(steps))
        extra = statistics.median(step(True) for _ in range(steps))
        rounds.append(extra / plain)
    out = {"label": label, "ratios": rounds, "plain_seconds": plain,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if penalty is not None:
        out["passes"] = {"forward": penalty.last_passes.forward, "backward": penalty.last_passes.backward}
    if plugin == "adversarial_perturbation" and kwargs.get("mode") != "joint":
        found = penalty.estimate(model, x, y).item()
        exhaustive = rkhsreg.create_penalty(plugin, **{**kwargs, "candidates": "all"}).estimate(model, x, y).item()
        out["value"], out["exhaustive_value"] = found, exhaustive
    queue.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA", "data"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (median)")
    parser.add_argument("--only", default="", help="substring filter on the configuration labels")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"torch threads {args.threads}; MNIST net, batch 128")
    print(f"{'configuration':52s} {'round 1':>8s} {'round 2':>8s} {'fwd':>6s} {'bwd':>6s} {'peak MB':>8s}")
    results = []
    for label, plugin, kwargs in CONFIGS:
        if args.only not in label:
            continue
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(label, plugin, kwargs, args.data_dir, args.threads, args.steps,
                                                queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"{label:52s} failed (exit code {proc.exitcode})")
            continue
        r = queue.get()
        results.append(r)
        p = r.get("passes", {})
        print(f"{label:52s} {r['ratios'][0]:7.2f}x {r['ratios'][1]:7.2f}x {p.get('forward', 0):6.2f} "
              f"{p.get('backward', 0):6.2f} {r['peak_rss_mb']:8.0f}", flush=True)
        if "exhaustive_value" in r:
            verdict = ">=" if r["value"] >= r["exhaustive_value"] * (1 - 1e-6) else "<"
            print(f"{'':52s} value {r['value']:.6g} {verdict} exhaustive {r['exhaustive_value']:.6g}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
