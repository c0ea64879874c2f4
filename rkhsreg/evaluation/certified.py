"""Certified robust accuracy from a Lipschitz upper bound: a lower bound on the true robust accuracy.

If the logit map x ↦ f(x) ∈ R^K is L-Lipschitz in ℓ2, each logit difference f_y − f_j is
√2·L-Lipschitz (the vector e_y − e_j has norm √2), so an example classified correctly with margin
m = f_y(x) − max_{j≠y} f_j(x) keeps its class for every ‖δ‖₂ < m / (√2·L). For ℓ∞,
‖δ‖₂ ≤ √D·‖δ‖∞ gives the radius m / (√2·L·√D) (D input dimensions). L comes from
:func:`rkhsreg.functional.lipschitz.lipschitz_upper_bound`: the product of the layers' true operator
norms (convolutions at their input resolution, BatchNorm in eval mode folded, average pooling and
ReLU-like activations with their exact constants). Models it cannot bound (residual connections,
unknown layers) are refused with its message. Box constraints only shrink the adversary's set, so
the radius also holds for clipped attacks.

The operator norms are computed by an iteration that converges from below, so L is inflated by a
relative ``safety`` margin (default 1e-3) before use.

Example:
    >>> acc = certified_accuracy(model, (x, y), norm="l2", epsilons=[0.1, 0.3])  # doctest: +SKIP
    [0.62, 0.11]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import (check_class_range, check_in_box, check_inputs, check_model, check_num_classes,
                             check_targets)
from rkhsreg._errors import InputError, ParameterError
from rkhsreg._params import Interval, Options, validate_param, validates
from rkhsreg.evaluation._data import BOUNDS, RADII, collect
from rkhsreg.evaluation._model import SINGLE_SCORE, model_device, predict
from rkhsreg.functional._context import restore_buffers, restore_modes

__all__ = ["certified_radii", "certified_accuracy", "attach_certified", "lipschitz_constant", "lipschitz_lower_bound"]


def lipschitz_constant(model: nn.Module, input_shape: Sequence[int], *, safety: float = 1e-3) -> float:
    """ℓ2 Lipschitz upper bound of ``model`` (eval mode), inflated by ``safety``; refuses unknown layers.

    Raises:
        InputError: the model is not a chain of layers with known constants (the message names the layer).
    """
    from rkhsreg.functional.lipschitz import lipschitz_upper_bound

    safety = validate_param("safety", safety, SAFETY)
    try:
        with restore_buffers(model):
            bound = lipschitz_upper_bound(model, tuple(input_shape))
    except InputError as exc:
        raise InputError(f"no certified accuracy for this model: {exc} The empirical (attack) curve is still "
                         "valid; pass certify=False to get it alone.") from exc
    return float(bound) * (1.0 + safety)


SAFETY = Interval(Real, 0, None, doc="relative inflation of the computed bound")
LIPSCHITZ = [None, Interval(Real, 0, None, closed="neither", doc="a known ℓ2 Lipschitz bound")]


@validates({"norm": Options(("l2", "linf")), "lipschitz": LIPSCHITZ, "batch_size": Interval(Integral, 1, None),
            "safety": SAFETY})
def certified_radii(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, norm: str = "l2",
                    lipschitz: float | None = None, batch_size: int = 256, safety: float = 1e-3) -> torch.Tensor:
    """Per-example certified radius (0 for misclassified examples), float64 on the CPU.

    Args:
        model: the classifier (evaluated in eval mode; modes restored).
        inputs: (N, ...) inputs on any device.
        labels: (N,) classes.
        norm: ``"l2"`` or ``"linf"``.
        lipschitz: a known ℓ2 Lipschitz bound of the logit map (default: computed).
        batch_size: forward batch size.
        safety: relative inflation of the computed bound.

    Raises:
        InputError: ``labels`` are not class indices of the model's K scores (the shared contract of
            :mod:`rkhsreg._checks`), or the model has no computable bound (``lipschitz=None``).
        ParameterError: a given ``lipschitz`` is below a lower bound measured on ``inputs`` (see
            :func:`lipschitz_lower_bound`): the certificate would be unsound.

    Example:
        >>> r = certified_radii(model, x, y)  # doctest: +SKIP
    """
    check_model(model)          # the options are checked by @validates
    inputs = check_inputs(inputs)
    labels = check_targets(labels, inputs, required=True, name="labels")
    if lipschitz is None:
        return _radii(model, inputs, labels, norm, lipschitz_constant(model, tuple(inputs.shape[1:]), safety=safety),
                      batch_size)
    return _radii(model, inputs, labels, norm, lipschitz, batch_size, given=True)


def _radii(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, norm: str, constant: float,
           batch_size: int, *, given: bool = False) -> torch.Tensor:
    """:func:`certified_radii` for a Lipschitz constant ``constant``; ``given``: the user's (``lipschitz=``), checked
    against a lower bound measured on ``inputs``."""
    with restore_modes(model), restore_buffers(model):   # a forward that writes a buffer leaves no trace
        model.eval()
        logits = predict(model, inputs, batch_size=batch_size, device=model_device(model)).double()
    check_num_classes(logits.shape[1], "certified_radii", SINGLE_SCORE)
    labels = check_class_range(labels.cpu().long(), logits.shape[1], name="labels")
    if given:
        lower, where = lipschitz_lower_bound(model, inputs, labels, logits)
        if constant < lower * (1 - 1e-3):       # float32 rounding of the measured gradients
            raise ParameterError(f"lipschitz={constant!r} is below the model's ℓ2 Lipschitz constant: {where} gives "
                                 f"{lower:.6g}, a lower bound every valid Lipschitz constant exceeds, so the "
                                 "certificate would be unsound. Pass a true upper bound (e.g. the product of the "
                                 "layers' operator norms), or lipschitz=None to compute one.", parameter="lipschitz",
                                 value=constant, allowed=f"a Lipschitz upper bound of the model, >= {lower:.6g}")
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], -math.inf).amax(1)
    margin = (true - others).clamp(min=0.0)
    radius = margin / (math.sqrt(2.0) * constant)
    if norm == "linf":
        radius = radius / math.sqrt(inputs[0].numel())
    return radius


@validates({"norm": Options(("l2", "linf")), "epsilons": RADII, "n_examples": [None, Interval(Integral, 1, None)],
            "batch_size": Interval(Integral, 1, None), "lipschitz": LIPSCHITZ, "safety": SAFETY,
            "bounds": [None, BOUNDS]})
def certified_accuracy(model: nn.Module, data: Any, *, norm: str = "l2", epsilons: Sequence[float],
                       n_examples: int | None = None, batch_size: int = 256, lipschitz: float | None = None,
                       safety: float = 1e-3, bounds: tuple[float, float] | None = (0.0, 1.0)) -> list[float]:
    """Fraction of examples whose certified radius is at least ε, for each ε of ``epsilons`` in the order given.

    An example counts at ε when it is classified correctly and margin / (√2·L) ≥ ε (ℓ2). This is a
    lower bound on the true robust accuracy, as the attack curve is an upper bound.

    ``bounds`` is the box the inputs live in, as for :func:`~rkhsreg.evaluation.evaluate_robustness`: inputs
    outside it (0–255 images with the default (0, 1)) are refused, since ε is measured in those units; pass
    ``bounds=None`` for inputs with no box.

    Example:
        >>> certified_accuracy(model, (x, y), epsilons=[0.0, 0.1])  # doctest: +SKIP
        [0.97, 0.40]
    """
    eps = epsilons              # the options are checked by @validates
    inputs, labels = collect(data, n_examples, owner="certified_accuracy")
    check_in_box(inputs, bounds)
    radii = certified_radii(model, inputs, labels, norm=norm, lipschitz=lipschitz, batch_size=batch_size,
                            safety=safety)
    correct = _correct(model, inputs, labels, batch_size)
    return [float((correct & (radii >= e)).double().mean()) for e in eps]


def lipschitz_lower_bound(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, *,
                          examples: int = 16, pairs: int = 32) -> tuple[float, str]:
    """A cheap lower bound on the ℓ2 Lipschitz constant of ``model``'s logit map, and what gave it.

    Two measurements every valid constant L exceeds: ‖f(x_i) − f(x_j)‖ / ‖x_i − x_j‖ over the pairs of the first
    ``pairs`` examples (``logits`` are their scores, already computed), and ‖∇ₓ(f_y − f_j)(x)‖ / √2 at the first
    ``examples`` (j the runner-up class; the unit vector (e_y − e_j)/√2 times the Jacobian has norm at most L). A
    model whose gradient cannot be taken keeps the first.

    Example:
        >>> lipschitz_lower_bound(model, x, y, model(x))  # doctest: +SKIP
        (0.84, 'the input gradient of (f_2 − f_0) / √2 at example 3')
    """
    lower, where = 0.0, "no pair of examples"
    rows = min(pairs, inputs.shape[0])
    if rows > 1:
        flat = inputs[:rows].detach().cpu().double().flatten(1)
        apart = torch.cdist(flat, flat)
        moved = torch.cdist(logits[:rows].double(), logits[:rows].double())
        ratio = torch.where(apart > 0, moved / apart.clamp_min(1e-300), torch.zeros_like(apart))
        best = int(ratio.argmax())
        if float(ratio.flatten()[best]) > 0:
            lower = float(ratio.flatten()[best])
            where = f"‖f(x_i) − f(x_j)‖ / ‖x_i − x_j‖ at examples {best // rows} and {best % rows}"
    if logits.shape[1] < 2:
        return lower, where
    device = model_device(model)
    take = min(examples, inputs.shape[0])
    x = inputs[:take].detach().to(device).clone().requires_grad_(True)
    y = labels[:take].to(device)
    runner = logits[:take].scatter(1, labels[:take, None], -math.inf).argmax(1).to(device)
    try:
        with restore_modes(model), restore_buffers(model), torch.enable_grad():
            model.eval()
            out = model(x)
            margin = out.gather(1, y[:, None]).sum() - out.gather(1, runner[:, None]).sum()
            (grad,) = torch.autograd.grad(margin, x)
    except (RuntimeError, TypeError):   # no gradient through this model: the pairs' bound only
        return lower, where
    norms = grad.detach().double().flatten(1).norm(dim=1).cpu() / math.sqrt(2.0)
    i = int(norms.argmax())
    if float(norms[i]) > lower:
        lower = float(norms[i])
        where = f"the input gradient of (f_{int(y[i])} − f_{int(runner[i])}) / √2 at example {i}"
    return lower, where


def _correct(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> torch.Tensor:
    with restore_modes(model), restore_buffers(model):   # a forward that writes a buffer leaves no trace
        model.eval()
        logits = predict(model, inputs, batch_size=batch_size, device=model_device(model))
    return logits.argmax(1) == labels.cpu()


def attach_certified(result: Any, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                     device: torch.device, lipschitz: float | None = None) -> None:
    """Fill ``result.certified_*`` and ``result.lipschitz_constant`` (used by ``evaluate_robustness``).

    Certified accuracy at ε counts examples correctly classified with radius ≥ ε, and is capped by
    the empirical accuracy example by example (a certified example is never found broken unless the
    bound is wrong, in which case the result records it in ``sanity``). ``lipschitz``: the model's bound when
    already computed (by :func:`lipschitz_constant`).
    """
    constant = lipschitz_constant(model, tuple(inputs.shape[1:])) if lipschitz is None else float(lipschitz)
    radii = _radii(model, inputs, labels, result.norm, constant, batch_size)
    ok = result.correct & (radii > 0)
    result.lipschitz_constant = constant
    result.certified_radii = torch.where(result.correct, radii, torch.zeros_like(radii))
    result.certified_accuracy = [float((ok & (radii >= e)).double().mean()) for e in result.epsilons]
    contradicted = int((result.correct & (radii > result.distances)).sum())
    checks = result.sanity.setdefault("checks", {})
    checks["certified_below_empirical"] = {
        "passed": contradicted == 0,
        "detail": f"{contradicted} examples have a certified radius above a distance at which an attack broke them"}
    if contradicted:
        import warnings

        from rkhsreg.evaluation.sanity import RobustnessWarning
        message = (f"{contradicted} examples were certified beyond a radius at which an attack broke them: the "
                   "Lipschitz bound is wrong for this model (a layer whose constant is not what it seems).")
        result.sanity.setdefault("warnings", []).append(message)
        warnings.warn(message, RobustnessWarning, stacklevel=3)
