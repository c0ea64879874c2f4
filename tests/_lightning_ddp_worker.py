"""One rank of the DDP tests: ``Trainer(strategy="ddp", devices=2, accelerator="cpu")`` on gloo.

Launched by ``tests/test_lightning_ddp.py`` as two processes with the torchrun/SLURM-style environment
(``LOCAL_RANK``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``), so Lightning joins
them instead of spawning its own and one process pair can run several ``fit`` calls. Each rank writes
``rank<r>.pt``: ``{case: state_dict or error string}``.

The same :func:`run_case` with ``devices=1`` and twice the batch is the single-process reference.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: make `tests` importable

import pytorch_lightning as pl  # noqa: E402
from tests._ddp import exit_worker  # noqa: E402
from tests._lightning_helpers import dataset, model, params, small_kwargs, trainer  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

import rkhsreg  # noqa: E402
from rkhsreg.lightning import LinearWarmup, RKHSRegularization  # noqa: E402

COMBINED = ("adversarial_perturbation", "adversarial_deformation", "gradient_norm")
#: Weights large enough that each penalty moves the tiny net's parameters by >> the 1e-5 tolerance.
WEIGHTS = {"adversarial_perturbation": 300.0, "adversarial_deformation": 300.0, "gradient_norm": 100.0,
           "tangent_propagation": 300.0, "loss_gradient": 300.0}
STEPS = 3


def case_names() -> list[str]:
    """Every registered penalty, then ``combined`` (δ + τ + ∇ together)."""
    return [*rkhsreg.list_penalties(), "combined"]


def _callback(case: str) -> RKHSRegularization:
    names = COMBINED if case.startswith("combined") else (case,)
    penalties = {name: {**small_kwargs(name), **({"weight": WEIGHTS[name]} if name in WEIGHTS else {})}
                 for name in names}
    projection = {"spectral_norm_projection": {"radius": 0.6}}
    return RKHSRegularization(penalties, projection, global_batch=case != "combined_local")


def _loader(n: int, batch_size: int, devices: int) -> DataLoader:
    """Dataset order, dealt round-robin to the ranks (Lightning's own sampler would shuffle)."""
    data = dataset(n)
    if devices == 1:
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    sampler = DistributedSampler(data, num_replicas=devices, rank=int(os.environ["LOCAL_RANK"]), shuffle=False)
    return DataLoader(data, batch_size=batch_size, sampler=sampler)


def run_case(case: str, *, devices: int, batch_size: int) -> dict[str, Any]:
    """Train ``STEPS`` steps on the first ``STEPS * 8`` examples with one penalty case + SN projection.

    ``combined_local`` is ``combined`` without ``global_batch``: the control showing the option matters.
    Returns the parameters and the callback's state (power-iteration vectors, generators).
    """
    strategy = "ddp" if devices > 1 else "auto"
    lit, callback = model("tiny", lr=0.1), _callback(case)
    trainer(strategy=strategy, devices=devices, max_steps=STEPS, use_distributed_sampler=False,
            callbacks=[callback]).fit(lit, _loader(8 * STEPS, batch_size, devices))
    return {"params": params(lit), "state": callback.state_dict()}


class _Values(pl.Callback):
    """Records each step's logged penalty values (``<prefix>/<label>/value``) on this rank, unreduced."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.steps.append({k: v.detach().clone() for k, v in trainer.callback_metrics.items() if k.endswith("/value")})


def run_batchnorm(*, devices: int, batch_size: int, shared: bool = True) -> dict[str, Any]:
    """δ + τ + ∇ with ``global_batch=True`` on a BatchNorm + Dropout net: each step's penalty values.

    The penalties run in eval mode after the training forward has updated each rank's BatchNorm running
    statistics with its own batch. ``shared=False`` is the control: the statistics are not shared across
    ranks (the averaging is switched off), so the values differ between ranks.
    """
    import contextlib

    import rkhsreg.training

    strategy = "ddp" if devices > 1 else "auto"
    lit, values = model("bn", lr=0.1), _Values()
    penalties = {name: {**small_kwargs(name), "weight": WEIGHTS[name]} for name in COMBINED}
    original = rkhsreg.training.shared_running_statistics
    if not shared:
        rkhsreg.training.shared_running_statistics = lambda net: contextlib.nullcontext()
    try:
        trainer(strategy=strategy, devices=devices, max_steps=STEPS, use_distributed_sampler=False,
                callbacks=[RKHSRegularization(penalties, global_batch=True), values]
                ).fit(lit, _loader(8 * STEPS, batch_size, devices))
    finally:
        rkhsreg.training.shared_running_statistics = original
    weights = {k: v for k, v in params(lit).items() if "running_" not in k and "num_batches" not in k}
    return {"values": values.steps, "weights": weights}


def _resume_callback(cls: type = RKHSRegularization) -> RKHSRegularization:
    penalties = {"spectral_norm": {"weight": 0.1}, "adversarial_deformation": small_kwargs("adversarial_deformation"),
                 "gradient_norm": {}}
    projection = {"spectral_norm_projection": {"radius": 0.6, "kappa": 1.0}}
    return cls(penalties, projection, global_batch=True, schedules={"gradient_norm": LinearWarmup(50.0, warmup=3)})


class _Forgetful(RKHSRegularization):
    """Control: ignores its checkpointed state, to show the resume test detects a lost state."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


def run_resume(out: Path, *, devices: int, batch_size: int) -> dict[str, dict[str, torch.Tensor]]:
    """Two epochs uninterrupted (checkpoint after the first) vs resumed from that checkpoint.

    Stateful on purpose: warm-started power iterations (``spectral_norm``), a random generator
    (``adversarial_deformation``), a weight warm-up and the projection's radius schedule (``kappa``).
    """
    strategy = "ddp" if devices > 1 else "auto"
    data = _loader(16, batch_size, devices)  # two steps per epoch
    ckpt_dir = out / "ckpt"
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="{epoch}", save_top_k=-1,
                                              save_on_train_epoch_end=True)
    full = model("tiny", lr=0.1)
    trainer(strategy=strategy, devices=devices, max_epochs=2, enable_checkpointing=True, use_distributed_sampler=False,
            callbacks=[_resume_callback(), checkpoint]).fit(full, data)
    results = {"resume_full": params(full)}
    for key, cls in (("resume_part", RKHSRegularization), ("resume_forgetful", _Forgetful)):
        resumed = model("tiny", seed=123, lr=0.1)  # different init: everything must come from the checkpoint
        trainer(strategy=strategy, devices=devices, max_epochs=2, use_distributed_sampler=False,
                callbacks=[_resume_callback(cls)]).fit(resumed, data, ckpt_path=str(ckpt_dir / "epoch=0.ckpt"))
        results[key] = params(resumed)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    for case in [*case_names(), "combined_local"]:
        try:
            results[case] = run_case(case, devices=2, batch_size=8 // 2)
        except rkhsreg.PluginValidationError as exc:  # a plugin not written yet / failing to import
            results[case] = f"{type(exc).__name__}: {exc}"
    results["batchnorm"] = run_batchnorm(devices=2, batch_size=8 // 2)
    results["batchnorm_unshared"] = run_batchnorm(devices=2, batch_size=8 // 2, shared=False)
    results.update(run_resume(args.out, devices=2, batch_size=8 // 2))
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.save(results, args.out / f"rank{rank}.pt")
    exit_worker()


if __name__ == "__main__":
    main()
