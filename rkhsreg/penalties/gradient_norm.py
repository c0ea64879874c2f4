"""‖∇f‖²: the gradient lower bound of the RKHS norm, sup over the batch of input-gradient norms.

Paper semantics (``mode="per_class"``): for each output k, i_k = argmax_i ‖∇_x f_k(x_i)‖², and the
penalty is Σ_k ‖∇_x f_k(x_{i_k})‖² (double back-propagation). The selection uses input-only
gradients of the whole batch without a graph; only the K selected rows are recomputed with
``create_graph=True``, so the double backward runs on K rows instead of K·n.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._params import Interval
from rkhsreg._plugin import Penalty
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.second_order import differentiable_input_gradient, twice_differentiable
from rkhsreg.functional.selection import true_and_top_classes, worst_rows
from rkhsreg.penalties._common import CLASSES, EVAL_MODE, MODE, counting_forward

__all__ = ["GradientNorm"]


class GradientNorm(Penalty):
    """‖∇f‖² = Σ_k max_i ‖∇_x f_k(x_i)‖² (per class) or max_i ‖J_f(x_i)‖_F² (joint).

    Rows are assumed independent in the forward pass (true in eval mode, the default); with
    ``eval_mode=False`` and BatchNorm in training mode the gradients mix examples.

    Args:
        weight: multiplier λ (paper: 0.1).
        mode: ``"per_class"`` (paper) or ``"joint"`` (the whole Jacobian of the worst example,
            squared Frobenius norm Σ_k ‖∇_x f_k(x_i)‖²).
        classes: ``"all"`` or an int k: each example's true class and its k top-scoring other classes.
        eval_mode: compute with BatchNorm/Dropout in eval mode.

    Example:
        >>> penalty = GradientNorm(weight=0.1)                             # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "gradient_norm"
    rkhs_bound = "lower"
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "mode": MODE,
        "classes": CLASSES,
        "eval_mode": EVAL_MODE,
    }

    def __init__(self, *, weight: float = 0.1, mode: str = "per_class", classes: int | str = "all",
                 eval_mode: bool = True) -> None:
        super().__init__(weight=weight)
        self.mode = mode        # every argument is checked against `parameters` before the body runs
        self.classes = classes
        self.eval_mode = eval_mode

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "mode": self.mode, "classes": self.classes}

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        x = inputs.detach()
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets, owner=self.name)
        slots = None if self.classes == "all" else (lambda logits: true_and_top_classes(logits, targets, self.classes))
        with inner_mode(model, self.eval_mode):
            logits, slots, sq_norms = output_gradients(forward, x, slots,
                                                       reduce=lambda g, j: wide(g.flatten(1)).pow(2).sum(1))
            self.last_passes.add(backward_rows=n * slots.shape[1], batch=n)
            rows, classes = worst_rows(sq_norms, slots, self.mode)
            return self._value(forward, x, rows, classes, n)

    def _value(self, forward, x: torch.Tensor, rows: torch.Tensor, classes: torch.Tensor, n: int) -> torch.Tensor:
        """Σ_r ‖∇_x f_{classes[r]}(x_{rows[r]})‖², differentiable w.r.t. the parameters.

        One copy of the input per (row, class) pair: rows are independent, so a single backward
        of Σ_r f_{c_r}(z_r) gives every pair's gradient in its own row.
        """
        z = x[rows].clone().requires_grad_(True)
        with twice_differentiable():
            picked = forward(z).gather(1, classes[:, None]).sum()
        g = differentiable_input_gradient(picked, z, penalty=self.name)
        # the penalty's own backward: one pass with graph, then its double backward (~2 passes).
        self.last_passes.add(backward_rows=3 * rows.numel(), batch=n)
        return wide(g).pow(2).sum()
