"""Loading a recipe script (``recipes/<name>/run.py``, not a package) as a module for the tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


@contextlib.contextmanager
def recipe_module(name: str, path: Path) -> Iterator[ModuleType]:
    """Execute ``path`` as module ``name`` (registered in ``sys.modules`` while in use, for dataclasses/pickle)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
