"""``--out``: checked before any work (writable, nothing replaced without ``--overwrite``)."""

from __future__ import annotations

import argparse
import sys

from rkhsreg.cli.errors import UserError

__all__ = ["check_out"]


def check_out(args: argparse.Namespace) -> None:
    """Refuse, before any work, an ``--out`` that names no file or a folder, cannot be written, or would
    silently replace results."""
    import tempfile
    from pathlib import Path

    from rkhsreg.evaluation.result import output_paths

    if not args.out.strip():
        raise UserError(f"--out {args.out!r} names no file; pass a file prefix such as results/eval (writes "
                        "results/eval.json, .csv and .png), or leave --out out to print the table only")
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write(f"rkhsreg {args.command}: no plot: matplotlib is not installed (pip install matplotlib); "
                             "writing JSON and CSV only\n")
            args.no_plot = True
    try:
        paths = output_paths(args.out, plot=not args.no_plot)
    except ValueError as exc:
        raise UserError(f"--out {args.out!r}: {exc}") from None
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"--out {args.out!r}: {', '.join(existing)} already exist(s); pass another --out, or "
                         "--overwrite to replace them")
    folder = Path(paths["json"]).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rkhsreg-write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"--out {args.out!r}: cannot write in {str(folder)!r} ({exc.strerror or exc}); "
                         "pass a writable location") from None
