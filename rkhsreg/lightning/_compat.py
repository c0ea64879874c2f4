"""Which Lightning to build on: ``pytorch_lightning`` (the design card's), else ``lightning.pytorch``.

A Trainer only accepts callbacks and modules of its own package, so when both are installed the one the
user already imported wins (``lightning.pytorch`` if only it is in ``sys.modules``).
``RKHSREG_LIGHTNING=lightning.pytorch`` (or ``pytorch_lightning``) forces the choice.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

__all__ = ["pl", "PACKAGE", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'rkhsreg[lightning]'"
_CANDIDATES = ("pytorch_lightning", "lightning.pytorch")


def _order() -> tuple[str, ...]:
    forced = os.environ.get("RKHSREG_LIGHTNING", "").strip()
    if forced:
        if forced not in _CANDIDATES:
            from rkhsreg._errors import ConfigurationError
            raise ConfigurationError(f"RKHSREG_LIGHTNING={forced!r} is not allowed; choose one of "
                                     f"{', '.join(map(repr, _CANDIDATES))} or leave it unset.")
        return (forced,)
    if sys.modules.get("lightning.pytorch") is not None and sys.modules.get("pytorch_lightning") is None:
        return ("lightning.pytorch", "pytorch_lightning")
    return _CANDIDATES


def _load() -> tuple[ModuleType, str]:
    errors = []
    for name in _order():
        try:
            return importlib.import_module(name), name
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ImportError("rkhsreg.lightning needs PyTorch Lightning, which could not be imported "
                      f"({'; '.join(errors)}). Install it with {INSTALL_HINT} "
                      "(or `pip install lightning` for the lightning.pytorch namespace).")


pl, PACKAGE = _load()


def check_trainer(trainer: object, who: str) -> None:
    """Refuse a Trainer of the other Lightning package, saying how to pick the matching one."""
    if isinstance(trainer, pl.Trainer) or type(trainer).__name__ != "Trainer":  # test doubles pass through
        return
    from rkhsreg._errors import ConfigurationError
    other = type(trainer).__module__.split(".trainer")[0]
    raise ConfigurationError(f"{who} was built on {PACKAGE}, but the Trainer comes from {other}. Set "
                             f"RKHSREG_LIGHTNING={other} before importing rkhsreg.lightning (or import {other} "
                             "first), so both come from the same package.")
