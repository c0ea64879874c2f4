"""``rkhsreg`` command line: ``rkhsreg evaluate`` measures robust accuracy curves of a trained model.

Example::

    rkhsreg evaluate --model rkhsreg.models:mnist_vgg5 --checkpoint last.ckpt --data mnist \\
        --epsilons 0.5,1,1.5,2 --n-examples 1000 --out results/eval --certify

Every user error ends the command with exit status 2 and one line on stderr (``--debug`` shows the
traceback). Under ``torchrun`` the examples are sharded over the processes; rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2


class _UserError(Exception):
    """An error to report in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _epsilons(text: str) -> list[float]:
    values = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers "
                                             "(e.g. 0.25,0.5,1)") from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r} is not a finite radius >= 0")
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} holds no radius (e.g. 0.25,0.5,1)")
    return values


def _names(text: str) -> list[str]:
    names = [part for part in text.replace(" ", "").split(",") if part]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} holds no attack name (e.g. default,square)")
    return names


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
        return value
    return parse


_positive = _at_least(1)


def _indices(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: pass example indices >= 0, e.g. 0,5,17")
    return values


def _bounds(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'low,high' (e.g. 0,1)") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"{text!r}: low must be < high")
    return low, high


def build_parser() -> argparse.ArgumentParser:
    """The ``rkhsreg`` argument parser (subcommand ``evaluate``)."""
    from rkhsreg import __version__

    parser = _Parser(prog="rkhsreg", description="RKHS-norm regularization toolkit.",
                     epilog="Training: rkhsreg fit --config cfg.yaml (also validate, test, predict) runs LightningCLI "
                            "with rkhsreg.lightning.RegularizedClassifier as the model and any LightningDataModule "
                            "as data (data: {class_path: rkhsreg.lightning.MNISTSubset, init_args: {...}}); "
                            "see rkhsreg fit --help.")
    parser.add_argument("--version", action="version", version=f"rkhsreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ev = sub.add_parser("evaluate", help="robust accuracy over a list of epsilons (attack ensemble), "
                                         "optionally certified accuracy",
                        description="Robust accuracy of a trained classifier over a list of epsilons: worst case of "
                                    "FAB-T, APGD-CE and targeted APGD-DLR, per-example distances, sanity checks.")
    src = ev.add_argument_group("model")
    src.add_argument("--model", required=True,
                     help="'package.module:factory' (e.g. rkhsreg.models:mnist_vgg5) or 'timm:<name>'")
    src.add_argument("--model-kwargs", default=None, help="JSON object of keyword arguments for the factory")
    src.add_argument("--import-path", action="append", default=[], metavar="DIR",
                     help="folder searched first for the factory's package (repeatable); the current directory "
                          "is always searched, as with 'python -m'")
    src.add_argument("--checkpoint", default=None, help="Lightning checkpoint (.ckpt); its 'state_dict' is loaded")
    src.add_argument("--weights", default=None, help="state-dict file (torch.save(model.state_dict(), path))")
    src.add_argument("--num-classes", type=_positive, default=None, help="classes of a timm model (default 10)")
    data = ev.add_argument_group("data")
    data.add_argument("--data", required=True, help="mnist, cifar10 or imagefolder:<path>")
    data.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"),
                      help="data root (default $RKHSREG_DATA)")
    data.add_argument("--split", choices=("test", "train"), default="test")
    data.add_argument("--n-examples", type=_positive, default=1000,
                      help="examples drawn (seeded permutation, --subset-seed) from the split (default 1000)")
    data.add_argument("--subset-seed", type=int, default=None,
                      help="seed of the drawn subset (default: --seed); the attacks keep --seed")
    data.add_argument("--first-n", type=_positive, default=None,
                      help="evaluate the split's first N examples instead of a drawn subset")
    data.add_argument("--indices", type=_indices, default=None,
                      help="evaluate exactly these examples of the split, e.g. 0,5,17 (comma-separated)")
    atk = ev.add_argument_group("evaluation")
    atk.add_argument("--norm", choices=("l2", "linf"), default="l2")
    atk.add_argument("--epsilons", type=_epsilons, required=True, help="comma-separated radii, e.g. 0.25,0.5,1")
    atk.add_argument("--steps", type=_positive, default=100, help="APGD/FAB iterations (default 100)")
    atk.add_argument("--attacks", type=_names, default=None,
                     help="comma-separated ensemble: default (FAB-T, APGD-CE, APGD-T), fab-t, fab, apgd-ce, apgd-dlr, "
                          "apgd-t, square (gradient-free, 5000 queries), noise, or any attack a plugin registers in "
                          "the rkhsreg.attacks entry-point group; e.g. default,square")
    atk.add_argument("--order", choices=("descending", "ascending"), default="descending")
    atk.add_argument("--borderline-restarts", type=_at_least(0), default=4,
                     help="extra runs with new seeds on examples found adversarial just above ε (default 4; 0: off)")
    atk.add_argument("--bounds", type=_bounds, default=(0.0, 1.0), help="valid input box 'low,high' (default 0,1)")
    atk.add_argument("--certify", action="store_true", help="also compute the certified (Lipschitz) accuracy")
    atk.add_argument("--no-sanity", action="store_true", help="skip the sanity checks")
    atk.add_argument("--seed", type=int, default=0)
    run = ev.add_argument_group("run")
    run.add_argument("--batch-size", type=_positive, default=128)
    run.add_argument("--threads", type=_positive, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1… (default: cuda if available)")
    run.add_argument("--out", default=None,
                     help="write <out>.json, <out>.csv and <out>.png (e.g. results/robustness); checked for "
                          "writability before the evaluation starts")
    run.add_argument("--overwrite", action="store_true", help="replace existing <out>.* files (default: refuse)")
    run.add_argument("--no-plot", action="store_true", help="write <out>.json and <out>.csv only")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


class _Progress:
    """tqdm bars (one per stage) when tqdm is installed, else a line on stderr per stage end."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label: str | None = None
        self.bar: Any = None
        self.started = time.perf_counter()
        try:
            import tqdm
            self._tqdm = tqdm.tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if label != self.label:
            self.close()
            self.label = label
            if self._tqdm is not None:
                self.bar = self._tqdm(total=total, desc=label, unit="ex", leave=False, file=sys.stderr)
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()
        elif done >= total:
            sys.stderr.write(f"[{time.perf_counter() - self.started:7.1f}s] {label}: {total} examples\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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


def _evaluate(args: argparse.Namespace) -> int:
    if args.checkpoint and args.weights:
        raise _UserError("pass --checkpoint or --weights, not both")
    if args.model.startswith("timm:") and not (args.checkpoint or args.weights):
        raise _UserError(f"--model {args.model} has random weights; pass --weights (a state-dict file)")
    for flag, path in (("--checkpoint", args.checkpoint), ("--weights", args.weights)):
        if path is not None and not os.path.isfile(path):
            raise _UserError(f"{flag} {path!r}: no such file")
    if args.first_n is not None and args.indices is not None:
        raise _UserError("pass --first-n or --indices, not both")
    if args.out:
        _check_out(args)
    for folder in reversed([os.getcwd(), *args.import_path]):  # as 'python -m': the user's own package first
        if not os.path.isdir(folder):
            raise _UserError(f"--import-path {folder!r}: no such folder")
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


def _check_out(args: argparse.Namespace) -> None:
    """Refuse, before any work, an ``--out`` that cannot be written or would silently replace results."""
    import tempfile
    from pathlib import Path

    from rkhsreg.evaluation.result import output_paths

    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write("rkhsreg evaluate: no plot: matplotlib is not installed (pip install matplotlib); "
                             "writing JSON and CSV only\n")
            args.no_plot = True
    try:
        paths = output_paths(args.out, plot=not args.no_plot)
    except ValueError as exc:
        raise _UserError(f"--out {args.out!r}: {exc}") from None
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        raise _UserError(f"--out {args.out!r}: {', '.join(existing)} already exist(s); pass another --out, or "
                         "--overwrite to replace them")
    folder = Path(paths["json"]).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rkhsreg-write-check-"):
            pass
    except OSError as exc:
        raise _UserError(f"--out {args.out!r}: cannot write in {str(folder)!r} ({exc.strerror or exc}); "
                         "pass a writable location") from None


def _select(dataset: Any, args: argparse.Namespace) -> tuple[Any, list[int]]:
    """The examples to evaluate and their indices in the split (recorded in the output)."""
    import torch

    from rkhsreg.evaluation._datasets import subset

    if args.indices is not None:
        bad = [i for i in args.indices if i >= len(dataset)]
        if bad:
            raise _UserError(f"--indices: {bad[0]} is out of range; the {args.split} split has {len(dataset)} "
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
    from rkhsreg.evaluation._datasets import load_dataset
    from rkhsreg.evaluation._loading import build_model, load_weights
    from rkhsreg.evaluation.sanity import RobustnessWarning
    from rkhsreg.evaluation.sweep import evaluate_robustness

    try:
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
                raise _UserError(str(err)) from None
        model.to(device)
        data, indices = _select(dataset, args)
        progress = _Progress(enabled=not args.no_progress and rank == 0)
        try:
            with warnings.catch_warnings():
                # the table lists the sanity warnings; do not print them twice
                warnings.filterwarnings("ignore", category=RobustnessWarning)
                result = evaluate_robustness(
                    model, data, norm=args.norm, epsilons=args.epsilons, steps=args.steps, attacks=args.attacks,
                    batch_size=args.batch_size, device=device, bounds=args.bounds, seed=args.seed, order=args.order,
                    sanity=not args.no_sanity, certify=args.certify, progress=progress,
                    borderline_restarts=args.borderline_restarts)
        finally:
            progress.close()
    except RKHSRegError as exc:
        raise _UserError(str(exc)) from exc
    result.metadata.update({"model": args.model, "checkpoint": args.checkpoint or args.weights, "data": args.data,
                            "split": args.split, "indices": indices, "device": str(device), "world_size": world,
                            "command": shlex.join(["rkhsreg", *args.argv])})
    if rank == 0:
        print(result.table())
        if args.out:
            paths = result.save(args.out, plot=not args.no_plot)
            print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


#: Subcommands handed to LightningCLI (training from a YAML config).
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def _lightning_cli(argv: list[str]) -> int:
    """``rkhsreg fit --config cfg.yaml``: LightningCLI over RegularizedClassifier and any LightningDataModule."""
    try:
        import importlib

        from rkhsreg.lightning._compat import pl
        from rkhsreg.lightning.classifier import RegularizedClassifier

        LightningCLI = importlib.import_module(f"{pl.__name__}.cli").LightningCLI  # the Lightning rkhsreg uses
    except ImportError as exc:
        sys.stderr.write(f"rkhsreg {argv[0]}: error: training needs Lightning and jsonargparse "
                         f"(pip install 'rkhsreg[lightning]'): {exc}\n")
        return EXIT_USAGE
    LightningCLI(RegularizedClassifier, pl.LightningDataModule, subclass_mode_data=True, args=argv,
                 save_config_kwargs={"overwrite": True})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rkhsreg`` console script; returns the exit status.

    Example:
        >>> main(["evaluate", "--model", "rkhsreg.models:mnist_vgg5", "--data", "mnist",
        ...       "--epsilons", "0.5,1"])  # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        return _lightning_cli(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in the results (sys.argv is the caller's when main() is called from Python)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
    except KeyboardInterrupt:
        sys.stderr.write("rkhsreg: interrupted\n")
        return 130
    except _UserError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"rkhsreg {args.command}: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except Exception as exc:  # a factory's or a model's own error: still one line, traceback with --debug
        if args.debug:
            raise
        sys.stderr.write(f"rkhsreg {args.command}: error: {type(exc).__name__}: {_one_line(exc)} "
                         "(rerun with --debug for the traceback)\n")
        return 1
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
