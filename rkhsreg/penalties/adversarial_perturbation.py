"""‖f‖²_δ: the adversarial-perturbation lower bound of the RKHS norm.

Paper semantics (``mode="per_class"``): for each output k, the sup over the examples i of the
batch and ‖δ‖ ≤ ε of the signed change f_k(x_i + δ) − f_k(x_i), found by normalised-gradient
PGD from zero (``steps`` = 5, step 1.5ε/steps); the penalty is Σ_k (f_k(x_{i_k} + δ_k) −
f_k(x_{i_k}))² with δ detached.

The reference code runs one PGD per (class, example), K·n rows per step. Here the first PGD step
of every (class, example) pair is taken from one forward and K input-backward passes; its
gradient norm ε‖∇_x f_k(x_i)‖ is the first-order estimate of the pair's value, and only the
``candidates`` best examples of each class continue PGD. Their trajectories are exactly those of
the exhaustive search (``candidates="all"``), so the result equals it whenever the winning
example is among the candidates. PGD pushes at most ``max_rows`` rows (default: the batch size)
through the model at once, so the exhaustive search's K·n rows cost the memory of one batch, not K.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_int, check_model, check_real, check_targets
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.pgd import pgd_maximize, random_start
from rkhsreg.functional.selection import top_per_class, true_and_top_classes
from rkhsreg.penalties._common import (SeededPenalty, check_candidates, check_classes, check_clip, check_mode,
                                       check_norm, check_steps, counting_forward, make_generator,
                                       zero_like_parameters)

__all__ = ["AdversarialPerturbation"]


class AdversarialPerturbation(SeededPenalty):
    """‖f‖²_δ = Σ_k sup_{i, ‖δ‖≤ε} (f_k(x_i+δ) − f_k(x_i))² (per class) or sup ‖f(x+δ) − f(x)‖² (joint).

    Args:
        weight: multiplier λ of the estimate (the paper uses 1: ε sets the strength).
        epsilon: radius of the perturbation ball, in input units (pixels in [0, 1]).
        steps: PGD steps.
        step_size: PGD step length (default 1.5·ε/steps, the paper's).
        norm: ``"l2"`` (paper) or ``"linf"``.
        mode: ``"per_class"`` (paper: one sup per output, summed) or ``"joint"`` (one PGD on the
            squared output difference for all outputs; random start since its gradient is zero at δ=0).
        candidates: examples per class that continue PGD after the first step, or ``"all"``.
        classes: ``"all"`` or an int k: only each example's true class and its k top-scoring other
            classes compete (for many-class models; needs targets).
        eval_mode: run the search and the final evaluation with BatchNorm/Dropout in eval mode.
        clip: optional (low, high) bounds for the perturbed inputs (the paper does not clip).
        seed: seed of the generator for random starts (joint mode).
        max_rows: most (class, example) rows one PGD pass takes (per-class mode; ``None``: the batch size).
            Rows are independent, so the result does not depend on it; only peak memory and speed do.

    Example:
        >>> penalty = AdversarialPerturbation(epsilon=0.5)                 # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "adversarial_perturbation"

    def __init__(self, *, weight: float = 1.0, epsilon: float = 1.0, steps: int = 5, step_size: float | None = None,
                 norm: str = "l2", mode: str = "per_class", candidates: int | str = 4, classes: int | str = "all",
                 eval_mode: bool = True, clip: tuple[float, float] | None = None, seed: int = 0,
                 max_rows: int | None = None) -> None:
        super().__init__(weight=weight)
        self.epsilon = check_real("epsilon", epsilon)
        self.steps = check_steps(steps)
        self.step_size = (1.5 * self.epsilon / self.steps if step_size is None
                          else check_real("step_size", step_size))
        self.norm = check_norm(norm)
        self.mode = check_mode(mode)
        self.candidates = check_candidates(candidates)
        self.classes = check_classes(classes)
        self.eval_mode = bool(eval_mode)
        self.clip = check_clip(clip)
        self.seed = seed
        self.max_rows = None if max_rows is None else check_int("max_rows", max_rows, low=1)
        self._generator = make_generator(seed)

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "epsilon": self.epsilon, "steps": self.steps, "step_size": self.step_size,
                "norm": self.norm, "mode": self.mode, "candidates": self.candidates, "classes": self.classes,
                "max_rows": self.max_rows}

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        if self.epsilon == 0:
            return zero_like_parameters(model)
        with inner_mode(model, self.eval_mode):
            if self.mode == "joint":
                return self._joint(model, inputs.detach())
            return self._per_class(model, inputs.detach(), targets)

    def _per_class(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets)
        slots = None if self.classes == "all" else (lambda logits: true_and_top_classes(logits, targets, self.classes))
        logits, slots, scores = output_gradients(forward, x, slots,
                                                 reduce=lambda g, j: wide(g.flatten(1)).norm(dim=1))
        self.last_passes.add(backward_rows=n * slots.shape[1], batch=n)
        keep = top_per_class(scores, slots, n if self.candidates == "all" else self.candidates)
        rows, classes = keep // slots.shape[1], slots.flatten()[keep]
        x_c, clean = x[rows], logits[rows, classes]
        # PGD from zero on the candidates (the first step repeats the one already scored: one
        # extra pass on K·candidates rows instead of keeping n·K input gradients in memory), in
        # chunks of at most max_rows rows.
        chunk = n if self.max_rows is None else self.max_rows
        deltas, gains = [], []
        for start in range(0, rows.numel(), chunk):
            part = slice(start, start + chunk)

            def objective(z: torch.Tensor, cls: torch.Tensor = classes[part]) -> torch.Tensor:
                return forward(z).gather(1, cls[:, None]).squeeze(1)

            d = pgd_maximize(objective, x_c[part], epsilon=self.epsilon, steps=self.steps,
                             step_size=self.step_size, norm=self.norm, clip=self.clip)
            with torch.no_grad():
                gains.append(objective(x_c[part] + d) - clean[part])
            deltas.append(d)
        delta, gain = torch.cat(deltas), torch.cat(gains)
        self.last_passes.add(backward_rows=rows.numel() * self.steps, batch=n)
        best = top_per_class(gain[:, None], classes[:, None], 1)
        return self._value(forward, x[rows[best]], delta[best], classes[best], n)

    def _value(self, forward, x_sel: torch.Tensor, delta_sel: torch.Tensor, classes: torch.Tensor | None,
               n: int) -> torch.Tensor:
        """Σ of squared output changes at the selected rows, differentiable w.r.t. the parameters."""
        m = x_sel.shape[0]
        out = forward(torch.cat([x_sel + delta_sel, x_sel]))
        self.last_passes.add(backward_rows=2 * m, batch=n)
        diff = out[:m] - out[m:]
        if classes is not None:
            diff = diff.gather(1, classes[:, None])
        return wide(diff).pow(2).sum()

    def _joint(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n)
        with torch.no_grad():
            clean = forward(x)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return wide(forward(z) - clean).pow(2).sum(1)

        start = random_start(x, self.epsilon, self.norm, self._generator,
                             radius_fraction=min(1.0, self.step_size / self.epsilon))
        delta = pgd_maximize(objective, x, epsilon=self.epsilon, steps=self.steps, step_size=self.step_size,
                             norm=self.norm, delta=start, clip=self.clip)
        self.last_passes.add(backward_rows=n * self.steps, batch=n)
        with torch.no_grad():
            best = objective(x + delta).argmax()
        return self._value(forward, x[best:best + 1], delta[best:best + 1], None, n)
