"""Training-step cost of every plugin relative to a plain SGD step, on the paper's MNIST net and a timm ResNet-18.

For each configuration (a registered penalty or constraint with given arguments, weight decay, the
"(∗)" batch deformation, or the straightforward ‖f‖²_δ of :mod:`benchmarks._reference_delta`), the
shared helper :func:`benchmarks._timing.compare_steps` measures, ``rounds`` times in this process:
the median time ratio of a step with it to a plain step (SGD momentum 0.9, lr :data:`TIMED_LR` = 0: the
weights stay the ones measured, so no configuration can diverge while it is timed — a ‖f‖²_δ of ~20 on ResNet-18
at ε = 1 did at lr 0.01 —, and a step's arithmetic does not depend on lr; one fixed batch),
and the ratio of their peak memory above resident. The passes come from the plugin's ``last_passes``
(the straightforward ‖f‖²_δ counts its own). Before timing, the ‖f‖²_δ and ‖f‖²_τ rows record the
value they find on the same model and batch (δ rows: divided by the straightforward algorithm's).

Every configuration starts from the same weights — the network after ``warmup_steps`` plain steps at
lr 0.01 on real images (MNIST; the CIFAR-10 JPEG copy) when they are on disk, so its gradients are
not those of a random initialisation — with fresh optimisers. lr 0.01 rather than the paper's 0.05:
the cost does not depend on it, and the un-normalised networks sometimes diverge at 0.05 from scratch.

Usage::

    python benchmarks/step_cost.py [--models mnist_vgg5,resnet18] [--only SUBSTRING] [--steps 3] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rkhsreg  # noqa: E402
from benchmarks._reference_delta import reference_delta_penalty  # noqa: E402
from benchmarks._timing import MemoryProbe, compare_steps, training_step  # noqa: E402

__all__ = ["Config", "CONFIGS", "ModelSpec", "MODELS", "measure_model", "format_rows"]


@dataclass(frozen=True)
class Config:
    """One row: ``kind`` is "penalty", "constraint", "weight_decay", "augment", "plain" or "reference"."""

    label: str
    kind: str
    plugin: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: other arguments of the same plugin whose values are computed on the same model, batch and generator state
    compare: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the models on which it belongs to the ``--quick`` subset (a pipeline check in seconds)
    quick: tuple[str, ...] = ()


#: the row of the default ‖f‖²_δ search (``candidates="auto"`` within ``budget``): measured between two of its checks,
#: the checks amortised in by the exhaustive row (one check every ``check_every`` calls)
DELTA_DEFAULT = "‖f‖²_δ per class (default search, within its budget)"
DELTA_EXHAUSTIVE = "‖f‖²_δ per class, exhaustive (candidates='all')"

#: the learning rate of the timed steps (0: every configuration is timed on the weights it starts from)
TIMED_LR = 0.0

CONFIGS: list[Config] = [
    Config("plain (noise floor: plain vs plain)", "plain", quick=("mnist_vgg5", "resnet18")),
    Config("weight decay 5e-4", "weight_decay"),
    Config(DELTA_DEFAULT, "penalty", "adversarial_perturbation", {"epsilon": 1.0}, quick=("mnist_vgg5",)),
    Config(DELTA_EXHAUSTIVE, "penalty", "adversarial_perturbation",
           {"epsilon": 1.0, "candidates": "all"}),
    Config("‖f‖²_δ joint", "penalty", "adversarial_perturbation", {"epsilon": 1.0, "mode": "joint"}),
    Config("‖f‖²_δ straightforward: one PGD per class and example", "reference", quick=("mnist_vgg5",)),
    Config("‖∇f‖² per class", "penalty", "gradient_norm", {}),
    Config("grad-ℓ2", "penalty", "loss_gradient", {}, quick=("resnet18",)),
    Config("PGD-ℓ2 adversarial training (5 steps)", "penalty", "adversarial_training", {"epsilon": 1.0}),
    Config("‖f‖²_τ random deformations (paper: 32 × 31)", "penalty", "adversarial_deformation", {}),
    Config("‖f‖²_τ adversarial deformations", "penalty", "adversarial_deformation", {"search": "adversarial"},
           compare={"random search": {}}),
    Config("‖D_τ f‖² (32 × 30 tangents)", "penalty", "tangent_propagation", {}),
    Config("SN penalty (2 power iterations)", "penalty", "spectral_norm", {}),
    Config("SN penalty, exact SVD", "penalty", "spectral_norm", {"exact": True}),
    Config("SN projection, reshaped σ, scale (default)", "constraint", "spectral_norm_projection", {"radius": 0.5},
           quick=("mnist_vgg5", "resnet18")),
    Config("SN projection, reshaped σ, clip (paper)", "constraint", "spectral_norm_projection",
           {"radius": 0.5, "projection": "clip"}),
    Config("SN projection, conv operator norm", "constraint", "spectral_norm_projection",
           {"radius": 0.5, "method": "operator"}),
    Config("(∗) RandomDeformation of the batch", "augment"),
]


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark network: its factory, one example's shape and where its data come from."""

    name: str
    description: str
    input_shape: tuple[int, int, int]
    batch: int
    quick_batch: int
    warmup_steps: int


MODELS: dict[str, ModelSpec] = {
    "mnist_vgg5": ModelSpec("mnist_vgg5", "the paper's MNIST network (rkhsreg.models.mnist_vgg5), real MNIST digits",
                            (1, 28, 28), batch=128, quick_batch=8, warmup_steps=100),
    "resnet18": ModelSpec("resnet18", "timm resnet18 (num_classes=10, no pretrained weights), 32×32 CIFAR-size "
                          "inputs", (3, 32, 32), batch=128, quick_batch=2, warmup_steps=30),
}


def _build(name: str, quick: bool) -> torch.nn.Module:
    if name == "mnist_vgg5":
        from rkhsreg.models import mnist_vgg5
        return mnist_vgg5(width=4 if quick else 64)
    import timm
    return timm.create_model("resnet18", pretrained=False, num_classes=10)


def _data(spec: ModelSpec, data_dir: str | None, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` real training images when they are on disk (MNIST / the CIFAR-10 JPEG copy), else random ones."""
    try:
        if spec.name == "mnist_vgg5":
            from rkhsreg.data import load_mnist
            x, y = load_mnist(data_dir, train=True, download=False)
            return x[:n], y[:n], "MNIST training images"
        from rkhsreg.data.cifar10_files import load_cifar10_tensors
        x, y = load_cifar10_tensors(data_dir, train=True, limit=n)
        return x, y, "CIFAR-10 training images (JPEG copy)"
    except Exception as exc:  # noqa: BLE001 - no data here: timings barely depend on the pixels
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n, *spec.input_shape, generator=g), torch.randint(0, 10, (n,), generator=g),
                f"random images ({type(exc).__name__}: real data not found)")


def _plugin(config: Config, spec: ModelSpec) -> tuple[Any, Any]:
    if config.kind == "penalty":
        return rkhsreg.create_penalty(config.plugin, **config.kwargs), None
    if config.kind == "constraint":
        kwargs = dict(config.kwargs)
        if kwargs.get("method") == "operator":
            kwargs["input_shape"] = spec.input_shape
        return None, rkhsreg.create_constraint(config.plugin, **kwargs)
    return None, None


def _values(config: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
            penalty: Any) -> dict[str, Any]:
    """Values found on the warm model: the straightforward ‖f‖²_δ, each ‖f‖²_δ / ‖f‖²_τ row and its ``compare``."""
    if config.kind == "reference":
        value, _ = reference_delta_penalty(model, x, epsilon=1.0)
        return {"value": float(value.detach())}
    if config.plugin not in ("adversarial_perturbation", "adversarial_deformation"):
        return {}
    if config.label == DELTA_DEFAULT:   # its first call is a check (the exhaustive search): measure the plan after it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            penalty.estimate(model, x, y)
    state = penalty.state_dict()  # random searches draw from the same generator state
    out: dict[str, Any] = {"value": float(penalty.estimate(model, x, y).detach())}
    if config.label == DELTA_DEFAULT:
        search = penalty.last_search
        out.update(plan=list(search["plan"]) if isinstance(search["plan"], tuple) else search["plan"],
                   budget=penalty.budget, check_every=penalty.check_every, **penalty.diagnostics())
    penalty.load_state_dict(state)
    for name, kwargs in config.compare.items():
        other = rkhsreg.create_penalty(config.plugin, **kwargs)
        other.load_state_dict(state)
        out.setdefault("compare", {})[name] = float(other.estimate(model, x, y).detach())
    return out


class _TimedConstraint:
    """A constraint that records the wall time of each of its calls."""

    def __init__(self, constraint: Any) -> None:
        self.constraint, self.seconds = constraint, []

    def __call__(self, model: torch.nn.Module) -> None:
        start = time.perf_counter()
        self.constraint(model)
        self.seconds.append(time.perf_counter() - start)


def measure_config(config: Config, spec: ModelSpec, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                   steps: int, rounds: int, memory: MemoryProbe) -> dict[str, Any]:
    """Measure one configuration on ``model`` (restored by the caller). Returns its JSON row."""
    lr = TIMED_LR
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    plain = training_step(model, x, y, opt)
    penalty, constraint = _plugin(config, spec)
    row: dict[str, Any] = {"label": config.label, "kind": config.kind, "plugin": config.plugin,
                           "kwargs": {k: v for k, v in config.kwargs.items()}}
    row.update(_values(config, model, x, y, penalty))
    counted: dict[str, float] = {}
    if config.kind == "plain":
        other = training_step(model, x, y, opt)
    elif config.kind == "weight_decay":
        other = training_step(model, x, y, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                                                           weight_decay=5e-4))
    elif config.kind == "augment":
        from rkhsreg.transforms import RandomDeformation
        other = training_step(model, x, y, opt, augment=RandomDeformation(seed=0))
    elif config.kind == "reference":
        def loss(m: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            value, counter = reference_delta_penalty(m, inputs, epsilon=1.0)
            counted.update(forward=counter.forward_passes, backward=counter.backward_passes)
            return F.cross_entropy(m(inputs), targets) + value
        other = training_step(model, x, y, opt, loss_fn=loss)
    else:
        timed = None if constraint is None else _TimedConstraint(constraint)
        other = training_step(model, x, y, opt, penalty=penalty, constraint=timed)
    row["rounds"] = compare_steps(plain, other, steps=steps, rounds=rounds, memory=memory)
    if constraint is not None:  # the projection's own time, added to a plain step
        alone = statistics.median(timed.seconds)
        row["constraint_seconds"] = alone
        row["constraint_alone_ratio"] = [(r["plain_seconds"] + alone) / r["plain_seconds"] for r in row["rounds"]]
    if penalty is not None:
        row["passes"] = {"forward": penalty.last_passes.forward, "backward": penalty.last_passes.backward}
    elif config.kind == "reference":
        row["passes"] = counted
    elif config.kind in ("constraint", "weight_decay", "plain", "augment"):
        row["passes"] = {"forward": 0.0, "backward": 0.0}
    return row


def measure_model(name: str, *, quick: bool = False, steps: int = 3, rounds: int = 2, only: str = "",
                  data_dir: str | None = None, device: str = "cpu", configs: Sequence[Config] = CONFIGS,
                  log: Any = print) -> dict[str, Any]:
    """Every configuration on one model; returns ``{"model", "description", "batch", "data", "rows"}``."""
    spec = MODELS[name]
    batch = spec.quick_batch if quick else spec.batch
    torch.manual_seed(0)
    model = _build(name, quick).to(device)
    x_all, y_all, source = _data(spec, data_dir, 4 * batch if quick else 2048)
    x_all, y_all = x_all.to(device), y_all.to(device)
    warm = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(2 if quick else spec.warmup_steps):
        idx = torch.randint(0, len(x_all), (batch,), generator=g).to(device)
        warm.zero_grad()
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        loss.backward()
        warm.step()
    if not torch.isfinite(loss):
        raise RuntimeError(f"{name}: warm-up training diverged (loss {loss.item()}); refusing to measure")
    state = copy.deepcopy(model.state_dict())
    x, y = x_all[:batch], y_all[:batch]
    memory = MemoryProbe(device)
    out: dict[str, Any] = {"model": name, "description": spec.description, "batch": batch, "data": source,
                           "timed_lr": TIMED_LR,
                           "input_shape": list(spec.input_shape), "memory_method": memory.method, "rows": []}
    for config in configs:
        if (only and only not in config.label) or (quick and name not in config.quick and configs is CONFIGS):
            continue
        model.load_state_dict(state)
        model.train()
        gc.collect()
        try:
            row = measure_config(config, spec, model, x, y, steps=steps, rounds=rounds, memory=memory)
        except Exception as exc:  # noqa: BLE001 - one failing plugin must not lose the other rows
            row = {"label": config.label, "kind": config.kind, "plugin": config.plugin,
                   "error": f"{type(exc).__name__}: {exc}"}
        out["rows"].append(row)
        log(format_rows([row], header=False))
    rows = {r["label"]: r for r in out["rows"] if "error" not in r}
    if DELTA_DEFAULT in rows and DELTA_EXHAUSTIVE in rows:   # the default's checks, amortised
        default, exhaustive = rows[DELTA_DEFAULT], rows[DELTA_EXHAUSTIVE]
        every = default["check_every"]
        default["amortised_ratio"] = [((every - 1) * d["time_ratio"] + e["time_ratio"]) / every
                                      for d, e in zip(default["rounds"], exhaustive["rounds"])]
    reference = next((r.get("value") for r in out["rows"] if r["kind"] == "reference"), None)
    if reference is not None:
        for r in out["rows"]:
            per_class = r.get("kwargs", {}).get("mode", "per_class") == "per_class"
            if r.get("plugin") == "adversarial_perturbation" and per_class and "value" in r:
                r["value_vs_reference"] = r["value"] / reference if reference else None
    return out


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "×") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def format_rows(rows: Sequence[dict[str, Any]], header: bool = True) -> str:
    """A Markdown table of measured rows (time and memory ratios of both rounds, passes, value)."""
    lines = []
    if header:
        lines += ["| configuration | time ×plain (round 1 / 2) | peak memory ×plain (round 1 / 2) | "
                  "forward / backward passes | value found (÷ straightforward); notes |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {r['error']} | | | |")
            continue
        t = " / ".join(_fmt(x["time_ratio"]) for x in r["rounds"])
        m = " / ".join(_fmt(x["memory_ratio"]) for x in r["rounds"])
        p = r.get("passes")
        passes = "–" if not p else f"{p['forward']:.2f} / {p['backward']:.2f}"
        value = "" if "value" not in r else f"{r['value']:.4g}"
        if r.get("value_vs_reference") is not None:
            value += f" ({r['value_vs_reference']:.3f})"
        value += "".join(f"; {name}: {v:.4g}" for name, v in r.get("compare", {}).items())
        if "plan" in r:
            value += (f"; plan {tuple(r['plan']) if isinstance(r['plan'], list) else r['plan']} within "
                      f"{r['budget']:g} passes, value ratio {r['value_ratio']:.3f}")
        if "amortised_ratio" in r:
            value += "; with its checks: " + " / ".join(f"{v:.2f}×" for v in r["amortised_ratio"])
        if "constraint_alone_ratio" in r:
            value += "projection alone: " + " / ".join(f"{v:.3f}×" for v in r["constraint_alone_ratio"])
        lines.append(f"| {r['label']} | {t} | {m} | {passes} | {value} |")
    return "\n".join(lines)


def config_main(description: str, configs: Sequence[Config], argv: Sequence[str] | None = None) -> None:
    """Command line of the one-model scripts (penalty_cost.py, deformation_cost.py): ``configs`` on mnist_vgg5."""
    from benchmarks._timing import machine_info, write_json

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed step pairs per round (median)")
    parser.add_argument("--only", default="", help="substring filter on the configuration labels")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# {machine_info()}")
    print(format_rows([]))
    result = measure_model("mnist_vgg5", steps=args.steps, only=args.only, data_dir=args.data_dir,
                           configs=list(configs))
    if args.json:
        write_json(args.json, result)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mnist_vgg5,resnet18")
    parser.add_argument("--only", default="", help="substring filter on the configuration labels")
    parser.add_argument("--steps", type=int, default=3, help="timed step pairs per round (median)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a pipeline check, not a measurement)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        print(f"## {name}")
        print(format_rows([], header=True))
        measure_model(name, quick=args.quick, steps=args.steps, only=args.only, data_dir=args.data_dir,
                      device=args.device)


if __name__ == "__main__":
    main()
