"""``rkhsreg`` command line: ``rkhsreg evaluate`` measures robust accuracy curves of a trained model,
``rkhsreg plot`` overlays saved curves, ``rkhsreg fit`` trains from a config (LightningCLI).

Example::

    rkhsreg evaluate --model rkhsreg.models:mnist_vgg5 --checkpoint last.ckpt --data mnist \\
        --epsilons 0.5,1,1.5,2 --n-examples 1000 --out results/eval --certify

Every user error ends the command with exit status 2 and one line on stderr (``--debug`` shows the
traceback). Under ``torchrun`` the examples are sharded over the processes; rank 0 prints and writes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rkhsreg.cli.errors import EXIT_USAGE, UserError
from rkhsreg.cli.evaluate import evaluate_command
from rkhsreg.cli.fit import LIGHTNING_COMMANDS, lightning_cli
from rkhsreg.cli.parser import build_parser
from rkhsreg.cli.plot import plot_command

__all__ = ["main", "build_parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rkhsreg`` console script; returns the exit status.

    Example:
        >>> main(["evaluate", "--model", "rkhsreg.models:mnist_vgg5", "--data", "mnist",
        ...       "--epsilons", "0.5,1"])  # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        return lightning_cli(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in the results (sys.argv is the caller's when main() is called from Python)
    try:
        if args.command == "evaluate":
            return evaluate_command(args)
        if args.command == "plot":
            return plot_command(args)
    except KeyboardInterrupt:
        sys.stderr.write("rkhsreg: interrupted\n")
        return 130
    except UserError as exc:
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
