"""Quick start (the `make demo` job): ‖f‖²_τ + ‖f‖²_δ + SN projection vs weight decay on 300 MNIST digits.

Plain PyTorch on purpose: it shows the library used from any training loop, one call per step.
Trains the paper's MNIST network twice on the same 300 examples (the first 300 of a
RandomState(42) permutation of the training set, as in the paper), then reports clean test accuracy
and an ℓ2 robust accuracy curve under torchattacks' PGD-ℓ2 (50 steps). Runs on 2 CPU cores in a few
minutes; the full table is the recipe in ``recipes/mnist_small_data``.

Usage::

    python recipes/quickstart.py --data-dir ../shared/data --out results/demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import rkhsreg
from rkhsreg.models import mnist_vgg5


def load_mnist(root: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST as float tensors in [0, 1]; downloads only when the files are missing and a network is there."""
    from torchvision.datasets import MNIST

    def get(train: bool):
        try:
            ds = MNIST(root, train=train, download=False)
        except RuntimeError:
            ds = MNIST(root, train=train, download=True)
        return ds.data.float().div(255).unsqueeze(1), ds.targets
    return (*get(True), *get(False))


def train(model, x, y, *, penalties, constraints, epochs, weight_decay, lr=0.05, batch=128, seed=0, label=""):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.5)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            xb, yb = x[order[i:i + batch]], y[order[i:i + batch]]
            loss = F.cross_entropy(model(xb), yb)
            extra = sum((p(model, xb, yb) for p in penalties), torch.zeros(()))
            opt.zero_grad()
            (loss + extra).backward()
            opt.step()
            for c in constraints:
                c(model)
        sched.step()
        if (epoch + 1) % 5 == 0 or epoch == epochs - 1:
            print(f"  [{label}] epoch {epoch + 1:3d}/{epochs}  loss {loss.item():.4f}  penalties {float(extra):.4f}"
                  f"  {time.perf_counter() - start:6.1f}s", flush=True)
    return time.perf_counter() - start


@torch.no_grad()
def accuracy(model, x, y, batch=1000):
    model.eval()
    return sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(x), batch)) / len(x)


def robust_accuracy(model, x, y, epsilons):
    import torchattacks
    model.eval()
    out = {}
    for eps in epsilons:
        attack = torchattacks.PGDL2(model, eps=eps, alpha=2.5 * eps / 50, steps=50, random_start=False)
        adv = attack(x, y)
        out[eps] = accuracy(model, adv, y)
    return out


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA", "data"))
    parser.add_argument("--out", default="results/demo")
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-robust", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    xtr, ytr, xte, yte = load_mnist(args.data_dir)
    idx = torch.from_numpy(np.random.RandomState(42).permutation(len(xtr))[:args.n_train])
    x, y = xtr[idx], ytr[idx]
    xte, yte = xte[:args.n_test], yte[:args.n_test]
    print(f"MNIST: {len(x)} training examples, {len(xte)} test examples, {args.epochs} epochs", flush=True)

    runs = {
        "weight decay": dict(penalties=[], constraints=[], weight_decay=5e-4),
        "‖f‖²_τ + ‖f‖²_δ + SN proj": dict(
            penalties=[rkhsreg.create_penalty("adversarial_deformation", weight=0.1),
                       rkhsreg.create_penalty("adversarial_perturbation", epsilon=1.0)],
            constraints=[rkhsreg.create_constraint("spectral_norm_projection", radius=2.0)], weight_decay=0.0),
    }
    results = {}
    for label, cfg in runs.items():
        torch.manual_seed(0)
        model = mnist_vgg5()
        seconds = train(model, x, y, epochs=args.epochs, label=label, **cfg)
        clean = accuracy(model, xte, yte)
        robust = robust_accuracy(model, xte[:args.n_robust], yte[:args.n_robust], [0.5, 1.0, 1.5])
        results[label] = {"clean_acc": clean, "robust_acc_l2": robust, "train_seconds": round(seconds, 1)}
        print(f"  [{label}] test accuracy {100 * clean:.2f}%  robust (ℓ2) "
              + "  ".join(f"ε={e}: {100 * a:.1f}%" for e, a in robust.items()), flush=True)

    lines = ["| method | test acc. | ℓ2 ε=0.5 | ε=1.0 | ε=1.5 | train time |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        rob = r["robust_acc_l2"]
        lines.append(f"| {label} | {100 * r['clean_acc']:.2f}% | {100 * rob[0.5]:.1f}% | {100 * rob[1.0]:.1f}% "
                     f"| {100 * rob[1.5]:.1f}% | {r['train_seconds']}s |")
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out)
    write_atomic(out / "results.json", json.dumps({"n_train": len(x), "n_test": len(xte), "epochs": args.epochs,
                                                    "results": results}, indent=2, ensure_ascii=False))
    write_atomic(out / "results.md", table + "\n")
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
