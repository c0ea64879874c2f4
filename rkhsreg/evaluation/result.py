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
from pathlib import Path
from typing import Any

import torch

from rkhsreg._atomic import atomic_write

__all__ = ["RobustnessResult", "atomic_write", "epsilon_key", "library_versions", "output_paths"]


def output_paths(prefix: str | os.PathLike, *, plot: bool = True) -> dict[str, Path]:
    """The files :meth:`RobustnessResult.save` writes for ``prefix``: ``{"json", "csv"[, "png"]}`` → path."""
    text = os.fspath(prefix)
    for suffix in (".json", ".csv", ".png"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    if not text or text.endswith(("/", os.sep)):
        raise ValueError(f"prefix={os.fspath(prefix)!r} names a folder; pass a file prefix such as 'results/eval'.")
    kinds = ("json", "csv", "png") if plot else ("json", "csv")
    return {kind: Path(f"{text}.{kind}") for kind in kinds}


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


@dataclass
class RobustnessResult:
    """Clean and robust accuracy over an ε-sweep, with per-example distances and the budget spent.

    ``robust_accuracy[k]`` is the fraction of examples with no adversarial example found within
    ``epsilons[k]``: an **upper bound** on the true robust accuracy. ``certified_accuracy`` (when
    computed) is a **lower bound**. ``distances[i]`` is the smallest adversarial perturbation norm
    found for example ``i`` (an upper bound on its minimal adversarial distance): 0 if it is
    misclassified, ``inf`` if no attack succeeded. So ``robust_accuracy[k] == (distances >
    epsilons[k]).float().mean()``.

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

    @property
    def n_examples(self) -> int:
        """Number of examples evaluated."""
        return int(self.distances.shape[0])

    def accuracy_at(self, epsilon: float) -> float:
        """Empirical robust accuracy at any ``epsilon`` from the per-example distances (an upper bound).

        Example:
            >>> result.accuracy_at(0.75)  # doctest: +SKIP
            0.62
        """
        return float((self.distances > float(epsilon)).double().mean())

    # ------------------------------------------------------------------------------------ export
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

    def to_json(self, path: str | os.PathLike, *, per_example: bool = True) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return atomic_write(path, json.dumps(self.to_dict(per_example=per_example), indent=2, allow_nan=False) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        """One row per ε: ``epsilon``, ``robust_acc``, ``certified_acc`` (empty when not computed)."""
        certified = self.certified_accuracy or [None] * len(self.epsilons)
        return [{"epsilon": e, "robust_acc": a, "certified_acc": "" if c is None else c}
                for e, a, c in zip(self.epsilons, self.robust_accuracy, certified)]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as CSV (header ``epsilon,robust_acc,certified_acc``), atomically."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epsilon", "robust_acc", "certified_acc"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return atomic_write(path, buffer.getvalue())

    def plot(self, path: str | os.PathLike | None = None, *, ax: Any = None, label: str | None = None) -> Any:
        """Plot accuracy against ε (empirical upper bound, and certified lower bound when computed).

        Args:
            path: write a PNG there (atomically); ``None``: only draw.
            ax: a matplotlib ``Axes`` to draw on (default: a new figure).
            label: prefix of the legend entries.

        Returns:
            The matplotlib ``Figure``.
        """
        try:
            import matplotlib
            if ax is None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("plotting needs matplotlib: pip install 'rkhsreg[eval]'") from exc
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
        else:
            fig = ax.figure
        prefix = f"{label}: " if label else ""
        eps = [0.0, *self.epsilons] if self.epsilons[0] > 0 else list(self.epsilons)
        emp = [self.clean_accuracy, *self.robust_accuracy] if self.epsilons[0] > 0 else list(self.robust_accuracy)
        ax.plot(eps, emp, marker="o", label=f"{prefix}empirical (upper bound)")
        if self.certified_accuracy is not None:
            cert = ([self.clean_accuracy, *self.certified_accuracy] if self.epsilons[0] > 0
                    else list(self.certified_accuracy))
            ax.plot(eps, cert, marker="s", linestyle="--", label=f"{prefix}certified (lower bound)")
        ax.set_xlabel(f"ε ({self.norm})")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"n = {self.n_examples}, clean {self.clean_accuracy:.1%}", fontsize=9)
        if path is not None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", bbox_inches="tight")
            atomic_write(path, buffer.getvalue())
        if own:
            plt.close(fig)
        return fig

    def save(self, prefix: str | os.PathLike, *, plot: bool = True) -> dict[str, Path]:
        """Write ``<prefix>.json``, ``<prefix>.csv`` and (if ``plot``) ``<prefix>.png``; return their paths.

        The suffixes are appended to the whole prefix (``"run_eps0.5"`` → ``run_eps0.5.json``), never
        substituted for what follows its last dot; a prefix that already ends in one of them drops it.
        """
        paths = output_paths(prefix, plot=plot)
        self.to_json(paths["json"])
        self.to_csv(paths["csv"])
        if plot:
            self.plot(paths["png"])
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
