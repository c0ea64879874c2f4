"""The ``rkhsreg`` argument parser and its argument types (each refuses a bad value naming it)."""

from __future__ import annotations

import argparse
import os
from numbers import Integral
from typing import Any

from rkhsreg._errors import ConfigurationError
from rkhsreg._params import Interval, Options, _forms, _NoneForm, describe, validate_param
from rkhsreg.cli.errors import Parser

__all__ = ["build_parser", "comma_list", "Declared", "LIGHTNING_HELP"]

#: The LightningCLI subcommands, as ``rkhsreg --help`` lists them.
LIGHTNING_HELP = {
    "fit": "train RegularizedClassifier from a YAML config (LightningCLI; rkhsreg fit --help)",
    "validate": "validate a model from a YAML config (LightningCLI)",
    "test": "test a model from a YAML config (LightningCLI)",
    "predict": "predict with a model from a YAML config (LightningCLI)",
}


def comma_list(text: str) -> list[str]:
    """The one reader of comma-separated options (``--epsilons``, ``--attacks``, ``--indices``, ``--bounds``):
    entries with their spaces stripped; an empty entry (``0.5,,1``, a comma at an end) is refused, never dropped.

    Raises:
        ValueError: naming the list and the empty entry.

    Example:
        >>> comma_list(" 0.5, 1 ")
        ['0.5', '1']
    """
    parts = [part.strip() for part in text.split(",")]
    if not text.strip():
        raise ValueError("is empty; pass comma-separated values")
    if any(not part for part in parts):
        where = ("at its start" if not parts[0] else "at its end" if not parts[-1] else
                 "between two commas")
        raise ValueError(f"has an empty entry ({where}); pass values separated by single commas")
    return parts


def _number(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    return parse


def _listed(kind: type) -> Any:
    item = _number(kind) if kind in (int, float) else str
    return lambda text: [item(part) for part in comma_list(text)]


#: Options with no API parameter behind them (--threads, --num-classes): an int >= 1.
POSITIVE = Interval(Integral, 1, None)


class Declared(argparse.Action):
    """An option checked by the declaration of the API parameter it sets (:mod:`rkhsreg._params`), so the command
    line and the Python API accept the same values and refuse the others with the same words.

    ``parse`` turns the text into the Python value (a number, a list); then the one validator checks it against
    ``declaration`` (the API's own, ``None`` dropped: a command line cannot pass it), naming the option.
    """

    def __init__(self, option_strings: list[str], dest: str, *, declaration: Any, parse: Any = str,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.declaration = [form for form in _forms(declaration) if not isinstance(form, _NoneForm)]
        self.parse = parse

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        flag = option_string or self.option_strings[-1]
        try:
            value = self.parse(values)
        except ValueError as exc:
            sep = " " if str(exc).startswith(("has ", "is ")) else ": "
            parser.error(f"{flag} {values!r}{sep}{exc} (allowed: {describe(self.declaration)})")
        try:
            checked = validate_param(flag, value, self.declaration)
        except ConfigurationError as exc:
            text = str(exc).rstrip(".")
            parser.error(text if flag in text else f"{flag} {values!r}: {text}")
        setattr(namespace, self.dest, checked)


def build_parser() -> argparse.ArgumentParser:
    """The ``rkhsreg`` argument parser (subcommands ``evaluate`` and ``plot``; ``fit``, ``validate``, ``test`` and
    ``predict`` are listed, and handed to LightningCLI by :func:`rkhsreg.cli.main`)."""
    from rkhsreg import __version__
    from rkhsreg.data.examples import SELECT_PARAMETERS as select
    from rkhsreg.evaluation.settings import AttackSettings
    from rkhsreg.evaluation.sweep import ROBUSTNESS_PARAMETERS as robustness

    settings = AttackSettings.parameters   # each option below is checked by its API parameter's declaration

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
    src.add_argument("--model-kwargs", default=None,
                     help="JSON object of keyword arguments for the factory; values are JSON, so numbers and "
                          "true/false go without quotes: '{\"width\": 8}' passes the int 8, '{\"width\": \"8\"}' "
                          "the string '8'")
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
    src.add_argument("--num-classes", action=Declared, declaration=POSITIVE, parse=_number(int), default=None,
                     help="classes of a timm: model (default 10); other factories take theirs in --model-kwargs")
    data = ev.add_argument_group("data")
    data.add_argument("--data", required=True, help="mnist, cifar10 or imagefolder:<path>")
    data.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA"),
                      help="data root (default $RKHSREG_DATA)")
    data.add_argument("--split", action=Declared, declaration=Options(("test", "train")), default="test",
                      help="test (default) or train")
    data.add_argument("--n-examples", action=Declared, declaration=select["n_examples"], parse=_number(int),
                      default=None,
                      help="examples drawn (seeded permutation, --subset-seed) from the split, at most its size (default 1000, "
                           "or the whole split if smaller)")
    data.add_argument("--subset-seed", action=Declared, declaration=select["seed"], parse=_number(int), default=None,
                      help="seed of the drawn subset (default: --seed); the attacks keep --seed")
    data.add_argument("--first-n", action=Declared, declaration=select["first_n"], parse=_number(int), default=None,
                      help="evaluate the split's first N examples (at most its size) instead of a drawn subset")
    data.add_argument("--indices", action=Declared, declaration=select["indices"], parse=_listed(int), default=None,
                      help="evaluate exactly these examples of the split, e.g. 0,5,17 (comma-separated)")
    atk = ev.add_argument_group("evaluation")
    atk.add_argument("--norm", action=Declared, declaration=robustness["norm"], default="l2", help="l2 (default) or linf")
    atk.add_argument("--epsilons", action=Declared, declaration=robustness["epsilons"], parse=_listed(float),
                     required=True, help="comma-separated radii, e.g. 0.25,0.5,1")
    atk.add_argument("--steps", action=Declared, declaration=settings["steps"], parse=_number(int), default=100,
                     help="APGD/FAB iterations (default 100)")
    atk.add_argument("--attacks", action=Declared, declaration=settings["attacks"], parse=_listed(str), default=None,
                     help="comma-separated ensemble: default (FAB-T, APGD-CE, APGD-T), fab-t, fab, apgd-ce, apgd-dlr, "
                          "apgd-t, square (gradient-free, 5000 queries), noise, or any attack a plugin registers in "
                          "the rkhsreg.attacks entry-point group; e.g. default,square")
    atk.add_argument("--order", action=Declared, declaration=settings["order"], default="descending",
                     help="descending (default) or ascending ε sweep")
    atk.add_argument("--borderline-restarts", action=Declared, declaration=settings["borderline_restarts"],
                     parse=_number(int), default=4,
                     help="extra runs with new seeds on examples found adversarial just above ε (default 4; 0: off)")
    atk.add_argument("--bounds", action=Declared, declaration=robustness["bounds"], parse=_listed(float),
                     default=(0.0, 1.0), help="valid input box 'low,high' (default 0,1)")
    atk.add_argument("--certify", action="store_true", help="also compute the certified (Lipschitz) accuracy")
    atk.add_argument("--no-sanity", action="store_true", help="skip the sanity checks")
    atk.add_argument("--seed", action=Declared, declaration=robustness["seed"], parse=_number(int), default=0,
                     help="seed of the attacks (default 0)")
    run = ev.add_argument_group("run")
    run.add_argument("--batch-size", action=Declared, declaration=robustness["batch_size"], parse=_number(int),
                     default=128, help="examples per attack batch (default 128)")
    run.add_argument("--threads", action=Declared, declaration=POSITIVE, parse=_number(int), default=None,
                     help="torch CPU threads (default: torch's choice)")
    run.add_argument("--device", action=Declared, declaration=robustness["device"], default=None,
                     help="cpu, cuda, cuda:1… (default: cuda if available)")
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
