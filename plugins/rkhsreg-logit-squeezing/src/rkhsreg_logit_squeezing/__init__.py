"""Logit squeezing as a third-party rkhsreg penalty: registered through an entry point only."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
from torch import nn

from rkhsreg.plugin_api import (Interval, Penalty, check_inputs, check_logits, check_model, check_targets,
                                restore_modes)

__all__ = ["LogitSqueezing"]


class LogitSqueezing(Penalty):
    """``weight × mean_i ‖f(x_i)‖²`` (Kannan et al., 2018), computed in the model's eval mode.

    Args:
        weight: multiplier λ.

    Example:
        >>> penalty = rkhsreg.create_penalty("logit_squeezing", weight=0.05)  # doctest: +SKIP
    """

    name = "logit_squeezing"
    rkhs_bound = None   # ‖f(x)‖² is no bound of ‖f‖_H: RKHSNormMonitor refuses it as a lower bound
    #: Declared once; the base class validates it before ``__init__`` runs (numpy scalars taken, NaN refused).
    parameters = {"weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ")}

    def __init__(self, *, weight: float = 0.05) -> None:
        super().__init__(weight=weight)

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        check_targets(targets, inputs, required=False)
        with restore_modes(model):
            model.eval()
            logits = check_logits(model(inputs), inputs)
        self.last_passes.add(forward_rows=inputs.shape[0], backward_rows=inputs.shape[0], batch=inputs.shape[0])
        return logits.float().pow(2).sum(1).mean()
