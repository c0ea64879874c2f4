"""Which Lightning to build on: ``pytorch_lightning`` (the design card's), else ``lightning.pytorch``.

A Trainer only accepts callbacks and modules of its own package, so when both are installed the one the
user already imported wins (``lightning.pytorch`` if only it is in ``sys.modules``).
``RKHSREG_LIGHTNING=lightning.pytorch`` (or ``pytorch_lightning``) forces the choice.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from types import ModuleType
from typing import Any

__all__ = ["pl", "PACKAGE", "INSTALL_HINT", "check_trainer", "never_validates"]

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


def check_trainer(trainer: object, callback: object, *, alone: type | None = None) -> None:
    """The Trainer contracts every rkhsreg callback checks in ``setup``: a Trainer of the same Lightning package;
    ``callback`` once in ``trainer.callbacks`` (each copy would run every hook: penalties added twice to the loss,
    measurements and evaluations made twice); with ``alone``, no other callback of that class (two
    ``RKHSRegularization`` callbacks would each wrap ``training_step``).

    Lightning refuses a list repeating a stateful callback when the Trainer is built; a list changed afterwards
    (``trainer.callbacks.append``) or the callbacks ``configure_callbacks`` returns reach this check instead.

    Raises:
        ConfigurationError: naming the callback, what is wrong and how to fix it.
    """
    from rkhsreg._errors import ConfigurationError

    who = type(callback).__name__
    if not isinstance(trainer, pl.Trainer) and type(trainer).__name__ == "Trainer":  # test doubles pass through
        other = type(trainer).__module__.split(".trainer")[0]
        raise ConfigurationError(f"{who} was built on {PACKAGE}, but the Trainer comes from {other}. Set "
                                 f"RKHSREG_LIGHTNING={other} before importing rkhsreg.lightning (or import {other} "
                                 "first), so both come from the same package.")
    callbacks = list(getattr(trainer, "callbacks", None) or [])
    copies = sum(entry is callback for entry in callbacks)
    if copies > 1:
        raise ConfigurationError(f"{who}: the same {who} instance is in trainer.callbacks {copies} times, so each of "
                                 f"its hooks would run {copies} times a step; pass it once (a list such as [cb] * 2, "
                                 "a callback appended to trainer.callbacks again, or listed twice by "
                                 "configure_callbacks repeats it).")
    others = [entry for entry in callbacks if alone is not None and isinstance(entry, alone) and entry is not callback]
    if others:
        raise ConfigurationError(f"{who}: trainer.callbacks holds {len(others) + 1} {alone.__name__} callbacks "
                                 f"(this one and {', '.join(repr(entry) for entry in others)}); each would add its "
                                 "penalties to the loss. Pass all penalties and constraints to one callback.")


def never_validates(trainer: Any, pl_module: Any, every_n_epochs: int = 1) -> str:
    """Why this fit runs no validation epoch at which a callback acting every ``every_n_epochs`` validation epochs
    is due, or "" (also when it cannot tell): the one check of every callback that works on validation batches."""
    limit = getattr(trainer, "limit_val_batches", None)
    if limit is not None and not isinstance(limit, bool) and limit == 0:
        return "the Trainer has limit_val_batches=0"
    step = getattr(type(pl_module), "validation_step", None)
    if not callable(step) or step is getattr(pl.LightningModule, "validation_step", None):
        return f"{type(pl_module).__name__} defines no validation_step"
    try:   # Lightning's own check ("You defined a validation_step but have no val_dataloader")
        defined = trainer.fit_loop.epoch_loop.val_loop._data_source.is_defined()
    except AttributeError:
        defined = True
    if not defined:
        return "the fit has no validation data (no val_dataloaders, no val_dataloader in the module or datamodule)"
    every_val, max_epochs = getattr(trainer, "check_val_every_n_epoch", None), getattr(trainer, "max_epochs", None)
    if isinstance(every_val, int) and isinstance(max_epochs, int) and max_epochs > 0:
        first = math.lcm(every_val, every_n_epochs)
        if first > max_epochs:
            return (f"with every_n_epochs={every_n_epochs} and the Trainer's check_val_every_n_epoch={every_val}, the "
                    f"first epoch it is due at is {first}, past max_epochs={max_epochs}")
    return ""
