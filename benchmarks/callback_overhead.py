"""Overhead of ``RKHSRegularization`` when every penalty is disabled (weight 0): target ≤ 2% of a step.

Trains the paper's MNIST network (``rkhsreg.models.mnist_vgg5``, SGD momentum 0.9) on random 28×28
inputs with a Lightning Trainer, with and without the callback holding every registered penalty at
weight 0 (the wrapper, the input extraction, the schedule update and the per-step logging still
run). A step is timed from ``on_train_batch_start`` to ``on_train_batch_end`` (forward, penalties,
backward, optimiser step, constraint hooks) and the median over ``--steps`` steps is kept. Plain and
callback runs alternate, twice, in one process; each round prints the ratio callback / plain.

On a shared or loaded machine the ratio of two ~100 ms medians has ~±2% noise, so the script also
measures the callback's fixed cost per step directly: the same comparison on a 4→3 linear model with
batch 1 (a step of ~1 ms, mostly Lightning's own loop), over many steps. That difference in µs divided
by the MNIST step time is the overhead without the noise of the big model.

Usage::

    python benchmarks/callback_overhead.py [--threads 2] [--batch 64] [--steps 30]

or :func:`measure` from Python (``benchmarks/run_all.py`` does).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
import warnings
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rkhsreg
from rkhsreg.lightning import RKHSRegularization
from rkhsreg.lightning._compat import pl
from rkhsreg.models import mnist_vgg5

log = logging.getLogger("callback_overhead")


class _Net(pl.LightningModule):
    def __init__(self, tiny: bool = False, width: int = 64) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)) if tiny else mnist_vgg5(width=width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class _StepTimer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: D102
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self._start)


def _disabled_penalties() -> dict[str, rkhsreg.Penalty]:
    found = {}
    for name in rkhsreg.list_penalties():
        try:
            found[name] = rkhsreg.create_penalty(name, weight=0.0)
        except rkhsreg.RKHSRegError as exc:
            log.warning("penalty %s left out: %s", name, exc)
    return found


def _median_step(loader: DataLoader, steps: int, with_callback: bool, tiny: bool = False, width: int = 64) -> float:
    timer = _StepTimer(warmup=3)
    callbacks: list[pl.Callback] = [timer]
    if with_callback:
        callbacks.insert(0, RKHSRegularization(_disabled_penalties()))
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps + 3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(_Net(tiny, width), loader)
    return statistics.median(timer.times)


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")


def measure(*, batch: int = 64, steps: int = 20, tiny_steps: int = 300, rounds: int = 2, width: int = 64
            ) -> dict[str, Any]:
    """Plain vs callback Trainer steps, ``rounds`` times in this process.

    Args:
        batch: batch size of the MNIST-net runs.
        steps: timed steps per run (median); 3 more are run first and not timed.
        tiny_steps: timed steps of the tiny-model runs (the callback's fixed cost).
        rounds: how many times the whole comparison runs.
        width: first-conv width of the MNIST net (64: the paper's).

    Returns:
        ``{"settings": {...}, "penalties": [...], "rounds": [{"plain_ms", "callback_ms", "ratio",
        "tiny_plain_ms", "tiny_callback_ms", "fixed_us", "fixed_fraction_of_step"}, ...]}``.
    """
    _quiet()
    g = torch.Generator().manual_seed(0)
    n = batch * (steps + 3)
    data = TensorDataset(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    loader = DataLoader(data, batch_size=batch, shuffle=False)
    tiny_data = TensorDataset(torch.rand(tiny_steps + 3, 4, generator=g),
                              torch.randint(0, 3, (tiny_steps + 3,), generator=g))
    tiny_loader = DataLoader(tiny_data, batch_size=1, shuffle=False)
    out: dict[str, Any] = {"settings": {"batch": batch, "steps": steps, "tiny_steps": tiny_steps, "width": width},
                           "penalties": list(rkhsreg.list_penalties()), "rounds": []}
    for _ in range(rounds):
        plain = _median_step(loader, steps, with_callback=False, width=width)
        regularized = _median_step(loader, steps, with_callback=True, width=width)
        tiny_plain = _median_step(tiny_loader, tiny_steps, with_callback=False, tiny=True)
        tiny_cb = _median_step(tiny_loader, tiny_steps, with_callback=True, tiny=True)
        fixed = tiny_cb - tiny_plain
        out["rounds"].append({"plain_ms": plain * 1e3, "callback_ms": regularized * 1e3, "ratio": regularized / plain,
                              "tiny_plain_ms": tiny_plain * 1e3, "tiny_callback_ms": tiny_cb * 1e3,
                              "fixed_us": fixed * 1e6, "fixed_fraction_of_step": fixed / plain})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny-steps", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    log.info("machine: %s, %d cores visible, %d torch threads, torch %s, %s %s; batch %d, %d timed steps",
             platform.processor() or platform.machine(), os.cpu_count(), args.threads, torch.__version__,
             pl.__name__, pl.__version__, args.batch, args.steps)
    log.info("penalties held at weight 0: %s", ", ".join(rkhsreg.list_penalties()))
    result = measure(batch=args.batch, steps=args.steps, tiny_steps=args.tiny_steps)
    for round_, r in enumerate(result["rounds"], 1):
        log.info("round %d: MNIST net: plain %.1f ms, callback (all penalties off) %.1f ms, ratio %.4f "
                 "(overhead %+.2f%%)", round_, r["plain_ms"], r["callback_ms"], r["ratio"], 100 * (r["ratio"] - 1))
        log.info("round %d: fixed cost of the callback: %.0f µs per step (tiny model %.2f -> %.2f ms), i.e. "
                 "%.2f%% of the plain MNIST step", round_, r["fixed_us"], r["tiny_plain_ms"], r["tiny_callback_ms"],
                 100 * r["fixed_fraction_of_step"])


if __name__ == "__main__":
    main()
