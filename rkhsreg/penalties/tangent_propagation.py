"""‖D_τ f‖²: tangent propagation, the first-order version of the deformation-stability penalty.

For a tangent vector t = d/dh L_{hτ}x at h = 0, ∇f_k(x)·t is the derivative of f_k along the
deformation. Paper semantics (TangentGradientPenalty, ``mode="per_class"``): ``num_examples``
examples, ``num_tangents`` tangent vectors t_{i,d} each; for every output k,
i_k = argmax_i Σ_d (∇f_k(x_i)·t_{i,d})², and the penalty is Σ_k Σ_d (∇f_k(x_{i_k})·t_{i_k,d})².

Tangent vectors here: the two axis translations of ``max_displacement`` pixels, and random smooth
fields of :mod:`rkhsreg.functional.deformation` placed on the boundary of the budget, drawn per
example from the penalty's own generator; t = −∇x·τ with the derivative of the same bicubic
interpolation that :func:`~rkhsreg.functional.deformation.deform` uses.

Cost: the selection takes input-only gradients of the m examples (one forward, one backward per
class, reduced at once to the D dot products); only the selected rows are recomputed with
``create_graph=True`` (double back-propagation on at most K rows).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._errors import ParameterError
from rkhsreg._params import SEED, Boolean, Interval, Options
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.deformation import PADDING_MODES, displacement, sample_params, tangent_vectors
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.second_order import differentiable_input_gradient, twice_differentiable
from rkhsreg.functional.selection import true_and_top_classes, worst_rows
from rkhsreg.functional.subsets import NUM_EXAMPLES, pick_examples
from rkhsreg.penalties._common import CLASSES, EVAL_MODE, MODE, SeededPenalty, counting_forward, make_generator

__all__ = ["TangentPropagation"]

Forward = Callable[[torch.Tensor], torch.Tensor]


class TangentPropagation(SeededPenalty):
    """‖D_τ f‖² = Σ_k max_i Σ_d (∇f_k(x_i)·t_{i,d})² (per class) or max_i Σ_d ‖J_f(x_i) t_{i,d}‖² (joint).

    Rows are assumed independent in the forward pass (true in eval mode, the default).

    Args:
        weight: multiplier λ_tan (paper: 0.1).
        num_examples: examples of the batch the max runs over (drawn from the penalty's generator;
            ``"all"``: the whole batch). Paper: 32.
        num_tangents: tangent vectors per example, the two translations included when
            ``translations=True``. Paper: 30.
        max_displacement: size of the deformations the tangents are taken along: ‖τ‖∞ in pixels
            (a translation of ``max_displacement`` pixels, random fields scaled onto the budget).
        max_gradient: budget on ‖∇τ‖∞ of the random fields.
        grid_size: side of the control grid of the random fields.
        translations: include the two axis translations among the tangent vectors.
        mode: ``"per_class"`` (paper) or ``"joint"``.
        classes: ``"all"`` or an int k: each example's true class and its k top-scoring other
            classes (needs targets).
        method: ``"first_order"`` (t = −∇x·τ) or ``"finite_difference"`` (of the resampling).
        padding_mode: ``"border"`` or ``"zeros"`` (how the image is extended outside its edges).
        eval_mode: compute with BatchNorm/Dropout in eval mode.
        seed: seed of the penalty's generator (example subsets and random fields).

    Example:
        >>> penalty = TangentPropagation(weight=0.1)                       # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "tangent_propagation"
    rkhs_bound = "lower"
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "num_examples": NUM_EXAMPLES,
        "num_tangents": Interval(Integral, 1, None),
        "max_displacement": Interval(Real, 0, None, closed="neither", doc="‖τ‖∞ in pixels"),
        "max_gradient": Interval(Real, 0, None, closed="left", doc="budget on ‖∇τ‖∞"),
        "grid_size": Interval(Integral, 1, None),
        "translations": Boolean(),
        "mode": MODE,
        "classes": CLASSES,
        "method": Options(("first_order", "finite_difference")),
        "padding_mode": Options(PADDING_MODES),
        "eval_mode": EVAL_MODE,
        "seed": SEED,
    }

    def __init__(self, *, weight: float = 0.1, num_examples: int | str = 32, num_tangents: int = 30,
                 max_displacement: float = 1.0, max_gradient: float = 0.3, grid_size: int = 4,
                 translations: bool = True, mode: str = "per_class", classes: int | str = "all",
                 method: str = "first_order", padding_mode: str = "border", eval_mode: bool = True,
                 seed: int = 0) -> None:
        super().__init__(weight=weight)   # every argument is checked against `parameters` before this line
        self.num_examples = num_examples
        self.translations = translations
        self.num_tangents = num_tangents
        if self.translations and self.num_tangents < 2:
            raise ParameterError(f"tangent_propagation: num_tangents={num_tangents!r} is out of range; with "
                                 "translations=True it counts the two translations and must be >= 2.",
                                 parameter="num_tangents", value=num_tangents, allowed="an int >= 2")
        self.max_displacement = max_displacement
        self.max_gradient = max_gradient
        self.grid_size = grid_size
        self.mode = mode
        self.classes = classes
        self.method = method
        self.padding_mode = padding_mode
        self.eval_mode = eval_mode
        self.seed = seed
        self._generator = make_generator(seed)

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "num_examples": self.num_examples, "num_tangents": self.num_tangents,
                "max_displacement": self.max_displacement, "max_gradient": self.max_gradient,
                "grid_size": self.grid_size, "translations": self.translations, "mode": self.mode,
                "classes": self.classes}

    def sample_tangents(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw the examples (m,) and their tangent vectors (m, num_tangents, C, H, W), advancing the generator.

        Exposed so a call can be replayed (e.g. from a saved :meth:`state_dict`) or the tangents inspected.
        """
        n, h, w = inputs.shape[0], inputs.shape[-2], inputs.shape[-1]
        rows = pick_examples(n, self.num_examples, self._generator).to(inputs.device)
        m, d = rows.numel(), self.num_tangents
        d_random = d - 2 if self.translations else d
        fields = sample_params(m * d_random, (h, w), max_displacement=self.max_displacement,
                               max_gradient=self.max_gradient, grid_size=self.grid_size, translation=0.0,
                               generator=self._generator, random_magnitude=False, device=inputs.device)
        tau = displacement(fields, (h, w)).view(m, d_random, 2, h, w)
        if self.translations:
            shifts = torch.eye(2, device=inputs.device) * self.max_displacement
            shifts = shifts[:, :, None, None].expand(2, 2, h, w)
            tau = torch.cat([shifts.expand(m, 2, 2, h, w), tau], dim=1)
        x = inputs.detach()[rows]
        return rows, tangent_vectors(x, tau, method=self.method, padding_mode=self.padding_mode)

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs, exact_dim=4)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        n = inputs.shape[0]
        rows, tangents = self.sample_tangents(inputs)
        x = inputs.detach()[rows]
        m = rows.numel()
        sub_targets = None if targets is None else targets[rows]
        forward = counting_forward(model, self.last_passes, n, targets, owner=self.name)
        slots = (None if self.classes == "all"
                 else (lambda logits: true_and_top_classes(logits, sub_targets, self.classes)))

        def dots(g: torch.Tensor, j: int) -> torch.Tensor:
            return torch.einsum("nchw,ndchw->nd", wide(g), wide(tangents))

        with inner_mode(model, self.eval_mode):
            logits, slots, products = output_gradients(forward, x, slots, reduce=dots)  # (m, S, D)
            self.last_passes.add(backward_rows=m * slots.shape[1], batch=n)
            scores = products.pow(2).sum(-1)  # (m, S)
            sel, classes = worst_rows(scores, slots, self.mode)
            return self._value(forward, x[sel], tangents[sel], classes, n)

    def _value(self, forward: Forward, x_sel: torch.Tensor, t_sel: torch.Tensor, classes: torch.Tensor,
               n: int) -> torch.Tensor:
        """Σ_r Σ_d (∇f_{c_r}(x_r)·t_{r,d})², differentiable w.r.t. the parameters (double backprop).

        One row per (example, class) pair: rows are independent, so one backward of Σ_r f_{c_r}(z_r)
        gives every pair's input gradient in its own row.
        """
        z = x_sel.clone().requires_grad_(True)
        with twice_differentiable():
            picked = forward(z).gather(1, classes[:, None]).sum()
        g = differentiable_input_gradient(picked, z, penalty=self.name)
        self.last_passes.add(backward_rows=3 * z.shape[0], batch=n)
        products = (wide(g)[:, None] * wide(t_sel)).flatten(2).sum(-1)
        return products.pow(2).sum()
