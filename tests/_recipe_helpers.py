"""Loading a recipe script (``recipes/<name>/run.py``, not a package) as a module for the tests."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from rkhsreg._scripts import load_script


@contextlib.contextmanager
def recipe_module(name: str, path: Path) -> Iterator[ModuleType]:
    """Execute ``path`` as module ``name`` (registered in ``sys.modules`` while in use, for dataclasses/pickle)."""
    try:
        yield load_script(name, path)
    finally:
        sys.modules.pop(name, None)
