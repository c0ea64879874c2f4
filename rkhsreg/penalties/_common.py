"""Argument handling shared by the penalties that search over inputs (ε-ball or deformations)."""

from __future__ import annotations

from typing import Any

import torch

from rkhsreg._checks import check_choice, check_int, check_logits
from rkhsreg._errors import ConfigurationError, InputError

from rkhsreg._plugin import Penalty

MODES = ("per_class", "joint")
NORMS = ("l2", "linf")


def check_candidates(value: Any) -> int | str:
    """``candidates``: an int >= 1 or ``"all"`` (exhaustive search)."""
    if value == "all":
        return "all"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"candidates={value!r} is not allowed; pass an int >= 1 or 'all' "
                                 "(every example of the batch, the exhaustive search).")
    return value


def check_classes(value: Any) -> int | str:
    """``classes``: ``"all"`` or an int >= 0 (true class + that many top-scoring other classes)."""
    if value == "all":
        return "all"
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"classes={value!r} is not allowed; pass 'all' or an int >= 0 "
                                 "(the true class plus that many top-scoring other classes).")
    return value


def check_clip(value: Any) -> tuple[float, float] | None:
    """``clip``: None or a (low, high) pair with low < high."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"clip={value!r} is not allowed; pass None or a (low, high) pair.") from None
    if not low < high:
        raise ConfigurationError(f"clip={value!r} is not allowed; low must be < high.")
    return low, high


def check_mode(value: Any) -> str:
    return check_choice("mode", value, MODES)


def check_norm(value: Any) -> str:
    return check_choice("norm", value, NORMS)


def check_steps(value: Any) -> int:
    return check_int("steps", value, low=1)


def make_generator(seed: Any) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (int >= 0): random starts never use the global RNG."""
    return torch.Generator().manual_seed(check_int("seed", seed, low=0))


def zero_like_parameters(model: torch.nn.Module) -> torch.Tensor:
    """A scalar 0 attached to the parameters' graph (so ``backward`` works) without running the model."""
    return next(model.parameters()).sum() * 0.0


def counting_forward(model: torch.nn.Module, passes: Any, batch: int, targets: torch.Tensor | None = None):
    """``model`` as a function that records the rows it sees in ``passes`` (a PassCount).

    Every output is checked to be (rows, K) scores (a tuple, dict or 1-D output gets an error that says
    how to select the logits); the first one also checks that ``targets`` index its K classes.
    """
    unchecked = [targets]

    def run(z: torch.Tensor) -> torch.Tensor:
        passes.add(forward_rows=z.shape[0], batch=batch)
        try:
            out = model(z)
        except RuntimeError as exc:
            _explain_mismatch(model, z, exc)
            raise
        out = check_logits(out, z, unchecked[0])
        unchecked[0] = None
        return out
    return run


def _explain_mismatch(model: torch.nn.Module, inputs: torch.Tensor, exc: RuntimeError) -> None:
    """Re-raise a model's RuntimeError as an InputError when the inputs' dtype or device differs from its weights'."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is None:
        return
    if param.device != inputs.device:
        raise InputError(f"inputs are on {inputs.device} but the model's parameters on {param.device}; move one of "
                         "them (inputs.to(device) or model.to(device)).") from exc
    if param.dtype != inputs.dtype and not torch.is_autocast_enabled():
        raise InputError(f"inputs have dtype {inputs.dtype} but the model's parameters {param.dtype}; convert one "
                         f"of them (inputs.to({param.dtype}) or model.to({inputs.dtype})), or run under "
                         "torch.autocast.") from exc


class SeededPenalty(Penalty):
    """A penalty with a random stream of its own (``self._generator``, set by the subclass from ``seed``).

    The generator state is the resumable state: after ``load_state_dict(state_dict())`` the next call
    draws exactly the same random starts, deformations or tangents.
    """

    _generator: torch.Generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self._generator.set_state(state["generator"])
