"""Loading a recipe script (``recipes/<name>/run.py``: a file, not an importable package) as a module.

The recipes' scripts load one another this way (``demo.py`` and ``trace.py`` reuse ``run.py``), so a
recipe folder needs no ``__init__.py`` and nothing installs a top-level ``recipes`` package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["load_script"]


def load_script(name: str, path: str | Path) -> ModuleType:
    """Execute the Python file ``path`` as module ``name`` and return it.

    The module is registered in ``sys.modules[name]`` (dataclasses and pickle look it up there); loading the
    same name again executes the file again and replaces the entry.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r} is not a file; pass a recipe script such as recipes/x/run.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
