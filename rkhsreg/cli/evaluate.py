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

__all__ = ["evaluate_command", "DEFAULT_N_EXAMPLES"]

#: Examples drawn from the split when none of --n-examples, --first-n and --indices is given.
DEFAULT_N_EXAMPLES = 1000


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


def _check_options(args: argparse.Namespace) -> None:
    """Every option checked on its own and against the others, before anything is loaded."""
    if args.checkpoint and args.weights:
        raise UserError("pass --checkpoint or --weights, not both")
    weights = args.checkpoint or args.weights
    if weights and args.random_init:
        raise UserError(f"--random-init and {'--checkpoint' if args.checkpoint else '--weights'} contradict each "
                        "other; drop --random-init to evaluate the file's weights")
    if not weights and not args.random_init:
        raise UserError(f"--model {args.model} needs its trained tensors: pass --weights (a state-dict file) or "
                        "--checkpoint (a Lightning checkpoint); --random-init evaluates the weights the factory "
                        "gives (random unless it sets them)")
    if not weights and (args.non_strict or args.prefix is not None):
        raise UserError(f"{'--non-strict' if args.non_strict else '--prefix'} applies to a weights file; pass "
                        "--weights or --checkpoint, or drop it")
    if args.num_classes is not None and not args.model.startswith("timm:"):
        raise UserError(f"--num-classes {args.num_classes} has no effect on --model {args.model} (only timm: models "
                        "take it); pass the factory's own argument in --model-kwargs, e.g. "
                        "'{\"num_classes\": 10}'")
    chosen = "--first-n" if args.first_n is not None else "--indices" if args.indices is not None else None
    if args.subset_seed is not None and chosen:   # select_indices' seed applies only to a drawn subset
        raise UserError(f"--subset-seed {args.subset_seed} has no effect with {chosen} (it seeds the subset "
                        f"--n-examples draws); drop --subset-seed, or pass --n-examples instead of {chosen}")
    for flag, path in (("--checkpoint", args.checkpoint), ("--weights", args.weights)):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{flag} {path!r}: no such file")
    chosen = [flag for flag, value in (("--first-n", args.first_n), ("--indices", args.indices),
                                       ("--n-examples", args.n_examples)) if value is not None]
    if len(chosen) > 1:   # each selects the examples its own way: one of them would be ignored, silently
        raise UserError(f"pass one of --first-n, --indices and --n-examples, not {' and '.join(chosen)}")
    if args.out is not None:
        check_out(args)


def evaluate_command(args: argparse.Namespace) -> int:
    _check_options(args)
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
    """The examples to evaluate and their indices in the split (recorded in the output), chosen by
    :func:`rkhsreg.data.select_indices`: the rule the Python loaders (``load_cifar10``) apply too."""
    import torch

    from rkhsreg.data.examples import select_indices

    if args.indices is not None:
        bad = [i for i in args.indices if i >= len(dataset)]
        if bad:
            raise UserError(f"--indices: {bad[0]} is out of range; the {args.split} split has {len(dataset)} "
                             f"examples (0 to {len(dataset) - 1})")
        indices = select_indices(len(dataset), indices=args.indices)
    elif args.first_n is not None:
        if args.first_n > len(dataset):
            raise UserError(f"--first-n {args.first_n} is more than the {len(dataset)} examples of the {args.split} "
                            f"split of --data {args.data}; pass --first-n {len(dataset)} or less")
        indices = select_indices(len(dataset), first_n=args.first_n)
    else:   # the default, 1000, takes a smaller split whole; a count given on the command line must fit
        count = min(DEFAULT_N_EXAMPLES, len(dataset)) if args.n_examples is None else args.n_examples
        if count > len(dataset):
            raise UserError(f"--n-examples {count} is more than the {len(dataset)} examples of the {args.split} split "
                            f"of --data {args.data}; pass --n-examples {len(dataset)} or less (or leave it out: "
                            f"{DEFAULT_N_EXAMPLES}, or the whole split if smaller)")
        indices = select_indices(len(dataset), n_examples=count,
                                 seed=args.seed if args.subset_seed is None else args.subset_seed)
    return torch.utils.data.Subset(dataset, indices), indices


def _evaluate_on(args: argparse.Namespace, rank: int, world: int) -> int:
    import torch

    from rkhsreg._checks import check_device
    from rkhsreg._errors import ConfigurationError, RKHSRegError
    from rkhsreg.cli.datasets import load_dataset
    from rkhsreg.cli.models import build_model, load_weights
    from rkhsreg.cli.shapes import check_classes, check_input_shape
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
        report = None
        if args.checkpoint or args.weights:
            report = load_weights(model, args.checkpoint or args.weights, strict=not args.non_strict,
                                  prefix=args.prefix)
            if rank == 0 and (report.unused or report.missing):
                sys.stderr.write(f"rkhsreg evaluate: warning: --non-strict: {len(report.unused)} tensors of the file "
                                 f"not loaded{_listed(report.unused)}, {len(report.missing)} of the model's left at "
                                 f"their initial values{_listed(report.missing)}\n")
        check_input_shape(model, example, args.data)
        check_classes(model, example, dataset, args.data)
        if args.device is None:
            device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        else:
            try:
                device = check_device("--device", args.device)
            except ConfigurationError as err:
                raise UserError(str(err)) from None
        model.to(device)
        data, indices = _select(dataset, args)
        constant = _certifiable(model, example) if args.certify else None
        progress = Progress(enabled=not args.no_progress and rank == 0)
        try:
            with warnings.catch_warnings():
                # the table lists the sanity warnings; do not print them twice
                warnings.filterwarnings("ignore", category=RobustnessWarning)
                result = evaluate_robustness(
                    model, data, norm=args.norm, epsilons=args.epsilons, attack=attack, batch_size=args.batch_size,
                    device=device, bounds=args.bounds, seed=args.seed, sanity=not args.no_sanity,
                    certify=False, progress=progress)
        finally:
            progress.close()
    except RKHSRegError as exc:
        raise UserError(str(exc)) from exc
    result.metadata.update({"model": args.model, "checkpoint": args.checkpoint or args.weights, "data": args.data,
                            "split": args.split, "indices": indices, "device": str(device), "world_size": world,
                            "command": shlex.join(["rkhsreg", *args.argv])})
    if report is not None:
        result.metadata["weights"] = {"prefix": report.prefix, "not_loaded": report.unused,
                                      "not_found": report.missing}
    late = None
    if args.certify:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=RobustnessWarning)
                _certify(result, model, data, args, device, constant)
        except Exception as exc:  # the attack curve is kept: written below, then the error is reported
            late = exc
    if rank == 0:
        print(result.table())
        if args.out:
            paths = result.save(args.out, plot=not args.no_plot, overwrite=args.overwrite)
            print("wrote " + ", ".join(str(p) for p in paths.values()))
    if late is not None:
        kept = " (the attack curve was written to --out)" if args.out else ""
        raise UserError(f"--certify failed after the attacks: {late}{kept}; drop --certify to get the attack "
                        "curve alone") from late
    return 0


def _listed(names: list[str], limit: int = 4) -> str:
    if not names:
        return ""
    return " (" + ", ".join(names[:limit]) + (f", … {len(names)} in all" if len(names) > limit else "") + ")"


def _certifiable(model: Any, example: Any) -> float:
    """The model's Lipschitz bound, computed before any attack: a model it cannot bound is refused at once."""
    from rkhsreg._errors import InputError
    from rkhsreg.evaluation.certified import lipschitz_constant

    try:
        return lipschitz_constant(model, tuple(example.shape))
    except InputError as exc:
        reason = str(exc.__cause__ or exc)
        raise UserError(f"--certify: no certified accuracy for this model: {reason} Drop --certify to get the attack "
                        "curve alone.") from exc


def _certify(result: Any, model: Any, data: Any, args: argparse.Namespace, device: Any, constant: float) -> None:
    from rkhsreg.evaluation._data import collect
    from rkhsreg.evaluation.certified import attach_certified

    inputs, labels = collect(data)
    attach_certified(result, model, inputs, labels, batch_size=args.batch_size, device=device, lipschitz=constant)
