"""What the first-order ranking costs: one forward and K input-only backward passes, ÷ a plain training step.

Every per-class search of ‖f‖²_δ (and the exact selection of ‖∇f‖²) needs ∇_x f_k(x_i) for every class k and
example i: one forward of the batch and K input-gradient passes. That sum is a floor under the cost of a
training step with these penalties (plain step + ranking), whatever the search does next. Measured, with the
shared interleaved timing (:func:`benchmarks._timing.compare_steps`, two rounds in one process), for the K
passes as a loop of ``torch.autograd.grad`` (what the library does) and as one vmapped call
(``is_grads_batched=True``), on timm ResNet-18 (32×32, batch 64) and the paper's ``mnist_vgg5(64)`` (28×28,
batch 128), random inputs, eval mode, 1 thread by default.

Usage::

    python benchmarks/ranking_cost.py [--threads 1] [--rounds 2] [--steps 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import compare_steps, training_step  # noqa: E402

MODELS = {"resnet18": ((3, 32, 32), 64), "mnist_vgg5_64": ((1, 28, 28), 128)}


def build(name: str) -> torch.nn.Module:
    if name == "resnet18":
        import timm
        return timm.create_model("resnet18", pretrained=False, num_classes=10)
    from rkhsreg.models import mnist_vgg5
    return mnist_vgg5(width=64)


def ranking(model: torch.nn.Module, x: torch.Tensor, batched: bool):
    """One forward of ``x`` and the K input gradients ∇_x f_k, as a loop or as one vmapped call."""
    def run() -> None:
        z = x.clone().requires_grad_(True)
        out = model(z)
        k = out.shape[1]
        if batched:
            eye = torch.eye(k, dtype=out.dtype)[:, None, :].expand(k, *out.shape)
            torch.autograd.grad(out, z, grad_outputs=eye, is_grads_batched=True)
        else:
            for j in range(k):
                torch.autograd.grad(out[:, j].sum(), z, retain_graph=j < k - 1)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed pairs per round (median)")
    args = parser.parse_args(argv)
    for option in ("threads", "rounds", "steps"):
        if getattr(args, option) < 1:
            raise SystemExit(f"--{option}={getattr(args, option)} is out of range; pass an int >= 1.")
    torch.set_num_threads(args.threads)
    print("| model | ranking (loop) ÷ plain step | ranking (vmapped) ÷ plain step |\n|---|---|---|")
    for name, (shape, batch) in MODELS.items():
        torch.manual_seed(0)
        model = build(name).eval()
        x, y = torch.rand(batch, *shape), torch.randint(0, 10, (batch,))
        plain = training_step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.0))
        cells = []
        for batched in (False, True):
            rounds = compare_steps(plain, ranking(model, x, batched), steps=args.steps, rounds=args.rounds)
            cells.append(" / ".join(f"{r['time_ratio']:.2f}×" for r in rounds))
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
