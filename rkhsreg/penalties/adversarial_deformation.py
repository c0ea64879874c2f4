"""‖f‖²_τ: the deformation-stability lower bound of the RKHS norm.

‖f‖_H ≥ sup_{x, τ} (f(L_τx) − f(x)) / ‖Φ(L_τx) − Φ(x)‖, and the kernel map Φ is stable to small
deformations, so penalising Σ_k sup_{i, τ} (f_k(L_τx_i) − f_k(x_i))² over a budget of small
smooth deformations controls the norm from below.

Two ways to take the sup over τ:

* ``search="random"`` (the paper's): ``num_examples`` examples × ``num_deformations`` random
  smooth deformations each, all pushed through the model without a graph; for each output k the
  pair with the largest (f_k(L_τx) − f_k(x))² wins (the reference code's squared selection).
* ``search="adversarial"``: sign-gradient ascent over the deformation coefficients within
  ‖τ‖∞ ≤ ``max_displacement``, ‖∇τ‖∞ ≤ ``max_gradient`` — zero start on the signed f_k for
  ``mode="per_class"``, random start on ‖f(L_τx) − f(x)‖² for ``mode="joint"`` (its gradient at
  τ = 0 vanishes). As for ‖f‖²_δ, the first step of every (class, example) pair is scored from one
  forward and K input-backward passes on the clean images (chain rule through the image gradient,
  no resampling) and only the ``candidates`` best examples per class continue. Unlike ‖f‖²_δ, the
  steps after the first (signed) one ascend |f_k(L_τx) − f_k(x)|, and the winner is the largest
  |change|: resampling at sub-pixel positions smooths an image, so the clean x is often a local
  max of f_k along every deformation, where a signed ascent stalls with a negative gain.

Either way the selected pairs are re-evaluated with the deformation detached, one forward of
2 rows per class, differentiable w.r.t. the parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._errors import ParameterError
from rkhsreg._params import SEED, AtMost, Interval, OnlyWhen, Options
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.deformation import PADDING_MODES, DeformationParams, deform, sample_params
from rkhsreg.functional.deformation_search import coefficient_gradient, first_step_gain, maximize_deformation
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.selection import top_per_class, true_and_top_classes
from rkhsreg.functional.subsets import NUM_EXAMPLES, pick_examples
from rkhsreg.penalties._common import (CANDIDATES, CLASSES, EVAL_MODE, MODE, STEP_SIZE, STEPS, SeededPenalty,
                                       counting_forward, make_generator, zero_like_parameters)

__all__ = ["AdversarialDeformation"]

SEARCHES = ("random", "adversarial")
Forward = Callable[[torch.Tensor], torch.Tensor]


class AdversarialDeformation(SeededPenalty):
    """‖f‖²_τ = Σ_k sup_{i, τ} (f_k(L_τx_i) − f_k(x_i))² (per class) or sup ‖f(L_τx) − f(x)‖² (joint).

    Rows are assumed independent in the forward pass (true in eval mode, the default).

    Args:
        weight: multiplier λ_st (paper: 0.1).
        max_displacement: budget on ‖τ‖∞ (largest displacement), in pixels.
        max_gradient: budget on ‖∇τ‖∞ (largest spectral norm of the Jacobian of τ).
        grid_size: side of the control grid of the smooth field.
        translation: largest translation in pixels (0: none), at most ``max_displacement`` (a larger value is
            refused; the default 1.0 is cut to a smaller ``max_displacement``).
        search: ``"random"`` (paper) or ``"adversarial"`` (projected sign-gradient ascent).
        num_examples: examples of the batch the sup runs over (drawn from the penalty's generator;
            ``"all"``: the whole batch). Paper: 32.
        num_deformations: random deformations per example (``search="random"`` only; refused with the other
            search). Paper: 31.
        steps: ascent steps (``search="adversarial"`` only).
        step_size: sign-step length in pixels (default 1.5·max_displacement/steps).
        mode: ``"per_class"`` (paper) or ``"joint"``.
        candidates: examples per class that continue the ascent after the first-order scoring, or
            ``"all"`` (exhaustive; ``search="adversarial"``, ``mode="per_class"``).
        classes: ``"all"`` or an int k: only each example's true class and its k top-scoring other
            classes compete (needs targets).
        padding_mode: ``"border"`` or ``"zeros"`` for samples outside the image.
        eval_mode: run the search and the final evaluation with BatchNorm/Dropout in eval mode.
        seed: seed of the penalty's generator (example subsets, random deformations, random starts).

    Example:
        >>> penalty = AdversarialDeformation(weight=0.1, max_displacement=2.0, max_gradient=0.3)  # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)                         # doctest: +SKIP
    """

    name = "adversarial_deformation"
    rkhs_bound = "lower"
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "max_displacement": Interval(Real, 0, None, closed="neither", doc="budget on ‖τ‖∞ in pixels"),
        "max_gradient": Interval(Real, 0, None, closed="left", doc="budget on ‖∇τ‖∞"),
        "grid_size": Interval(Integral, 1, None),
        "translation": AtMost("max_displacement", Interval(Real, 0, None, closed="left",
                                                           doc="largest translation in pixels"),
                              text="a translation moves every pixel by its length, and no pixel moves further than max_displacement"),
        "search": Options(SEARCHES),
        "num_examples": NUM_EXAMPLES,
        "num_deformations": OnlyWhen("search", "random", Interval(Integral, 1, None)),
        "steps": OnlyWhen("search", "adversarial", STEPS),
        "step_size": OnlyWhen("search", "adversarial", STEP_SIZE),
        "mode": MODE,
        "candidates": OnlyWhen("search", "adversarial", OnlyWhen("mode", "per_class", CANDIDATES)),
        "classes": OnlyWhen("mode", "per_class", CLASSES),
        "padding_mode": Options(PADDING_MODES),
        "eval_mode": EVAL_MODE,
        "seed": SEED,
    }

    def __init__(self, *, weight: float = 0.1, max_displacement: float = 2.0, max_gradient: float = 0.3,
                 grid_size: int = 4, translation: float = 1.0, search: str = "random",
                 num_examples: int | str = 32, num_deformations: int = 31, steps: int = 5,
                 step_size: float | None = None, mode: str = "per_class", candidates: int | str = 4,
                 classes: int | str = "all", padding_mode: str = "border", eval_mode: bool = True,
                 seed: int = 0) -> None:
        super().__init__(weight=weight)   # every argument is checked against `parameters` before this line
        if max_gradient == 0 and translation == 0:
            raise ParameterError("adversarial_deformation: max_gradient=0 with translation=0 leaves no deformation "
                                 "(a field with a zero gradient is a translation): the penalty would be zero for "
                                 "every model; pass max_gradient > 0 or translation > 0.",
                                 parameter="max_gradient", value=max_gradient, allowed="a float > 0")
        self.max_displacement = max_displacement
        self.max_gradient = max_gradient
        self.grid_size = grid_size
        self.translation = translation
        self.search = search
        self.num_examples = num_examples
        self.num_deformations = num_deformations
        self.steps = steps
        self.step_size = 1.5 * self.max_displacement / self.steps if step_size is None else step_size
        self.mode = mode
        self.candidates = candidates
        self.classes = classes
        self.padding_mode = padding_mode
        self.eval_mode = eval_mode
        self.seed = seed
        self._generator = make_generator(seed)

    def _config(self) -> dict[str, Any]:
        config = {"weight": self.weight, "max_displacement": self.max_displacement,
                  "max_gradient": self.max_gradient, "grid_size": self.grid_size, "translation": self.translation,
                  "search": self.search, "num_examples": self.num_examples, "mode": self.mode}
        if self.search == "random":
            config["num_deformations"] = self.num_deformations
        else:
            config.update(steps=self.steps, step_size=self.step_size, candidates=self.candidates)
        config["classes"] = self.classes
        return config

    def sample_deformations(self, inputs: torch.Tensor) -> tuple[torch.Tensor, DeformationParams]:
        """Draw what ``search="random"`` evaluates: the examples' indices (m,) and their deformations
        (m·num_deformations, example-major), from the penalty's generator (advancing it).

        Exposed so the random search can be replayed (e.g. from a saved :meth:`state_dict`).
        """
        n, h, w = inputs.shape[0], inputs.shape[-2], inputs.shape[-1]
        rows = pick_examples(n, self.num_examples, self._generator)
        params = sample_params(rows.numel() * self.num_deformations, (h, w),
                               max_displacement=self.max_displacement, max_gradient=self.max_gradient,
                               grid_size=self.grid_size, translation=self.translation, generator=self._generator,
                               device=inputs.device)
        return rows.to(inputs.device), params

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs, exact_dim=4)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        if self.max_displacement == 0:
            return zero_like_parameters(model)
        x = inputs.detach()
        with inner_mode(model, self.eval_mode):
            if self.search == "random":
                return self._random(model, x, targets)
            rows = pick_examples(x.shape[0], self.num_examples, self._generator).to(x.device)
            sub_targets = None if targets is None else targets[rows]
            if self.mode == "joint":
                return self._adversarial_joint(model, x, rows)
            return self._adversarial_per_class(model, x, rows, sub_targets)

    # -- shared ---------------------------------------------------------------------------------------------

    def _slots(self, logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if self.classes == "all":
            return torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
        return true_and_top_classes(logits, targets, self.classes)

    def _value(self, forward: Forward, x_sel: torch.Tensor, params_sel: DeformationParams,
               classes: torch.Tensor | None, n: int) -> torch.Tensor:
        """Σ of squared output changes at the selected pairs (deformation detached), differentiable w.r.t. θ."""
        m = x_sel.shape[0]
        with torch.no_grad():
            moved = deform(x_sel, params_sel, padding_mode=self.padding_mode)
        out = forward(torch.cat([moved, x_sel]))
        self.last_passes.add(backward_rows=2 * m, batch=n)
        diff = out[:m] - out[m:]
        if classes is not None:
            diff = diff.gather(1, classes[:, None])
        return wide(diff).pow(2).sum()

    def _no_grad_forward(self, forward: Forward, z: torch.Tensor, chunk: int) -> torch.Tensor:
        """Forward without a graph in chunks of ``chunk`` rows (memory of one training batch at most)."""
        with torch.no_grad():
            return torch.cat([forward(part) for part in z.split(chunk)])

    # -- the paper's random search --------------------------------------------------------------------------

    def _random(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        n, d = x.shape[0], self.num_deformations
        forward = counting_forward(model, self.last_passes, n, targets, owner=self.name)
        rows, params = self.sample_deformations(x)
        m = rows.numel()
        x_sub = x[rows]
        with torch.no_grad():
            clean = forward(x_sub)
            moved = deform(x_sub.repeat_interleave(d, 0), params, padding_mode=self.padding_mode)
        out = self._no_grad_forward(forward, moved, max(n, 1))
        sq = (wide(out).view(m, d, -1) - wide(clean)[:, None]).pow(2)  # (m, d, K)
        pair_rows = rows.repeat_interleave(d)
        if self.mode == "joint":
            best = sq.sum(-1).flatten().argmax()
            return self._value(forward, x[pair_rows[best]][None], params[int(best)], None, n)
        slots = self._slots(clean, None if targets is None else targets[rows])  # (m, S)
        allowed = torch.zeros(m, sq.shape[-1], dtype=torch.bool, device=sq.device).scatter_(1, slots, True)
        sq = sq.masked_fill(~allowed[:, None, :], float("-inf")).flatten(0, 1)  # (m·d, K)
        best_val, best = sq.max(0)
        classes = torch.nonzero(best_val > float("-inf")).flatten()
        best = best[classes]
        return self._value(forward, x[pair_rows[best]], params[best], classes, n)

    # -- adversarial search ---------------------------------------------------------------------------------

    def _ascend(self, objective: Forward, x: torch.Tensor, start: DeformationParams | None,
                steps: int) -> DeformationParams:
        return maximize_deformation(objective, x, max_displacement=self.max_displacement,
                                    max_gradient=self.max_gradient, steps=steps, step_size=self.step_size,
                                    grid_size=self.grid_size, max_translation=self.translation, start=start,
                                    padding_mode=self.padding_mode)

    def _adversarial_per_class(self, model: nn.Module, x: torch.Tensor, rows: torch.Tensor,
                               targets: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        x_sub = x[rows]
        m, size = x_sub.shape[0], (x.shape[-2], x.shape[-1])
        forward = counting_forward(model, self.last_passes, n, targets, owner=self.name)
        slots = None if self.classes == "all" else (lambda logits: true_and_top_classes(logits, targets, self.classes))

        def first_order(g: torch.Tensor, j: int) -> torch.Tensor:
            coeff = coefficient_gradient(g, x_sub, self.grid_size, padding_mode=self.padding_mode)
            return first_step_gain(coeff, size, max_displacement=self.max_displacement,
                                   max_gradient=self.max_gradient, step_size=self.step_size,
                                   max_translation=self.translation)

        logits, slots, scores = output_gradients(forward, x_sub, slots, reduce=first_order)
        self.last_passes.add(backward_rows=m * slots.shape[1], batch=n)
        keep = top_per_class(scores, slots, m if self.candidates == "all" else self.candidates)
        cand, classes = keep // slots.shape[1], slots.flatten()[keep]
        x_c, clean = x_sub[cand], logits[cand, classes]

        def signed(z: torch.Tensor) -> torch.Tensor:
            return forward(z).gather(1, classes[:, None]).squeeze(1)

        def change(z: torch.Tensor) -> torch.Tensor:
            return (signed(z) - clean).abs()

        # First step on the signed f_k (the step scored above), then on |f_k(L_τx) − f_k(x)|: the
        # ascent follows whichever sign the change takes. Resampling smooths an image, so x is
        # often a local max of f_k along every deformation and a signed ascent alone stalls there.
        theta = self._ascend(signed, x_c, None, 1)
        if self.steps > 1:
            theta = self._ascend(change, x_c, theta, self.steps - 1)
        self.last_passes.add(backward_rows=cand.numel() * self.steps, batch=n)
        with torch.no_grad():
            gains = change(deform(x_c, theta, padding_mode=self.padding_mode))
        best = top_per_class(gains[:, None], classes[:, None], 1)
        return self._value(forward, x_c[best], theta[best], classes[best], n)

    def _adversarial_joint(self, model: nn.Module, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x_sub = x[rows]
        m, size = x_sub.shape[0], (x.shape[-2], x.shape[-1])
        forward = counting_forward(model, self.last_passes, n, owner=self.name)
        with torch.no_grad():
            clean = forward(x_sub)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return wide(forward(z) - clean).pow(2).sum(1)

        start = sample_params(m, size, max_displacement=self.max_displacement, max_gradient=self.max_gradient,
                              grid_size=self.grid_size, translation=self.translation, generator=self._generator,
                              random_magnitude=False, device=x.device)
        start = start.scale(min(1.0, self.step_size / self.max_displacement))
        theta = self._ascend(objective, x_sub, start, self.steps)
        self.last_passes.add(backward_rows=m * self.steps, batch=n)
        with torch.no_grad():
            best = int(objective(deform(x_sub, theta, padding_mode=self.padding_mode)).argmax())
        return self._value(forward, x_sub[best:best + 1], theta[best], None, n)
