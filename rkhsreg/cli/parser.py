"""The ``rkhsreg`` argument parser and its argument types (each refuses a bad value naming it)."""

from __future__ import annotations

import argparse
import os

from rkhsreg.cli.errors import Parser

__all__ = ["build_parser", "LIGHTNING_HELP"]

#: The LightningCLI subcommands, as ``rkhsreg --help`` lists them.
LIGHTNING_HELP = {
    "fit": "train RegularizedClassifier from a YAML config (LightningCLI; rkhsreg fit --help)",
    "validate": "validate a model from a YAML config (LightningCLI)",
    "test": "test a model from a YAML config (LightningCLI)",
    "predict": "predict with a model from a YAML config (LightningCLI)",
}


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
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{text!r} lists {', '.join(map(str, repeated))} more than once; each "
                                         "example counts once in the accuracy, so list it once")
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
    """The ``rkhsreg`` argument parser (subcommands ``evaluate`` and ``plot``; ``fit``, ``validate``, ``test`` and
    ``predict`` are listed, and handed to LightningCLI by :func:`rkhsreg.cli.main`)."""
    from rkhsreg import __version__

    parser = Parser(prog="rkhsreg", description="RKHS-norm regularization toolkit.",
                     epilog="fit, validate, test and predict run LightningCLI with "
                            "rkhsreg.lightning.RegularizedClassifier as the model and any LightningDataModule "
                            "as data (data: {class_path: rkhsreg.lightning.MNISTSubset, init_args: {...}}); "
                            "see rkhsreg fit --help.")
    parser.add_argument("--version", action="version", version=f"rkhsreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    # handed to LightningCLI before this parser runs (rkhsreg.cli.main); listed here so --help names them
    for name, text in LIGHTNING_HELP.items():
        sub.add_parser(name, help=text, add_help=False)
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
    src.add_argument("--random-init", action="store_true",
                     help="evaluate the weights the factory gives (random unless it sets them) without "
                          "--weights/--checkpoint; without it, a missing weights file is an error")
    src.add_argument("--non-strict", action="store_true",
                     help="load the tensors that match the model, and say which of the file's tensors were not "
                          "loaded and which of the model's were not found (default: either is an error)")
    src.add_argument("--prefix", default=None,
                     help="load the file's tensors under this prefix (e.g. 'model.'), when it holds several "
                          "complete models (an EMA copy, say); its other tensors are not loaded")
    src.add_argument("--num-classes", type=_positive, default=None,
                     help="classes of a timm: model (default 10); other factories take theirs in --model-kwargs")
    data = ev.add_argument_group("data")
    data.add_argument("--data", required=True, help="mnist, cifar10 or imagefolder:<path>")
    data.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"),
                      help="data root (default $RKHSREG_DATA)")
    data.add_argument("--split", choices=("test", "train"), default="test")
    data.add_argument("--n-examples", type=_positive, default=None,
                      help="examples drawn (seeded permutation, --subset-seed) from the split, at most its size (default 1000, "
                           "or the whole split if smaller)")
    data.add_argument("--subset-seed", type=int, default=None,
                      help="seed of the drawn subset (default: --seed); the attacks keep --seed")
    data.add_argument("--first-n", type=_positive, default=None,
                      help="evaluate the split's first N examples (at most its size) instead of a drawn subset")
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
                     help="write <out>.json, <out>.csv and a plot, <out>.png (e.g. results/robustness); an <out> "
                          "ending in .pdf or .svg writes the plot in that format; checked before the evaluation "
                          "starts")
    run.add_argument("--overwrite", action="store_true", help="replace existing <out>.* files (default: refuse)")
    run.add_argument("--no-plot", action="store_true", help="write <out>.json and <out>.csv only")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    plot = sub.add_parser("plot", help="overlay the curves of saved evaluations in one figure (PNG, PDF or SVG)",
                          description="Accuracy against ε of one or several results written by rkhsreg evaluate "
                                      "--out (or RobustnessResult.save), one colour per result: solid under attack, "
                                      "dashed certified.")
    plot.add_argument("results", nargs="+", metavar="RESULT.json", help="JSON files written by rkhsreg evaluate")
    plot.add_argument("--out", required=True, help="the figure: fig.png, fig.pdf or fig.svg (format by extension)")
    plot.add_argument("--label", action="append", default=None,
                      help="legend label of each result, in order (repeat once per result; default: file names)")
    plot.add_argument("--title", default=None, help="the figure's title (default: none)")
    plot.add_argument("--xlabel", default=None,
                      help="the x-axis label (default: 'ε (ℓ2 radius)' or 'ε (ℓ∞ radius)')")
    plot.add_argument("--overwrite", action="store_true", help="replace an existing --out (default: refuse)")
    plot.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser
