"""``rkhsreg evaluate``: load a model and a data split, run the robustness sweep, print and write the result.

Under ``torchrun`` the examples are sharded over the processes; rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from typing import Any

from rkhsreg.cli.errors import UserError
from rkhsreg.cli.output import check_out
from rkhsreg.cli.progress import Progress

__all__ = ["evaluate_command"]


def _distributed() -> tuple[int, int]:
    """Initialise the process group under torchrun; return (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def evaluate_command(args: argparse.Namespace) -> int:
    if args.checkpoint and args.weights:
        raise UserError("pass --checkpoint or --weights, not both")
    if args.model.startswith("timm:") and not (args.checkpoint or args.weights):
        raise UserError(f"--model {args.model} has random weights; pass --weights (a state-dict file)")
    for flag, path in (("--checkpoint", args.checkpoint), ("--weights", args.weights)):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{flag} {path!r}: no such file")
    if args.first_n is not None and args.indices is not None:
        raise UserError("pass --first-n or --indices, not both")
    if args.out:
        check_out(args)
    for folder in reversed([os.getcwd(), *args.import_path]):  # as 'python -m': the user's own package first
        if not os.path.isdir(folder):
            raise UserError(f"--import-path {folder!r}: no such folder")
        if folder not in sys.path:
            sys.path.insert(0, folder)
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    rank, world = _distributed()
    try:
        status = _evaluate_on(args, rank, world)
        if world > 1:  # every rank past its last collective before any tears gloo/NCCL down: a rank that
            import torch.distributed as dist  # destroys its group while another still talks to it can abort

            dist.barrier()
        return status
    finally:
        if world > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def _select(dataset: Any, args: argparse.Namespace) -> tuple[Any, list[int]]:
    """The examples to evaluate and their indices in the split (recorded in the output)."""
    import torch

    from rkhsreg.cli.datasets import subset

    if args.indices is not None:
        bad = [i for i in args.indices if i >= len(dataset)]
        if bad:
            raise UserError(f"--indices: {bad[0]} is out of range; the {args.split} split has {len(dataset)} "
                             f"examples (0 to {len(dataset) - 1})")
        return torch.utils.data.Subset(dataset, list(args.indices)), list(args.indices)
    if args.first_n is not None:
        indices = list(range(min(args.first_n, len(dataset))))
        return torch.utils.data.Subset(dataset, indices), indices
    data = subset(dataset, args.n_examples, seed=args.seed if args.subset_seed is None else args.subset_seed)
    indices = list(data.indices) if isinstance(data, torch.utils.data.Subset) else list(range(len(data)))
    return data, indices


def _evaluate_on(args: argparse.Namespace, rank: int, world: int) -> int:
    import torch

    from rkhsreg._checks import check_device
    from rkhsreg._errors import ConfigurationError, RKHSRegError
    from rkhsreg.cli.datasets import load_dataset
    from rkhsreg.cli.models import build_model, load_weights
    from rkhsreg.evaluation.sanity import RobustnessWarning
    from rkhsreg.evaluation.settings import AttackSettings
    from rkhsreg.evaluation.sweep import evaluate_robustness

    try:
        attack = AttackSettings(attacks=args.attacks, steps=args.steps, order=args.order,
                                borderline_restarts=args.borderline_restarts)
        dataset = load_dataset(args.data, args.data_dir, split=args.split)
        example = dataset[0][0]
        model = build_model(args.model, num_classes=args.num_classes or 10, in_chans=int(example.shape[0]),
                            kwargs=args.model_kwargs)
        if args.checkpoint or args.weights:
            load_weights(model, args.checkpoint or args.weights)
        if args.device is None:
            device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        else:
            try:
                device = check_device("--device", args.device)
            except ConfigurationError as err:
                raise UserError(str(err)) from None
        model.to(device)
        data, indices = _select(dataset, args)
        progress = Progress(enabled=not args.no_progress and rank == 0)
        try:
            with warnings.catch_warnings():
                # the table lists the sanity warnings; do not print them twice
                warnings.filterwarnings("ignore", category=RobustnessWarning)
                result = evaluate_robustness(
                    model, data, norm=args.norm, epsilons=args.epsilons, attack=attack, batch_size=args.batch_size,
                    device=device, bounds=args.bounds, seed=args.seed, sanity=not args.no_sanity,
                    certify=args.certify, progress=progress)
        finally:
            progress.close()
    except RKHSRegError as exc:
        raise UserError(str(exc)) from exc
    result.metadata.update({"model": args.model, "checkpoint": args.checkpoint or args.weights, "data": args.data,
                            "split": args.split, "indices": indices, "device": str(device), "world_size": world,
                            "command": shlex.join(["rkhsreg", *args.argv])})
    if rank == 0:
        print(result.table())
        if args.out:
            paths = result.save(args.out, plot=not args.no_plot)
            print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
