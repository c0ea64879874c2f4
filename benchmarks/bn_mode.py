"""‖f‖²_δ with BatchNorm in eval mode (the library's default) or in train mode (the paper's code), on ResNet-18.

timm ``resnet18`` (10 classes, random init) at 32×32 on the CIFAR-10 JPEG copy, batch 64, ε = ``--epsilon``:

* **value**: the exhaustive search's ‖f‖²_δ on one batch, after ``--steps`` plain training steps, with
  ``eval_mode=True`` (BatchNorm normalises with its running statistics: every example's output depends on
  that example alone) and ``eval_mode=False`` (BatchNorm normalises with the statistics of the rows pushed
  through together; with ``candidates="all"`` and ``max_rows`` = the batch size every PGD batch is one class's
  n examples, as in the paper's code; running statistics are not updated by the search either way);
* **cost**: a training step with each penalty ÷ a plain step (default ``candidates="auto"`` between its checks
  in eval mode; the exhaustive search in train mode, the only search whose rows match the paper's there);
* **accuracy after a short training**: ``--steps`` SGD steps from the same init on the first 2,048 training
  images with cross-entropy only, + ‖f‖²_δ in eval mode, + ‖f‖²_δ in train mode; test accuracy on 1,000 test
  images. A short CPU training: differences of a few points are within seed noise.

Usage::

    python benchmarks/bn_mode.py [--data-dir DIR] [--steps 60] [--epsilon 0.5] [--threads 2] [--json F]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import compare_steps, machine_info, training_step, write_json  # noqa: E402
from rkhsreg import InputError  # noqa: E402
from rkhsreg.data.cifar10_files import load_cifar10_tensors  # noqa: E402
from rkhsreg.penalties.adversarial_perturbation import AdversarialPerturbation  # noqa: E402

BATCH = 64


def arms(epsilon: float) -> dict[str, AdversarialPerturbation | None]:
    return {"plain": None,
            "eval mode (default)": AdversarialPerturbation(epsilon=epsilon),
            "train mode (paper's code)": AdversarialPerturbation(epsilon=epsilon, eval_mode=False, candidates="all",
                                                                 max_rows=BATCH)}


def model() -> torch.nn.Module:
    import timm
    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False, num_classes=10)


def train(penalty: AdversarialPerturbation | None, x: torch.Tensor, y: torch.Tensor,
          steps: int) -> tuple[torch.nn.Module, int | None]:
    """The trained net and the step at which the loss stopped being finite (None: it never did)."""
    net = model().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, len(x), (BATCH,), generator=g)
        try:
            loss = F.cross_entropy(net(x[idx]), y[idx])
            if penalty is not None:
                loss = loss + penalty(net, x[idx], y[idx])
        except InputError:      # the penalty refuses a diverged model's non-finite outputs
            return net, step
        if not torch.isfinite(loss):
            return net, step
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epsilon", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RuntimeWarning)
    x, y = load_cifar10_tensors(args.data_dir, train=True, limit=2048)
    xt, yt = load_cifar10_tensors(args.data_dir, train=False, limit=1000)
    report: dict[str, Any] = {"settings": vars(args), "machine": machine_info(), "arms": {}}
    trained = {}
    for name, penalty in arms(args.epsilon).items():
        start = time.perf_counter()
        net, diverged = train(penalty, x, y, args.steps)
        net.eval()
        with torch.no_grad():
            acc = float((net(xt).argmax(1) == yt).double().mean())
        trained[name] = net
        report["arms"][name] = {"test_accuracy": acc, "diverged_at_step": diverged,
                                "train_seconds": time.perf_counter() - start}
        print(name, report["arms"][name], flush=True)
    probe = trained["plain"]
    xb, yb = x[:BATCH], y[:BATCH]
    for name, penalty in list(arms(args.epsilon).items())[1:]:
        exhaustive = AdversarialPerturbation(epsilon=args.epsilon, eval_mode=penalty.eval_mode, candidates="all",
                                             max_rows=BATCH)
        probe.train()
        with torch.no_grad():
            report["arms"][name]["value_exhaustive"] = float(exhaustive(probe, xb, yb))
        opt = torch.optim.SGD(probe.parameters(), lr=0.0)
        penalty(probe, xb, yb)   # the default's first calls are its calibrations: time it between checks
        penalty(probe, xb, yb)
        penalty(probe, xb, yb)
        rounds = compare_steps(training_step(probe, xb, yb, opt), training_step(probe, xb, yb, opt, penalty=penalty),
                               steps=1, rounds=args.rounds, warmup=0)
        report["arms"][name]["step_ratio"] = [r["time_ratio"] for r in rounds]
        print(name, report["arms"][name], flush=True)
    lines = ["| ‖f‖²_δ search | test acc. after training | ‖f‖²_δ (exhaustive, plain-trained net) | step ÷ plain |",
             "|---|---|---|---|"]
    for name, r in report["arms"].items():
        value = f"{r['value_exhaustive']:.4g}" if "value_exhaustive" in r else "–"
        ratio = " / ".join(f"{v:.2f}×" for v in r.get("step_ratio", [])) or "1×"
        acc = (f"diverged at step {r['diverged_at_step']}" if r["diverged_at_step"] is not None
               else f"{100 * r['test_accuracy']:.1f} %")
        lines.append(f"| {name} | {acc} | {value} | {ratio} |")
    report["table"] = "\n".join(lines)
    print(report["table"])
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
