"""Cost of the spectral-norm projection and penalty relative to a plain SGD step (CPU).

On the paper's MNIST network at batch 128 with 2 threads, times the median of a plain step
(SGD, momentum 0.9, lr 0.05), of a step followed by each projection, and of a step with the SN
penalty, then prints the ratios. Variants are timed in turn, one step each per
round, so a change of CPU load hits them alike; the whole measurement runs twice in one process
(both printed), so warm-up and noise are visible. Targets (issue 2): reshaped projection <= 1.05x, operator <= 1.25x.

Usage:
    python benchmarks/spectral_cost.py [--repeats 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from rkhsreg.constraints.spectral_norm_projection import SpectralNormProjection
from rkhsreg.models import mnist_vgg5
from rkhsreg.penalties.spectral_norm import SpectralNormPenalty


def make_step(penalty=None, constraint=None, extra: list[float] | None = None) -> Callable[[], None]:
    """A training step on a fresh seeded model; the projection's own time is appended to ``extra``."""
    torch.manual_seed(0)
    model = mnist_vgg5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        if penalty is not None:
            loss = loss + penalty(model, x, y)
        loss.backward()
        optimizer.step()
        if constraint is not None:
            start = time.perf_counter()
            constraint(model)
            if extra is not None:
                extra.append(time.perf_counter() - start)
    return step


def interleaved_medians(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median step time of each variant, timing one step of each in turn (robust to drifting CPU load)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def variants(extra: dict[str, list[float]]) -> dict[str, Callable[[], None]]:
    # radius 0.5 as in the paper, so the projections do work at every step
    projections = {
        "proj reshape+clip": SpectralNormProjection(radius=0.5, projection="clip"),
        "proj reshape+scale": SpectralNormProjection(radius=0.5, projection="scale"),
        "proj operator+scale": SpectralNormProjection(radius=0.5, method="operator", input_shape=(1, 28, 28),
                                                      projection="scale"),
    }
    return {
        "plain": make_step(),
        **{name: make_step(constraint=c, extra=extra.setdefault(name, [])) for name, c in projections.items()},
        "penalty power-it (2)": make_step(penalty=SpectralNormPenalty(weight=0.01)),
        "penalty exact SVD": make_step(penalty=SpectralNormPenalty(weight=0.01, exact=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128, mnist_vgg5, "
          f"median of {args.repeats} interleaved steps")
    for run in (1, 2):
        extra: dict[str, list[float]] = {}
        steps = variants(extra)
        times = interleaved_medians(steps, args.repeats)
        base = times["plain"]
        print(f"run {run}:  (step ratio; for projections also plain + median projection time alone)")
        for name, t in times.items():
            alone = ""
            if name in extra:
                p = statistics.median(extra[name][-args.repeats:])
                alone = f"   projection alone {p * 1e3:7.1f} ms -> {(base + p) / base:5.3f}x"
            print(f"  {name:24s} {t * 1e3:8.1f} ms  {t / base:5.2f}x{alone}")


if __name__ == "__main__":
    main()
