"""Weight (and radius) schedules: pure functions of the optimiser step and the epoch.

A schedule holds no state: its value is recomputed from the step and the epoch (in Lightning,
``trainer.global_step`` and ``trainer.current_epoch``, which a checkpoint restores), so a resumed run
follows the same curve. The one owner of the paper's radius formula: the spectral-norm projection's
``kappa`` uses :class:`RadiusDecay` too. Re-exported by :mod:`rkhsreg.lightning`.

Example:
    >>> LinearWarmup(0.1, warmup=100)(step=50, epoch=0)
    0.05
    >>> round(RadiusDecay(tau=0.5, kappa=2.0)(step=0, epoch=0), 3)
    2.5
"""

from __future__ import annotations

import abc
import math

import torch

from rkhsreg._checks import check_choice, check_int, check_real

__all__ = ["Schedule", "Constant", "LinearWarmup", "RadiusDecay"]


class Schedule(abc.ABC):
    """A value that depends on the training position only."""

    @abc.abstractmethod
    def __call__(self, step: int, epoch: int) -> float:
        """Value at optimiser step ``step`` (``trainer.global_step``) of epoch ``epoch``."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """Always ``value``.

    Args:
        value: the weight (>= 0).

    Example:
        >>> Constant(0.1)(step=10, epoch=3)
        0.1
    """

    def __init__(self, value: float) -> None:
        self.value = check_real("value", value)

    def __call__(self, step: int, epoch: int) -> float:
        return self.value


class LinearWarmup(Schedule):
    """From ``start`` to ``value`` linearly over ``warmup`` steps (or epochs), then ``value``.

    Args:
        value: the final weight (>= 0).
        warmup: length of the ramp (int >= 1), in ``unit``.
        start: the weight at step 0 (>= 0).
        unit: ``"step"`` (optimiser steps) or ``"epoch"``.

    Example:
        >>> LinearWarmup(1.0, warmup=4, unit="epoch")(step=123, epoch=1)
        0.25
    """

    def __init__(self, value: float, warmup: int, *, start: float = 0.0, unit: str = "step") -> None:
        self.value = check_real("value", value)
        self.warmup = check_int("warmup", warmup, low=1)
        self.start = check_real("start", start)
        self.unit = check_choice("unit", unit, ("step", "epoch"))

    def __call__(self, step: int, epoch: int) -> float:
        position = step if self.unit == "step" else epoch
        frac = min(max(position, 0) / self.warmup, 1.0)
        return self.start + (self.value - self.start) * frac


class RadiusDecay(Schedule):
    """The paper's spectral-norm radius schedule ``tau * (1 + factor * exp(-epoch / kappa))``.

    Starts at ``(1 + factor) * tau`` and decays to ``tau`` (paper: τ=0.5, κ=2; robust example τ=0.8,
    κ=50; factor=4). Usable for a penalty weight too.

    Args:
        tau: the limit (>= 0).
        kappa: decay time in epochs (> 0).
        factor: initial excess (>= 0).

    Example:
        >>> round(RadiusDecay(tau=0.5, kappa=2.0)(step=0, epoch=2), 4)
        1.2358
    """

    def __init__(self, tau: float = 0.5, kappa: float = 2.0, factor: float = 4.0) -> None:
        self.tau = check_real("tau", tau)
        self.kappa = check_real("kappa", kappa, strict=True)
        self.factor = check_real("factor", factor)

    def __call__(self, step: int, epoch: int) -> float:
        return self.tau * (1.0 + self.factor * math.exp(-epoch / self.kappa))


# Schedules are plain data: let ``torch.load(weights_only=True)`` (``load_from_checkpoint``) rebuild the
# ones saved in a module's hyper-parameters.
if hasattr(torch.serialization, "add_safe_globals"):
    torch.serialization.add_safe_globals([Constant, LinearWarmup, RadiusDecay])
