"""The recipes' shared runner: each cell of a table trained once, resumably, after its row's validation grid.

A recipe's ``run.py`` subclasses :class:`Runner` (or :class:`GridRunner`, when its rows choose hyper-parameters on
a validation grid) and keeps only what is its own: how one config trains (:meth:`Runner.train`), how a grid point
is scored (:meth:`GridRunner.score`: validation accuracy at one seed for
MNIST, mean auROC50 over the tuning tasks for proteins), which cells its table has and how its summary reads.
The runner owns the rest:

- the results files ``runs.csv`` and ``tuning.csv``: each finished run appended at once as one CSV line (a
  torn last line, from a run killed while writing, is cut on the next append), finished cells found again on
  restart (:meth:`Runner.finished`, :meth:`Runner.record`);
- the provenance every record carries: config hash, git commit, machine, threads, time (:meth:`Runner.stamp`);
- the validation grid: a row's ``grid: {dotted key: [values]}`` is tried one key after the other, each key
  keeping the value with the best score (ties: the first listed) before the next key is tried, and
  ``inherit: {dotted key: other row}`` takes another row's choice (:meth:`GridRunner.choose`). A grid point already
  in a results file is read back, never trained again, also when a later key reaches the same config.

Its three effects (:meth:`Runner.train`, :meth:`Runner.read`, :meth:`Runner.append`) are methods so that a
planner can replace them and list what would be trained without training anything (``mnist_small_data/plan.py``).

Example (a recipe's runner; ``tests/test_recipe_runner.py`` has a complete one)::

    class MyRunner(GridRunner):
        columns = ["row", "seed", "val_acc", "config_hash", "git_commit", "machine", "threads", "finished_at"]

        def train(self, cfg, seed, label):       # -> {"val_acc": ...}
        def grid_config(self, name, choice):     # the row's config with {dotted key: value} applied
        def score(self, name, cfg, label):       # the grid point's validation score (self.record() when trained)
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recipes._common.results import append_line, git_commit, machine, read_runs

__all__ = ["Runner", "GridRunner", "config_hash", "mean_std", "select_rows", "check_positive"]


def config_hash(cfg: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """A short hash of ``cfg`` (of its ``keys`` only, when given): any change of a hyper-parameter makes a new cell.

    Example:
        >>> config_hash({"model": {"lr": 0.1}}) == config_hash({"model": {"lr": 0.1}, "notes": "x"}, ["model"])
        True
    """
    part = dict(cfg) if keys is None else {k: cfg.get(k) for k in keys}
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:12]


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for one value) of a table cell's runs."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values=[] is empty; a cell needs at least one run.")
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def select_rows(text: str, rows: Iterable[str]) -> list[str]:
    """``--rows`` (comma-separated names, or ``all``) as a list in the given order; ``SystemExit`` naming the unknown
    names and the allowed ones otherwise."""
    rows = list(rows)
    chosen = rows if text == "all" else [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in chosen if r not in rows]
    if unknown or not chosen:
        raise SystemExit(f"--rows={text!r}: unknown row(s) {unknown}; choose from {', '.join(rows)} or 'all'.")
    return chosen


def check_positive(option: str, value: int | None, minimum: int = 1) -> None:
    """``SystemExit`` naming ``--option`` and its value when an integer option is below ``minimum`` (None passes)."""
    if value is not None and value < minimum:
        raise SystemExit(f"--{option}={value} is out of range; pass an int >= {minimum}.")


class Runner(abc.ABC):
    """Trains a recipe's missing cells, each recorded at once with its provenance; a subclass says how one config
    trains (:meth:`train`).

    Args:
        rows: the table's rows by name.
        results: the results folder (``runs.csv``, ``tuning.csv``).
        threads: torch CPU threads, recorded with every run.
        device: where runs train, recorded with every run (``machine`` names the accelerator).
        dry: never train (used to summarise): see :meth:`GridRunner.score`.
    """

    columns: Sequence[str] = ()        # the results files' header
    hash_keys: Sequence[str] | None = None   # the config sections a run's hash covers (None: all)

    def __init__(self, rows: Mapping[str, Mapping[str, Any]], results: Path, *, threads: int = 1,
                 device: Any = "cpu", dry: bool = False) -> None:
        self.rows, self.results = rows, Path(results)
        self.threads, self.device, self.dry = threads, device, dry
        self.runs_path, self.tuning_path = self.results / "runs.csv", self.results / "tuning.csv"
        self.code = git_commit(Path(__file__).resolve().parent)   # the checkout this runner's code came from

    # -- the three effects (a planner replaces them)
    @abc.abstractmethod
    def train(self, cfg: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
        """Train and evaluate one resolved config; the recipe's own code."""

    def read(self, path: Path) -> list[dict[str, str]]:
        """The finished runs recorded in ``path`` (a torn last line ignored)."""
        return read_runs(path)

    def append(self, path: Path, record: Mapping[str, Any]) -> None:
        """Record one finished run in ``path`` at once (one line, fsync'd)."""
        append_line(path, record, self.columns)

    # -- records
    def config_hash(self, cfg: Mapping[str, Any]) -> str:
        """The hash that names ``cfg``'s cells (:func:`config_hash` over :attr:`hash_keys`)."""
        return config_hash(cfg, self.hash_keys)

    def stamp(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with its provenance: the commit of the code that ran (read when the runner was built, ``+dirty``
        with local changes), machine (and accelerator), threads, time finished."""
        return {**record, "git_commit": self.code, "machine": machine(self.device), "threads": self.threads,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def record(self, path: Path, record: Mapping[str, Any]) -> dict[str, Any]:
        """Stamp ``record`` (:meth:`stamp`) and append it to ``path``; returns what was written."""
        stamped = self.stamp(record)
        self.append(path, stamped)
        return stamped

    def finished(self, paths: Path | Sequence[Path], key: Callable[[Mapping[str, str]], Any]) -> dict[Any, dict]:
        """``{key(record): record}`` over the finished runs of ``paths`` (later lines win)."""
        paths = [paths] if isinstance(paths, Path) else list(paths)
        return {key(r): r for path in paths for r in self.read(path)}



class GridRunner(Runner):
    """A :class:`Runner` whose rows may choose hyper-parameters on a validation grid first: a row's
    ``grid: {dotted key: [values]}`` and ``inherit: {dotted key: other row}`` (see the module docstring); a subclass
    also says which config a grid point trains (:meth:`grid_config`) and how it is scored (:meth:`score`)."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]], results: Path, **kwargs: Any) -> None:
        super().__init__(rows, results, **kwargs)
        self._chosen: dict[str, dict[str, Any] | None] = {}

    @abc.abstractmethod
    def grid_config(self, name: str, choice: Mapping[str, Any]) -> dict[str, Any]:
        """The config row ``name`` is tuned with, ``choice`` (``{dotted key: value}``) applied; the recipe's own."""

    @abc.abstractmethod
    def score(self, name: str, cfg: dict[str, Any], label: str) -> float | None:
        """The validation score of the grid point ``cfg`` (trained when missing), ``None`` when it is missing and
        this runner is dry; the recipe's own."""

    def choose(self, name: str) -> dict[str, Any] | None:
        """``{dotted key: value}`` the row's grid chose, inherited keys included (its missing grid points trained
        first); ``None`` while a grid point is missing in a dry run."""
        if name not in self._chosen:   # a dry runner's None is kept too: its files do not change
            self._chosen[name] = self._search(name)
        return self._chosen[name]

    def _search(self, name: str) -> dict[str, Any] | None:
        row = self.rows[name]
        choice: dict[str, Any] = {}
        for key, source in (row.get("inherit") or {}).items():
            parent = self.choose(source)
            if parent is None:
                return None
            choice[key] = parent[key]
        for key, values in (row.get("grid") or {}).items():
            scores = []
            for index, value in enumerate(values):
                got = self.score(name, self.grid_config(name, {**choice, key: value}),
                                 f"{name}[{key.rsplit('.', 1)[-1]}={value}]")
                if got is None:
                    return None
                scores.append((got, -index, value))
            best = max(scores, key=lambda s: s[:2])
            choice[key] = best[2]
            print(f"[tune] {name}: chose {key}={best[2]} ({', '.join(f'{v}: {s:.2f}' for s, _, v in scores)})",
                  flush=True)
        return choice
