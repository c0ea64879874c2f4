"""grad-ℓ2 / grad-ℓ1: the loss-gradient penalty baseline (Drucker & LeCun; Simon-Gabriel et al.).

λ · mean_i ‖∇_x ℓ(f(x_i), y_i)‖₂² (``p=2``, the paper's grad-ℓ2) or λ · mean_i ‖∇_x ℓ(f(x_i), y_i)‖₁
(``p=1``), with ℓ the cross-entropy of each example (not of the batch mean, so each row's gradient is
its own). Double back-propagation over the whole batch.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._params import Interval, Options
from rkhsreg._plugin import Penalty
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.second_order import differentiable_input_gradient, twice_differentiable
from rkhsreg.penalties._common import EVAL_MODE, counting_forward

__all__ = ["LossGradient"]


class LossGradient(Penalty):
    """Mean over the batch of the squared ℓ2 (or the ℓ1) norm of the loss gradient w.r.t. the input.

    Args:
        weight: multiplier λ (paper: 0.1).
        p: 2 (squared ℓ2 norm, grad-ℓ2) or 1 (ℓ1 norm, grad-ℓ1).
        eval_mode: compute with BatchNorm/Dropout in eval mode.

    Example:
        >>> penalty = LossGradient(weight=0.1)                             # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "loss_gradient"
    rkhs_bound = None   # a baseline: its value bounds ‖f‖_H neither way
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "p": Options((2, 1), doc="2: squared ℓ2 norm (grad-ℓ2), 1: ℓ1 norm (grad-ℓ1)"),
        "eval_mode": EVAL_MODE,
    }

    def __init__(self, *, weight: float = 0.1, p: int = 2, eval_mode: bool = True) -> None:
        super().__init__(weight=weight)
        self.p = p              # every argument is checked against `parameters` before the body runs
        self.eval_mode = eval_mode

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "p": self.p}

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        targets = check_targets(targets, inputs, required=True)
        n = inputs.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets, min_classes=2, owner=self.name)
        with inner_mode(model, self.eval_mode):
            x = inputs.detach().clone().requires_grad_(True)
            with twice_differentiable():
                logits = forward(x)
            loss = F.cross_entropy(wide(logits), targets, reduction="sum")
            g = differentiable_input_gradient(loss, x, penalty=self.name)
        self.last_passes.add(backward_rows=3 * n, batch=n)
        g = wide(g.flatten(1))
        per_example = g.pow(2).sum(1) if self.p == 2 else g.abs().sum(1)
        return per_example.mean()
