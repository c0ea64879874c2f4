"""Checks that an evaluation can be trusted, and the warnings they raise.

An attack that fails proves nothing: robust accuracy measured by attacks is an upper bound, and a
model can look robust only because its gradients are useless to the attacker (Athalye et al. 2018;
Carlini et al. 2019, "On evaluating adversarial robustness"). The sweep runs these checks and
stores them in ``result.sanity``:

* ``clean_at_zero``: the accuracy at ε = 0 equals the clean accuracy.
* ``monotone``: the robust accuracy does not increase with ε.
* ``deterministic``: two clean forwards give the same logits (else the model is randomised or
  non-deterministic, and gradient attacks need expectation over transformation).
* ``gradients``: the input gradients of the loss are finite and non-zero at the correctly
  classified examples (zero gradients make every gradient attack fail silently).
* ``gradient_free``: random noise did not find adversarial examples the gradient attacks missed.
* ``ce_agreement``: APGD-CE alone agrees, within ``disagreement_threshold``, with the ensemble
  (cross-entropy attacks overestimate robustness on models with small logits). A gap is normal on plainly
  trained nets (it is why the ensemble exists): it warns only when another gradient check failed too or
  the gap exceeds 25 points.
* ``unbounded``: an attack with an unbounded budget (ε = the diameter of the input box) leaves no
  example correctly classified.

A failed check that indicates a real problem issues a :class:`RobustnessWarning` (or one of its subclasses)
and is listed in ``result.sanity["warnings"]``; every outcome is in ``result.sanity["checks"]``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["RobustnessWarning", "MaskedGradientWarning", "NondeterminismWarning", "gradient_health",
           "determinism_gap", "curve_checks", "SanityLog"]


class RobustnessWarning(UserWarning):
    """An evaluation result may overestimate robustness."""


class MaskedGradientWarning(RobustnessWarning):
    """Gradient-based attacks look ineffective on this model: its gradients are likely masked."""


class NondeterminismWarning(RobustnessWarning):
    """The model's outputs change between two identical forwards (randomised or non-deterministic)."""


def gradient_health(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Count rows whose input gradient of the cross-entropy is zero or non-finite.

    Args:
        model: the classifier (eval mode, parameters may be frozen).
        inputs: a batch.
        labels: its classes.

    Returns:
        ``(bad_rows, rows)``.

    Raises:
        InputError: the logits do not depend differentiably on the inputs (e.g. ``.detach()`` in forward).

    Example:
        >>> gradient_health(model, x, y)  # doctest: +SKIP
        (0, 64)
    """
    from rkhsreg._errors import InputError

    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        if not logits.requires_grad:
            raise InputError("the model's output does not depend differentiably on its input (is the input "
                             "detached, or the forward run under torch.no_grad?); gradient attacks cannot run. "
                             "Evaluate a differentiable model, or wrap non-differentiable preprocessing with a "
                             "straight-through (BPDA) approximation.")
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        return int(x.shape[0]), int(x.shape[0])
    flat = grad.flatten(1)
    bad = (~torch.isfinite(flat).all(1)) | (flat.abs().amax(1) == 0)
    return int(bad.sum()), int(x.shape[0])


def determinism_gap(first: torch.Tensor, second: torch.Tensor) -> float:
    """Largest absolute difference between two evaluations of the same logits."""
    return float((first - second).abs().max()) if first.numel() else 0.0


def curve_checks(clean_accuracy: float, epsilons: list[float], robust_accuracy: list[float]) -> dict[str, Any]:
    """``clean_at_zero`` and ``monotone`` checks of a curve.

    Example:
        >>> curve_checks(0.9, [0.0, 1.0], [0.9, 0.5])["monotone"]["passed"]
        True
    """
    out: dict[str, Any] = {}
    if epsilons and epsilons[0] == 0.0:
        gap = abs(robust_accuracy[0] - clean_accuracy)
        out["clean_at_zero"] = {"passed": gap <= 1e-12, "detail": f"accuracy at eps=0 is {robust_accuracy[0]:.4f}, "
                                                                   f"clean accuracy {clean_accuracy:.4f}"}
    else:
        out["clean_at_zero"] = {"passed": robust_accuracy[0] <= clean_accuracy + 1e-12 if robust_accuracy else True,
                                "detail": "eps=0 not in the sweep; robust accuracy never exceeds clean accuracy"}
    increases = [(epsilons[i], epsilons[i + 1]) for i in range(len(epsilons) - 1)
                 if robust_accuracy[i + 1] > robust_accuracy[i] + 1e-12]
    out["monotone"] = {"passed": not increases,
                       "detail": "non-increasing in eps" if not increases else f"increases between {increases}"}
    return out


class SanityLog:
    """Collects check outcomes and issues one warning per failed check."""

    def __init__(self) -> None:
        self.checks: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []

    def record(self, name: str, passed: bool, detail: str, *, warning: type[RobustnessWarning] | None = None,
               message: str | None = None, **values: Any) -> None:
        """Store a check; if it failed and ``warning`` is given, warn with ``message``."""
        self.checks[name] = {"passed": bool(passed), "detail": detail, **values}
        if not passed and warning is not None:
            text = message or detail
            self.warnings.append(text)
            warnings.warn(text, warning, stacklevel=3)

    def as_dict(self) -> dict[str, Any]:
        return {"checks": self.checks, "warnings": list(self.warnings)}
