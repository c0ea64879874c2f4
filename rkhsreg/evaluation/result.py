"""What an evaluation returns, and its writers: JSON (RobustBench-like keys), CSV, PNG, terminal table.

Every file is written atomically: to a temporary file in the destination folder, flushed, then
moved over the destination with ``os.replace``, so a reader never sees half a file and an
interrupted run leaves the previous file intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import torch

from rkhsreg._atomic import atomic_write, refuse_existing
from rkhsreg._errors import ConfigurationError, InputError, ParameterError
from rkhsreg._params import (PATH, SEED, Boolean, Check, Declaration, InstanceOf, Interval, Options, Tuple,
                             validate_fields, validate_param, validates)
from rkhsreg.evaluation.attacks import NORMS
from rkhsreg.evaluation.figure import PLOT_FORMATS, plot_format

__all__ = ["RobustnessResult", "atomic_write", "epsilon_key", "library_versions", "output_paths", "FOREIGN_SUFFIXES"]


#: Extensions of file types :meth:`RobustnessResult.save` does not write: a prefix ending in one is refused (images
#: matplotlib could write but save does not, and data or document types).
FOREIGN_SUFFIXES = frozenset({
    "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "avif", "eps", "ps", "svgz", "pgf", "raw", "rgba", "ico",
    "txt", "tsv", "yaml", "yml", "xml", "html", "htm", "md", "tex", "log", "npy", "npz", "pt", "pth", "ckpt", "pkl",
    "pickle", "h5", "hdf5", "xls", "xlsx", "parquet", "zip", "gz", "tar", "bz2", "xz", "jsonl"})


def output_paths(prefix: str | os.PathLike, *, plot: bool = True) -> dict[str, Path]:
    """The files :meth:`RobustnessResult.save` writes for ``prefix``: ``{"json", "csv"[, "png"|"pdf"|"svg"]}`` → path.

    A prefix ending in ``.pdf`` or ``.svg`` gives the plot that format (default PNG); one ending in ``.json``,
    ``.csv`` or ``.png`` drops the suffix; one ending in another file type's extension (``.jpg``, ``.txt``, …:
    :data:`FOREIGN_SUFFIXES`) is refused, since ``b.jpg.json`` and ``b.jpg.png`` are never what was meant. Other
    dots are part of the prefix (``run_eps0.5`` writes ``run_eps0.5.json``).

    Raises:
        ConfigurationError: the prefix names a folder, or ends in a foreign file type's extension.

    Example:
        >>> sorted(output_paths("results/eval.pdf"))
        ['csv', 'json', 'pdf']
    """
    text = os.fspath(prefix)
    fmt = "png"
    for suffix in (".json", ".csv", ".png", ".pdf", ".svg"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            fmt = suffix[1:] if suffix in (".png", ".pdf", ".svg") else fmt
            break
    else:
        foreign = Path(text).suffix.lower().lstrip(".")
        if foreign in FOREIGN_SUFFIXES:
            raise ConfigurationError(f"prefix={text!r} ends in .{foreign}, a file type save does not write: it writes "
                                     "<prefix>.json, <prefix>.csv and the plot as <prefix>.png (default), or .pdf or "
                                     f".svg when the prefix ends in one; pass {text[:-len(foreign) - 1]!r} (a PNG plot) "
                                     "or end the prefix in .json, .csv, .png, .pdf or .svg.")
    if not text or text.endswith(("/", os.sep)):
        raise ConfigurationError(f"prefix={os.fspath(prefix)!r} names a folder; pass a file prefix such as "
                                 "'results/eval'.")
    if Path(text).is_dir():
        raise ConfigurationError(f"prefix={os.fspath(prefix)!r} is a folder; pass a file prefix inside it such "
                                 f"as {os.path.join(text, 'eval')!r}.")
    kinds = ("json", "csv", fmt) if plot else ("json", "csv")
    paths = {kind: Path(f"{text}.{kind}") for kind in kinds}
    folders = [str(p) for p in paths.values() if p.is_dir()]
    if folders:
        raise ConfigurationError(f"prefix={os.fspath(prefix)!r}: {', '.join(folders)} is a folder, where a file "
                                 "would be written; pass another prefix.")
    return paths


def _plot_path(value: Any) -> Any:
    plot_format(PATH.fn(value))
    return value


def _axes(value: Any) -> Any:
    if not (hasattr(value, "plot") and hasattr(value, "figure")):
        raise ValueError(f"it is {type(value).__name__}, not a matplotlib Axes")
    return value


#: Where a figure is written (every plot method): ``None`` (only draw) or a path ending in .png, .pdf or .svg.
PLOT_PATH = [None, Check(_plot_path, f"a file path ending in {', '.join('.' + f for f in PLOT_FORMATS)}",
                         domain=(str, os.PathLike), examples=["fig.png", "fig.pdf"])]

#: The declared options of :meth:`RobustnessResult.plot`.
PLOT_PARAMETERS = {
    "path": PLOT_PATH,
    "ax": [None, Check(_axes, "a matplotlib Axes (fig.add_subplot(), plt.gca())")],
    "label": [None, InstanceOf(str, int, float, doc="the legend label")],
    "title": [None, InstanceOf(str)],
    "xlabel": [None, InstanceOf(str)],
    "overwrite": Boolean(),
}

#: JSON keys of the fields (what :meth:`RobustnessResult.load` names in an error).
_JSON_KEYS = {"epsilons": "eps", "clean_accuracy": "clean_acc", "robust_accuracy": "robust_acc",
              "certified_accuracy": "certified_acc", "bounds": "attack.bounds", "order": "attack.order",
              "seed": "attack.seed", "attacks": "attack.ensemble", "stages": "budget.stages",
              "forward_rows": "budget.forward_rows", "backward_rows": "budget.backward_rows",
              "seconds": "budget.seconds", "metadata": "run"}

#: A fraction in [0, 1]: an accuracy.
FRACTION = Interval(Real, 0, 1, closed="both", doc="a fraction")


def _numbers(value: Any, name: str, form: Any) -> list[float]:
    """``value`` as a list of floats, each checked against ``form`` (named ``name[i]`` in messages)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigurationError(f"{name}={value!r} is not allowed; pass a non-empty list.")
    return [validate_param(f"{name}[{i}]", v, form) for i, v in enumerate(value)]


def library_versions() -> dict[str, str]:
    """Versions of the libraries an evaluation depends on (``"absent"`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("rkhsreg", "torch", "torchattacks", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _number(value: float) -> float | None:
    """JSON has no inf/nan: they become null."""
    return float(value) if math.isfinite(value) else None


def epsilon_key(epsilon: float) -> str:
    """A short text for ε that tells distinct floats apart (``repr`` without a trailing ``.0``): JSON keys,
    logged metric names. ``f"{ε:g}"`` would map 0.1234567 and 0.1234568 to the same key.

    Example:
        >>> epsilon_key(1.0), epsilon_key(0.5), epsilon_key(0.1234567)
        ('1', '0.5', '0.1234567')
    """
    text = repr(float(epsilon))
    return text[:-2] if text.endswith(".0") else text


def _check_curves(result: RobustnessResult) -> None:
    """The invariants of a result, checked when one is built and when one is read back (:meth:`RobustnessResult.load`
    builds it): robust accuracy at most the clean one and non-increasing in ε; where the per-example distances are
    known, ``robust_accuracy[k] == (distances > epsilons[k]).mean()``, ``correct == (distances > 0)`` and
    ``clean_accuracy == correct.mean()``.

    Accuracies are fractions of n examples: they may differ by less than half an example (1 / 2n) from the count
    (a value stored rounded). A distance within the rounding of its dtype of ε (``finfo(dtype).eps`` relative) may
    count on either side of it (an attack that succeeded exactly at ε stores ε).
    """
    n = result.n_examples
    slack = 0.5 / max(n, 1)
    clean = float(result.clean_accuracy)
    pairs = sorted(zip(result.epsilons, result.robust_accuracy), key=lambda pair: pair[0])
    for e, a in pairs:
        if a > clean + slack:
            raise ParameterError(f"RobustnessResult: robust_accuracy={list(result.robust_accuracy)!r} holds {a!r} at "
                                 f"ε={e!r}, above clean_accuracy={clean!r}; an accuracy under attack is at most the "
                                 "clean accuracy.", parameter="robust_accuracy", value=a,
                                 allowed=f"fractions <= clean_accuracy={clean!r}, non-increasing in ε")
    for (e1, a1), (e2, a2) in zip(pairs, pairs[1:]):
        if a2 > a1 + slack:
            raise ParameterError(f"RobustnessResult: robust_accuracy={list(result.robust_accuracy)!r} rises with ε: "
                                 f"{a1!r} at ε={e1!r} but {a2!r} at ε={e2!r} (epsilons={list(result.epsilons)!r}); "
                                 "what is broken within a radius is broken within every larger one, so the robust "
                                 "accuracy is non-increasing in ε.", parameter="robust_accuracy", value=a2,
                                 allowed="fractions non-increasing in ε, at most clean_accuracy")
    distances = result.distances
    if n == 0 or bool(torch.isnan(distances).any()):      # per-example distances unknown (a file without them)
        return
    tolerance = 4 * float(torch.finfo(distances.dtype).eps) if distances.is_floating_point() else 0.0
    d = distances.double()
    why = ("distances[i] is 0 for a misclassified example, the smallest adversarial perturbation found otherwise, inf "
           "where none was found, so robust_accuracy[k] == (distances > epsilons[k]).mean()")
    for k, (e, a) in enumerate(zip(result.epsilons, result.robust_accuracy)):
        margin = tolerance * max(abs(e), 1.0)
        low, high = int((d > e + margin).sum()), int((d > e - margin).sum()) if e > 0 else int((d > 0).sum())
        if not low / n - slack <= a <= high / n + slack:
            count = low if low == high else f"{low} to {high}"
            raise ParameterError(f"RobustnessResult: robust_accuracy[{k}]={a!r} at ε={e!r} disagrees with distances: "
                                 f"{count} of {n} examples have a distance above ε (an accuracy of {low / n!r}); "
                                 f"{why}.", parameter="robust_accuracy", value=a,
                                 allowed=f"(distances > {e!r}).mean() = {low / n!r}")
    alive = d > 0
    flags = result.correct.cpu() != 0            # bool flags, or 0/1 numbers
    differ = (flags != alive).nonzero().flatten()
    if differ.numel():
        i = int(differ[0])
        raise ParameterError(f"RobustnessResult: correct and distances disagree at {differ.numel()} of {n} examples "
                             f"(first: example {i}, correct={bool(flags[i])}, distance={float(d[i])!r}); {why}, and "
                             "correct[i] == (distances[i] > 0).", parameter="correct", value=int(differ.numel()),
                             allowed="one flag per example, True exactly where distances > 0")
    fraction = float(alive.double().mean())
    if abs(clean - fraction) > slack:
        raise ParameterError(f"RobustnessResult: clean_accuracy={clean!r} disagrees with correct and distances: "
                             f"{int(alive.sum())} of {n} examples are classified correctly (an accuracy of "
                             f"{fraction!r}).", parameter="clean_accuracy", value=clean,
                             allowed=f"correct.mean() = {fraction!r}")


@dataclass
class RobustnessResult:
    """Clean and robust accuracy over an ε-sweep, with per-example distances and the budget spent.

    ``robust_accuracy[k]`` is the fraction of examples with no adversarial example found within
    ``epsilons[k]``: an **upper bound** on the true robust accuracy. ``certified_accuracy`` (when
    computed) is a **lower bound**. ``distances[i]`` is the smallest adversarial perturbation norm
    found for example ``i`` (an upper bound on its minimal adversarial distance): 0 if it is
    misclassified, ``inf`` if no attack succeeded. So ``robust_accuracy[k] == (distances >
    epsilons[k]).float().mean()``. That identity, ``correct == (distances > 0)``, and a robust accuracy at most the
    clean one and non-increasing in ε are checked when a result is built and when one is loaded.

    Example:
        >>> result = evaluate_robustness(model, (x, y), epsilons=[0.5, 1.0])  # doctest: +SKIP
        >>> result.robust_accuracy, result.distances[:3]                      # doctest: +SKIP
        ([0.8, 0.55], tensor([0.7012, inf, 0.0000], dtype=torch.float64))
        >>> result.save("results/eval")                                       # doctest: +SKIP
    """

    norm: str
    epsilons: list[float]
    clean_accuracy: float
    robust_accuracy: list[float]
    distances: torch.Tensor
    correct: torch.Tensor
    bounds: tuple[float, float] = (0.0, 1.0)
    order: str = "descending"
    seed: int = 0
    attacks: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    forward_rows: int = 0
    backward_rows: int = 0
    seconds: float = 0.0
    certified_accuracy: list[float] | None = None
    certified_radii: torch.Tensor | None = None
    lipschitz_constant: float | None = None
    sanity: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=library_versions)
    metadata: dict[str, Any] = field(default_factory=dict)

    #: Each field's allowed forms (rkhsreg._params): checked when a result is built, and when one is read back
    #: (:meth:`load`), so an edited or damaged file is refused naming the field.
    parameters: ClassVar[dict[str, Declaration]] = {
        "norm": Options(NORMS),
        "epsilons": Check(lambda value, name="epsilons": _numbers(value, name, Interval(Real, 0, None)),
                          "a non-empty list of finite radii >= 0", domain=(list, tuple), examples=[[0.5, 1.0]],
                          named=True),
        "clean_accuracy": Interval(Real, 0, 1, closed="both", doc="a fraction"),
        "robust_accuracy": Check(lambda value, name="robust_accuracy": _numbers(value, name, FRACTION),
                                 "a list of fractions in [0, 1], one per ε", domain=(list, tuple), examples=[[0.5]],
                                 named=True),
        "distances": InstanceOf(torch.Tensor, doc="one per example"),
        "correct": InstanceOf(torch.Tensor, doc="one per example"),
        "bounds": Tuple(Interval(Real, None, None), length=2, where=lambda box: box[0] < box[1],
                        where_doc="low < high"),
        "order": Options(("descending", "ascending")),
        "seed": SEED,
        "attacks": InstanceOf(list),
        "stages": InstanceOf(list),
        "forward_rows": Interval(Integral, 0, None),
        "backward_rows": Interval(Integral, 0, None),
        "seconds": Interval(Real, 0, None),
        "certified_accuracy": [None, Check(lambda value, name="certified_accuracy": _numbers(value, name, FRACTION),
                                           "a list of fractions in [0, 1], one per ε", domain=(list, tuple),
                                           examples=[[0.5]], named=True)],
        "certified_radii": [None, InstanceOf(torch.Tensor, doc="one per example")],
        "lipschitz_constant": [None, Interval(Real, 0, None, closed="neither")],
        "sanity": InstanceOf(dict),
        "versions": InstanceOf(dict),
        "metadata": InstanceOf(dict),
    }

    def __post_init__(self) -> None:
        validate_fields(self)
        per_eps = {"robust_accuracy": self.robust_accuracy, "certified_accuracy": self.certified_accuracy}
        for name, values in per_eps.items():
            if values is not None and len(values) != len(self.epsilons):
                raise ParameterError(f"RobustnessResult: {name} has {len(values)} values for the {len(self.epsilons)} "
                                     "epsilons; pass one per ε.", parameter=name, value=values,
                                     allowed=f"{len(self.epsilons)} fractions in [0, 1]")
        n = self.distances.shape[0] if self.distances.dim() == 1 else -1
        for name in ("distances", "correct", "certified_radii"):
            tensor = getattr(self, name)
            if tensor is not None and (tensor.dim() != 1 or tensor.shape[0] != n):
                raise ParameterError(f"RobustnessResult: {name} has shape {tuple(tensor.shape)}; one value per "
                                     f"example is needed ({'a 1-d tensor' if n < 0 else f'shape ({n},)'}).",
                                     parameter=name, value=tuple(tensor.shape), allowed="a 1-d tensor, one per example")
        negative = int((self.distances < 0).sum())   # NaN (unknown, read from a file without them) is not negative
        if negative:
            raise ParameterError(f"RobustnessResult: distances holds {negative} negative value(s); a distance is >= 0 "
                                 "(0: misclassified, inf: no adversarial example found).", parameter="distances",
                                 value=negative, allowed="a 1-d tensor of values >= 0 (inf, NaN: unknown)")
        _check_curves(self)

    @property
    def n_examples(self) -> int:
        """Number of examples evaluated."""
        return int(self.distances.shape[0])

    @validates({"epsilon": Interval(Real, 0, None, doc="one of the sweep's radii")}, owner="RobustnessResult.accuracy_at")
    def accuracy_at(self, epsilon: float) -> float:
        """Robust accuracy at one ε of the sweep (an upper bound: no attack found an adversarial example).

        Only the ε the sweep attacked at: elsewhere the per-example distances were never searched at that
        radius and would overstate the accuracy; evaluate again with that ε in ``epsilons``.

        Raises:
            ParameterError: ``epsilon`` is not a finite number >= 0 (a numpy scalar or a 0-d tensor is one).
            ConfigurationError: ``epsilon`` is not one of :attr:`epsilons`; the message lists them.

        Example:
            >>> result.accuracy_at(0.5)  # doctest: +SKIP
            0.62
        """
        value = epsilon            # a python float, checked by the declaration
        sweep = ", ".join(epsilon_key(e) for e in self.epsilons)
        for e, accuracy in zip(self.epsilons, self.robust_accuracy):
            # float32 precision: a radius given as a float32 (a tensor, a numpy scalar) or stored as one is the
            # same radius as its decimal; two radii of a sweep are never that close
            if math.isclose(e, value, rel_tol=2 ** -23, abs_tol=0.0):
                return float(accuracy)
        raise ConfigurationError(f"epsilon={epsilon!r} is not allowed; pass one of the sweep's radii ({sweep}), "
                                 "or evaluate again with it in epsilons.")

    @classmethod
    @validates({"path": PATH}, owner="RobustnessResult.load")
    def load(cls, path: str | os.PathLike) -> RobustnessResult:
        """Read back a result that :meth:`save` or :meth:`to_json` wrote (for plotting or comparing).

        Per-example distances come back when the file holds them (``per_example=True``, the default); the
        budget's stages, sanity checks, versions and run metadata as they were written.

        Every field is checked against the declarations a result is built with (:attr:`parameters`): an accuracy
        outside [0, 1] or NaN, a negative radius, per-example lists of another length than ``n_ex``; and the result's
        invariants: robust accuracy at most the clean one, non-increasing in ε, and, with per-example distances,
        equal to the fraction of examples whose distance exceeds ε.

        Raises:
            InputError: the file is missing or a folder, is not JSON, lacks the keys a result has, or holds a value
                its field does not allow (the file and the field are named).

        Example:
            >>> RobustnessResult.load("results/eval.json").robust_accuracy  # doctest: +SKIP
            [0.81, 0.42]
        """
        where = os.fspath(path)
        if Path(where).is_dir():
            raise InputError(f"{where!r} is a folder; pass the .json file that RobustnessResult.save wrote (e.g. "
                             f"{os.path.join(where, 'eval.json')!r}).")
        try:
            record = json.loads(Path(where).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{where!r} does not exist; pass the .json file that RobustnessResult.save "
                             "wrote.") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{where!r} is not a JSON file ({exc}); pass the .json file that "
                             "RobustnessResult.save wrote.") from None
        needed = ("norm", "eps", "clean_acc", "robust_acc", "n_ex")
        lacking = [k for k in needed if not isinstance(record, dict) or k not in record]
        if lacking:
            raise InputError(f"{where!r} is not a robustness result: it lacks {', '.join(lacking)}; pass the .json "
                             "file that RobustnessResult.save wrote.")
        try:
            eps = [float(e) for e in record["eps"]]
            robust = [float(record["robust_acc"][epsilon_key(e)]) for e in eps]
            certified = (None if record.get("certified_acc") is None
                         else [float(record["certified_acc"][epsilon_key(e)]) for e in eps])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where!r}: its accuracies do not match its eps list ({exc}); the file was "
                             "edited or truncated.") from None
        try:
            n = validate_param("n_ex", record["n_ex"], Interval(Integral, 1, None))
        except ParameterError as exc:
            raise InputError(f"{where!r} is not a valid robustness result: {str(exc).rstrip('.')}; the file was "
                             "edited or is damaged.") from None
        per_example = {}
        for key in ("distances", "certified_radii"):
            raw = record.get(key)
            if raw is None:
                continue
            if not isinstance(raw, list) or len(raw) != n or not all(v is None or isinstance(v, Real) for v in raw):
                got = f"{len(raw)} values" if isinstance(raw, list) else type(raw).__name__
                raise InputError(f"{where!r} is not a valid robustness result: {key!r} holds {got} where n_ex={n} "
                                 "numbers are expected (one per example); the file was edited or is damaged.")
            per_example[key] = torch.tensor([math.inf if v is None else float(v) for v in raw], dtype=torch.float64)
        distances = per_example.get("distances", torch.full((n,), math.nan, dtype=torch.float64))
        attack = record.get("attack") or {}
        budget = record.get("budget") or {}
        fields = dict(norm=record["norm"], epsilons=eps, clean_accuracy=record["clean_acc"],
                      robust_accuracy=robust, distances=distances, correct=distances > 0,
                      bounds=attack.get("bounds", (0.0, 1.0)), order=attack.get("order", "descending"),
                      seed=attack.get("seed", 0), attacks=attack.get("ensemble", []), stages=budget.get("stages", []),
                      forward_rows=budget.get("forward_rows", 0), backward_rows=budget.get("backward_rows", 0),
                      seconds=budget.get("seconds", 0.0), certified_accuracy=certified,
                      certified_radii=per_example.get("certified_radii"),
                      lipschitz_constant=record.get("lipschitz_constant"), sanity=record.get("sanity") or {},
                      versions=record.get("versions") or {}, metadata=record.get("run") or {})
        try:
            return cls(**fields)
        except ParameterError as exc:   # the constructor's declarations: name the file and its key
            key = _JSON_KEYS.get(exc.parameter, exc.parameter)
            raise InputError(f"{where!r} is not a valid robustness result: its {key!r} is refused "
                             f"({str(exc).rstrip('.')}); the file was edited or is damaged: write it again with "
                             "RobustnessResult.save.") from None

    # ------------------------------------------------------------------------------------ export
    @validates({"per_example": Boolean()}, owner="RobustnessResult.to_dict")
    def to_dict(self, *, per_example: bool = True) -> dict[str, Any]:
        """A JSON-ready dict with RobustBench-like keys (``clean_acc``, ``robust_acc``, ``n_ex``, …)."""
        out: dict[str, Any] = {
            "threat_model": {"l2": "L2", "linf": "Linf"}.get(self.norm, self.norm),
            "norm": self.norm,
            "n_ex": self.n_examples,
            "clean_acc": self.clean_accuracy,
            "eps": list(self.epsilons),
            "robust_acc": {epsilon_key(e): a for e, a in zip(self.epsilons, self.robust_accuracy)},
            "certified_acc": (None if self.certified_accuracy is None else
                              {epsilon_key(e): a for e, a in zip(self.epsilons, self.certified_accuracy)}),
            "lipschitz_constant": self.lipschitz_constant,
            "attack": {"ensemble": self.attacks, "order": self.order, "seed": self.seed,
                       "bounds": list(self.bounds)},
            "budget": {"forward_rows": self.forward_rows, "backward_rows": self.backward_rows,
                       "seconds": self.seconds, "stages": self.stages},
            "sanity": self.sanity,
            "versions": self.versions,
            "run": self.metadata,
        }
        if per_example:
            out["distances"] = [_number(d) for d in self.distances.tolist()]
            if self.certified_radii is not None:
                out["certified_radii"] = [_number(r) for r in self.certified_radii.tolist()]
        return out

    @validates({"path": PATH, "per_example": Boolean(), "overwrite": Boolean()}, owner="RobustnessResult.to_json")
    def to_json(self, path: str | os.PathLike, *, per_example: bool = True, overwrite: bool = False) -> Path:
        """Write :meth:`to_dict` as JSON, atomically.

        Raises:
            OutputExistsError: ``path`` exists and ``overwrite`` is False (as :meth:`save`); nothing is written.
        """
        text = json.dumps(self.to_dict(per_example=per_example), indent=2, allow_nan=False) + "\n"
        return atomic_write(path, text, overwrite=overwrite)

    def rows(self) -> list[dict[str, Any]]:
        """One row per ε: ``epsilon``, ``robust_acc``, ``certified_acc`` (empty when not computed)."""
        certified = self.certified_accuracy or [None] * len(self.epsilons)
        return [{"epsilon": e, "robust_acc": a, "certified_acc": "" if c is None else c}
                for e, a, c in zip(self.epsilons, self.robust_accuracy, certified)]

    @validates({"path": PATH, "overwrite": Boolean()}, owner="RobustnessResult.to_csv")
    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write :meth:`rows` as CSV (header ``epsilon,robust_acc,certified_acc``), atomically.

        Raises:
            OutputExistsError: ``path`` exists and ``overwrite`` is False (as :meth:`save`); nothing is written.
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epsilon", "robust_acc", "certified_acc"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return atomic_write(path, buffer.getvalue(), overwrite=overwrite)

    @validates(PLOT_PARAMETERS, owner="RobustnessResult.plot")
    def plot(self, path: str | os.PathLike | None = None, *, ax: Any = None, label: str | None = None,
             title: str | None = None, xlabel: str | None = None, overwrite: bool = False) -> Any:
        """Plot accuracy against ε: under attack (an upper bound), and certified (a lower bound) when computed.

        To overlay several results in one figure, use :func:`~rkhsreg.evaluation.plot_results`.

        Args:
            path: write the figure there (atomically) as PNG, PDF or SVG, by its extension; ``None``: only draw.
            ax: a matplotlib ``Axes`` to draw on (default: a new figure).
            label: the model's name in the legend (a number is written as text).
            title: the figure's title (default: none).
            xlabel: the x-axis label (default ``"ε (ℓ2 radius)"`` or ``"ε (ℓ∞ radius)"``).
            overwrite: replace ``path`` if it exists (default: refuse, as :meth:`save`, before drawing).

        Returns:
            The matplotlib ``Figure``.

        Raises:
            OutputExistsError: ``path`` exists and ``overwrite`` is False.
            ConfigurationError: ``path`` ends in another extension than .png, .pdf or .svg.

        Example:
            >>> result.plot("figures/robustness.pdf", label="‖f‖²_δ")  # doctest: +SKIP
        """
        from rkhsreg.evaluation.figure import draw_curves

        return draw_curves([self], ["" if label is None else str(label)], path, title=title, xlabel=xlabel, ax=ax,
                           overwrite=overwrite)

    @validates({"prefix": PATH, "plot": Boolean(), "overwrite": Boolean()}, owner="RobustnessResult.save")
    def save(self, prefix: str | os.PathLike, *, plot: bool = True, overwrite: bool = False) -> dict[str, Path]:
        """Write ``<prefix>.json``, ``<prefix>.csv`` and (if ``plot``) the plot; return their paths.

        The suffixes are appended to the whole prefix (``"run_eps0.5"`` → ``run_eps0.5.json``), never
        substituted for what follows its last dot; a prefix that already ends in ``.json``, ``.csv`` or
        ``.png`` drops it, and one ending in ``.pdf`` or ``.svg`` writes the plot in that format (default PNG).
        A prefix ending in another file type's extension (``"b.jpg"``, ``"b.txt"``) is refused: it would write
        ``b.jpg.json`` and ``b.jpg.png`` (see :func:`output_paths`).

        Args:
            prefix: the files' path without suffix.
            plot: also write the plot (needs matplotlib).
            overwrite: replace files that already exist (default: refuse, before writing anything).

        Raises:
            OutputExistsError: (a ``FileExistsError``) one of the files exists and ``overwrite`` is False (all
                of them named); nothing is written.
            ConfigurationError: ``prefix`` names a folder or ends in a foreign extension; ``plot`` or ``overwrite``
                is not a bool (a :class:`~rkhsreg.ParameterError`).

        Example:
            >>> result.save("results/eval.pdf")  # doctest: +SKIP
            {'json': PosixPath('results/eval.json'), 'csv': PosixPath('results/eval.csv'), 'pdf': ...}
        """
        paths = output_paths(prefix, plot=plot)     # the options are checked by @validates
        refuse_existing(paths.values(), overwrite=overwrite, instead="another prefix")   # before writing any
        self.to_json(paths["json"], overwrite=True)
        self.to_csv(paths["csv"], overwrite=True)
        for kind in ("png", "pdf", "svg"):
            if kind in paths:
                self.plot(paths[kind], overwrite=True)
        return paths

    def table(self) -> str:
        """A plain-text table of the curves, for a terminal."""
        head = f"{'epsilon':>9}  {'robust acc':>10}"
        if self.certified_accuracy is not None:
            head += f"  {'certified':>9}"
        lines = [f"{self.norm} threat model, n = {self.n_examples}, clean accuracy {self.clean_accuracy:.2%}", head]
        certified = self.certified_accuracy or [None] * len(self.epsilons)
        for e, a, c in zip(self.epsilons, self.robust_accuracy, certified):
            line = f"{e:>9.4g}  {a:>10.2%}"
            if c is not None:
                line += f"  {c:>9.2%}"
            lines.append(line)
        for message in self.sanity.get("warnings", []):
            lines.append(f"warning: {message}")
        return "\n".join(lines)
