"""PGD adversarial training (Madry et al.): the loss on adversarial inputs, as a plugin.

The paper's PGD-ℓ2 baseline: zero start, ``steps`` = 5 normalised-gradient steps of 1.5ε/steps on
the cross-entropy, projection onto the ℓ2 ball; PGD-ℓ∞: random start in the box, signed steps of
0.01. The adversarial batch **replaces** the clean batch in the paper: ``replaces_loss`` is True,
so the Lightning integration and :func:`rkhsreg.training.regularized_loss` use
``weight × CE(f(x_adv), y)`` *instead of* the clean loss (``weight`` defaults to 1). To add it to
the clean loss instead (TRADES-like mixing), pass ``replace=False``.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._params import SEED, Boolean, Interval
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.pgd import pgd_maximize, random_start
from rkhsreg.penalties._common import (CLIP, EVAL_MODE, NORM, STEP_SIZE, STEPS, SeededPenalty,
                                       check_ball_in_box, check_search_inputs, counting_forward, make_generator,
                                       zero_like_parameters)

__all__ = ["AdversarialTraining"]


class AdversarialTraining(SeededPenalty):
    """Cross-entropy on PGD adversarial examples of radius ε.

    Args:
        weight: multiplier of the adversarial loss.
        epsilon: radius, in input units.
        steps: PGD steps.
        step_size: default 1.5·ε/steps for ``"l2"`` (paper) and 0.01 for ``"linf"`` (paper).
        norm: ``"l2"`` (zero start) or ``"linf"`` (random start).
        replace: whether the value replaces the clean loss (paper) or is added to it.
        eval_mode: run PGD and the adversarial forward with BatchNorm/Dropout in eval mode, so
            BatchNorm statistics only follow clean data.
        clip: optional (low, high) bounds for the adversarial inputs.
        seed: seed of the generator for the ℓ∞ random start.

    Example:
        >>> at = AdversarialTraining(epsilon=1.0)                          # doctest: +SKIP
        >>> loss = at(model, x, y)  # replaces the clean loss              # doctest: +SKIP
    """

    name = "adversarial_training"
    rkhs_bound = None   # a baseline: its value bounds ‖f‖_H neither way
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier of the adversarial loss"),
        # ε = 0 is allowed here: the loss is then the clean loss (not a penalty identically zero)
        "epsilon": Interval(Real, 0, None, closed="left", doc="the radius of the ball (0: the clean loss)"),
        "steps": STEPS,
        "step_size": STEP_SIZE,
        "norm": NORM,
        "replace": Boolean(),
        "eval_mode": EVAL_MODE,
        "clip": CLIP,
        "seed": SEED,
    }

    def __init__(self, *, weight: float = 1.0, epsilon: float = 1.0, steps: int = 5, step_size: float | None = None,
                 norm: str = "l2", replace: bool = True, eval_mode: bool = True,
                 clip: tuple[float, float] | None = None, seed: int = 0) -> None:
        super().__init__(weight=weight)   # every argument is checked against `parameters` before this line
        self.epsilon = epsilon
        self.steps = steps
        self.norm = norm
        default_step = 1.5 * self.epsilon / self.steps if self.norm == "l2" else 0.01
        self.step_size = default_step if step_size is None else step_size
        self.replace = replace
        self.eval_mode = eval_mode
        self.clip = clip
        self._range_checked: set[str] = set()  # the unboxed input-range warning: first batch only
        check_ball_in_box(self.name, epsilon, norm, clip)
        self._generator = make_generator(seed)

    @property
    def replaces_loss(self) -> bool:  # type: ignore[override]
        return self.replace

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "epsilon": self.epsilon, "steps": self.steps, "step_size": self.step_size,
                "norm": self.norm, "replace": self.replace}

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        check_search_inputs(self.name, inputs, self.epsilon, self.norm, self.clip, self._range_checked)
        targets = check_targets(targets, inputs, required=True)
        x = inputs.detach()
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets, min_classes=2, owner=self.name)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(wide(forward(z)), targets, reduction="none")

        with inner_mode(model, self.eval_mode):
            start = None
            if self.norm == "linf" and self.epsilon > 0:
                start = random_start(x, self.epsilon, self.norm, self._generator)
            delta = (pgd_maximize(objective, x, epsilon=self.epsilon, steps=self.steps, step_size=self.step_size,
                                  norm=self.norm, delta=start, clip=self.clip)
                     if self.epsilon > 0 else torch.zeros_like(x))
            self.last_passes.add(backward_rows=n * self.steps if self.epsilon > 0 else 0, batch=n)
            value = objective(x + delta).mean()
        self.last_passes.add(backward_rows=n, batch=n)
        return value if value.requires_grad else value + zero_like_parameters(model)
