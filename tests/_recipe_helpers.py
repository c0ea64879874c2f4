"""Loading a recipe script (``recipes/<name>/run.py``, not a package) as a module for the tests."""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from recipes._common.scripts import load_script


@contextlib.contextmanager
def recipe_module(name: str, path: Path) -> Iterator[ModuleType]:
    """Execute ``path`` as module ``name`` (registered in ``sys.modules`` while in use, for dataclasses/pickle)."""
    try:
        yield load_script(name, path)
    finally:
        sys.modules.pop(name, None)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every row of a results CSV (``runs.csv``, ``tuning.csv``, ``table.csv``) as a dict."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
