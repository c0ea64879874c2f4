"""``rkhsreg plot a.json b.json --out fig.pdf``: overlay the curves of saved evaluations in one figure."""

from __future__ import annotations

import argparse
from pathlib import Path

from rkhsreg.cli.errors import UserError

__all__ = ["plot_command"]


def plot_command(args: argparse.Namespace) -> int:
    """Check every option and file, then write one figure (PNG, PDF or SVG by ``--out``'s extension)."""
    from rkhsreg._errors import RKHSRegError
    from rkhsreg.evaluation import RobustnessResult, plot_results
    from rkhsreg.evaluation.figure import PLOT_FORMATS

    out = Path(args.out)
    if not args.out.strip() or out.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise UserError(f"--out {args.out!r}: end the file name with {', '.join('.' + f for f in PLOT_FORMATS)} "
                        "(the figure's format), e.g. --out fig.pdf")
    if out.is_dir():
        raise UserError(f"--out {args.out!r} is a folder; pass a file name inside it, e.g. {str(out / 'fig.pdf')!r}")
    if out.exists() and not args.overwrite:
        raise UserError(f"--out {args.out!r} already exists; pass another --out, or --overwrite to replace it")
    if args.label is not None and len(args.label) != len(args.results):
        raise UserError(f"--label given {len(args.label)} times for {len(args.results)} results; give one per "
                        "result, in the same order, or none (the file names are used)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'rkhsreg[eval]'") from None
    try:
        results = [RobustnessResult.load(path) for path in args.results]
        labels = args.label if args.label is not None else [Path(p).stem for p in args.results]
        plot_results(results, out, labels=labels, title=args.title, xlabel=args.xlabel, overwrite=args.overwrite)
    except RKHSRegError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {out}")
    return 0
