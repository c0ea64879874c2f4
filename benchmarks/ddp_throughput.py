"""Training throughput of ``RegularizedClassifier`` under Lightning DDP on CPU (gloo): examples per second.

Runs ``Trainer(strategy="ddp", accelerator="cpu", devices=N)`` for a fixed number of steps on random
28×28 images with the paper's MNIST network (``mnist_vgg5``, optionally narrower), with or without a
penalty, ``--batch`` examples per process and step (so N processes see N times as many examples per
step: the ideal ratio of 2 processes to 1 is 2 on two free cores). The clock runs on rank 0 from the
start of the first step after ``--warmup`` steps to the end of the last one (DDP synchronises every
step through the gradient all-reduce); rank 0 writes the JSON.

Lightning starts the other ranks by running this script again with the same arguments, so it must
be run as a script, not imported. ``benchmarks/run_all.py`` runs it with ``--devices 1`` and ``2``.

Usage::

    python benchmarks/ddp_throughput.py --devices 2 [--steps 20] [--batch 64] [--width 64]
        [--penalty gradient_norm] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import write_json  # noqa: E402
from rkhsreg.lightning import RegularizedClassifier  # noqa: E402
from rkhsreg.lightning._compat import pl  # noqa: E402
from rkhsreg.models import mnist_vgg5  # noqa: E402


class _Clock(pl.Callback):
    """Wall time from the start of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: D102
        self.end = time.perf_counter()


def run(devices: int, steps: int, batch: int, width: int, penalty: str, warmup: int) -> dict[str, Any]:
    """Train ``warmup + steps`` steps on ``devices`` CPU processes; returns rank 0's measurement."""
    total = devices * batch * (steps + warmup)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(total, 1, 28, 28, generator=g), torch.randint(0, 10, (total,), generator=g))
    loader = DataLoader(data, batch_size=batch, shuffle=False)
    torch.manual_seed(0)
    penalties = None if penalty == "none" else {penalty: {}}
    model = RegularizedClassifier(mnist_vgg5(width=width), num_classes=10, in_chans=1, lr=0.01, penalties=penalties)
    clock = _Clock(warmup)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp", max_steps=steps + warmup, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[clock])
    trainer.fit(model, loader)
    seconds = clock.end - clock.start
    return {"devices": devices, "world_size": trainer.world_size, "rank": trainer.global_rank,
            "per_process_batch": batch, "steps": steps, "warmup_steps": warmup, "width": width, "penalty": penalty,
            "seconds": seconds, "examples_per_second": devices * batch * steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="examples per process and step")
    parser.add_argument("--width", type=int, default=64, help="first-conv width of the MNIST net (paper: 64)")
    parser.add_argument("--penalty", default="none", help="a registered penalty name, or none")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    result = run(args.devices, args.steps, args.batch, args.width, args.penalty, args.warmup)
    if result["rank"] == 0:
        result["threads_per_process"] = args.threads
        if args.json:
            write_json(args.json, result)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
