"""The one command to run whenever a GPU is at hand: what every penalty costs there, in each precision, and checks.

On one CUDA device (``--device cuda``, the default when one is visible), in about 8 minutes on an H100:

1. **step cost**: every registered penalty's training step on a timm ResNet-18 (10 classes, 32×32, batch 128)
   ÷ a plain step, in float32, bf16-mixed (``torch.autocast(dtype=bfloat16)``) and fp16-mixed
   (``torch.autocast(dtype=float16)`` with ``torch.amp.GradScaler``), two rounds of interleaved pairs
   (:func:`benchmarks._timing.compare_steps`); the penalty's value is checked finite in each precision;
2. **input gradients under fp16 autocast**: the K input gradients ∇_x f_k(x_i) the per-class searches rank by,
   computed as the library computes them (:func:`rkhsreg.functional.gradients.output_gradients`) under fp16
   autocast and in float32: the fraction of entries that underflow to zero where float32's are not, whether
   any is non-finite, and the relative error of the per-(example, class) norms the ranking uses;
3. **the K input-gradient passes**: a loop of K input-only backward passes through one retained graph (what the
   library does) against one batched call (``torch.autograd.grad(..., is_grads_batched=True)``), time of each;
4. **the ε-sweep against the official AutoAttack** (when ``pyautoattack`` is installed): a ResNet-18 trained for
   ``--train-steps`` steps on CIFAR-10, ``evaluate_robustness`` over ``--epsilons`` on ``--n-examples`` test
   images against AutoAttack (standard, ℓ2) run alone at each ε: robust accuracy and seconds.

It writes one JSON (``--json``). ``--quick`` runs every part at tiny sizes on any device (a pipeline check that
measures nothing; ``tests/test_benchmarks.py`` runs it on the CPU, fp16 autocast included).

Usage::

    python benchmarks/gpu_check.py [--device cuda] [--data-dir DIR] [--json gpu_check.json] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rkhsreg  # noqa: E402
from benchmarks._timing import compare_steps, machine_info, write_json  # noqa: E402
from rkhsreg.functional.gradients import output_gradients  # noqa: E402

PRECISIONS = ("float32", "bf16-mixed", "fp16-mixed")


def _model(quick: bool, device: str) -> torch.nn.Module:
    if quick:   # a tiny CNN of the same input and output shapes
        from torch import nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                             nn.Flatten(), nn.Linear(16, 10)).to(device)
    import timm
    return timm.create_model("resnet18", pretrained=False, num_classes=10).to(device)


def _data(data_dir: str | None, n: int, train: bool, device: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        from rkhsreg.data.cifar10_files import load_cifar10_tensors
        x, y = load_cifar10_tensors(data_dir, train=train, limit=n)
        source = "CIFAR-10 (JPEG copy)"
    except Exception as exc:  # noqa: BLE001 - no CIFAR-10 here: costs barely depend on the pixels
        g = torch.Generator().manual_seed(0 if train else 1)
        x, y = torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
        source = f"random images ({type(exc).__name__}: CIFAR-10 not found)"
    return x.to(device), y.to(device), source


def _autocast(precision: str, device: str):
    if precision == "float32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str, penalty: Any,
          values: list[float]) -> Callable[[], None]:
    """One SGD step in ``precision`` (fp16: loss scaled by a GradScaler), the penalty added inside autocast."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)   # lr 0: every configuration measures the same weights
    scaler = torch.amp.GradScaler(torch.device(x.device).type) if precision == "fp16-mixed" else None
    cuda = x.device.type == "cuda"

    def step() -> None:
        with _autocast(precision, str(x.device)):
            loss = F.cross_entropy(model(x), y)
            if penalty is not None:
                value = penalty(model, x, y)
                values.append(float(value.detach()))
                loss = value if penalty.replaces_loss else loss + value
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if cuda:
            torch.cuda.synchronize(x.device)
    return step


#: ``--quick`` runs these penalties in the mixed precisions (and every penalty in float32)
QUICK_MIXED = ("adversarial_perturbation", "gradient_norm")


def step_costs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rounds: int, steps: int,
               log: Callable[[str], None], quick: bool = False) -> list[dict[str, Any]]:
    rows = []
    for precision in PRECISIONS:
        for name in rkhsreg.list_penalties():
            if quick and precision != "float32" and name not in QUICK_MIXED:
                continue
            penalty = rkhsreg.create_penalty(name)
            values: list[float] = []
            row: dict[str, Any] = {"penalty": name, "precision": precision}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    measured = compare_steps(_step(model, x, y, precision, None, []),
                                             _step(model, x, y, precision, penalty, values), steps=steps,
                                             rounds=rounds)
                row.update(time_ratio=[r["time_ratio"] for r in measured],
                           plain_seconds=[r["plain_seconds"] for r in measured],
                           passes={"forward": penalty.last_passes.forward, "backward": penalty.last_passes.backward},
                           values_finite=all(math.isfinite(v) for v in values), **penalty.diagnostics())
            except Exception as exc:  # noqa: BLE001 - one failing penalty or precision must not lose the rest
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            log(f"step cost {precision} {name}: {row.get('time_ratio', row.get('error'))}")
    return rows


def fp16_input_gradients(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """∇_x f_k(x_i) for every class k under fp16 autocast against float32, as the per-class rankings compute them."""
    model.eval()
    _, _, exact = output_gradients(model, x)
    with _autocast("fp16-mixed", str(x.device)):
        _, _, half = output_gradients(model, x)
    exact, half = exact.float(), half.float()
    nonzero = exact != 0
    norms, norms_half = exact.flatten(2).norm(dim=2), half.flatten(2).norm(dim=2)
    model.train()
    return {"finite": bool(torch.isfinite(half).all()),
            "underflow_fraction": float(((half == 0) & nonzero).sum() / nonzero.sum().clamp(min=1)),
            "norm_relative_error_max": float(((norms_half - norms).abs() / norms.clamp(min=1e-30)).max()),
            "smallest_nonzero_float32": float(exact.abs()[nonzero].min()) if bool(nonzero.any()) else None,
            "ranking_agrees": bool(torch.equal(norms.argmax(0), norms_half.argmax(0)))}


def batched_gradients(model: torch.nn.Module, x: torch.Tensor, rounds: int) -> dict[str, Any]:
    """The K input-gradient passes: a loop through one retained graph (the library) vs one ``is_grads_batched`` call."""
    model.eval()
    cuda = x.device.type == "cuda"

    def loop() -> torch.Tensor:
        return output_gradients(model, x)[2]

    def batched() -> torch.Tensor:
        z = x.detach().clone().requires_grad_(True)
        out = model(z)
        k = out.shape[1]
        eye = torch.eye(k, device=x.device, dtype=out.dtype)[:, None, :].expand(k, x.shape[0], k)
        (g,) = torch.autograd.grad(out, z, grad_outputs=eye, is_grads_batched=True)
        return g.transpose(0, 1)

    def seconds(fn: Callable[[], torch.Tensor]) -> float:
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - start

    out: dict[str, Any] = {}
    try:
        torch.testing.assert_close(loop(), batched(), rtol=1e-3, atol=1e-5)
        out["same_gradients"] = True
        out["rounds"] = [{"loop_seconds": min(seconds(loop) for _ in range(3)),
                          "batched_seconds": min(seconds(batched) for _ in range(3))} for _ in range(rounds)]
    except Exception as exc:  # noqa: BLE001 - vmap cannot run every model (BatchNorm buffers, in-place ops)
        out["error"] = f"{type(exc).__name__}: {exc}"
    model.train()
    return out


def autoattack_sweep(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: list[float],
                     device: str) -> dict[str, Any]:
    """Robust accuracy and seconds: ``evaluate_robustness`` over ``epsilons`` vs the official AutoAttack at each ε."""
    from rkhsreg.evaluation import evaluate_robustness
    try:
        import pyautoattack  # noqa: F401
    except ImportError:
        return {"skipped": "pyautoattack is not installed (pip install pyautoattack)"}
    from benchmarks.autoattack_seeds import autoattack_accuracy
    model.eval()
    start = time.perf_counter()
    result = evaluate_robustness(model, (x, y), epsilons=epsilons, sanity=False, device=device)
    ours = {"robust": result.robust_accuracy, "seconds": time.perf_counter() - start}
    theirs = []
    for eps in epsilons:
        start = time.perf_counter()
        theirs.append({"epsilon": eps, "robust": autoattack_accuracy(model, x, y, eps, seed=0, device=device),
                       "seconds": time.perf_counter() - start})
    return {"epsilons": epsilons, "rkhsreg": ours, "autoattack": theirs,
            "rkhsreg_at_most_autoattack": all(o <= t["robust"] + 1e-12 for o, t in zip(ours["robust"], theirs))}


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g).to(x.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def run(device: str, *, quick: bool = False, data_dir: str | None = None, epsilons: list[float] | None = None,
        n_examples: int = 500, train_steps: int = 400, rounds: int = 2, log: Callable[[str], None] = print
        ) -> dict[str, Any]:
    batch = 4 if quick else 128
    torch.manual_seed(0)
    model = _model(quick, device)
    x, y, source = _data(data_dir, batch, True, device)
    report: dict[str, Any] = {"device": device, "quick": quick, "batch": batch, "data": source,
                              "model": "a 4-channel CNN" if quick else "timm resnet18",
                              "machine": machine_info(device)}
    start = time.perf_counter()
    report["step_cost"] = step_costs(model, x, y, rounds=1 if quick else rounds, steps=1 if quick else 3, log=log,
                                     quick=quick)
    report["fp16_input_gradients"] = fp16_input_gradients(model, x)
    log(f"fp16 input gradients: {report['fp16_input_gradients']}")
    report["k_gradient_passes"] = batched_gradients(model, x, rounds=1 if quick else rounds)
    log(f"K input-gradient passes: {report['k_gradient_passes']}")
    xt, yt, _ = _data(data_dir, 8 if quick else n_examples, False, device)
    xtrain, ytrain, _ = _data(data_dir, 16 if quick else 10_000, True, device)
    report["train_loss"] = _train(model, xtrain, ytrain, 2 if quick else train_steps, batch)
    report["autoattack"] = autoattack_sweep(model, xt, yt, epsilons or [0.25, 0.5, 1.0], device)
    log(f"AutoAttack: {report['autoattack']}")
    report["seconds"] = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epsilons", default="0.25,0.5,1.0")
    parser.add_argument("--n-examples", type=int, default=500)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes on any device: checks the script runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    for option in ("n_examples", "train_steps", "rounds"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')}={getattr(args, option)} is out of range; pass an int >= 1")
    try:
        epsilons = [float(e) for e in args.epsilons.split(",")]
    except ValueError:
        parser.error(f"--epsilons={args.epsilons!r}: pass comma-separated numbers such as 0.25,0.5,1.0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device={args.device}: no CUDA device is visible here; pass --device cpu (with --quick)")
    report = run(args.device, quick=args.quick, data_dir=args.data_dir, epsilons=epsilons,
                 n_examples=args.n_examples, train_steps=args.train_steps, rounds=args.rounds,
                 log=lambda line: print(line, flush=True))
    print(f"({report['seconds']:.0f} s)")
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
