"""Argument checks shared by every plugin: one message format, parameter named first."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from rkhsreg._errors import InputError, InputRangeWarning, ProbabilityOutputWarning
from rkhsreg._params import SEED, Device, Interval, Options, validate_param


def check_real(name: str, value: Any, *, low: float | None = 0.0, strict: bool = False,
               high: float | None = None) -> float:
    """Return ``value`` as a float after checking it is a finite number in range.

    A thin use of the one validator (:func:`rkhsreg._params.validate_param` with an
    :class:`~rkhsreg._params.Interval`); plugins declare ``parameters`` instead of calling it.

    Args:
        name: the parameter's name, used in the message.
        value: what the user gave.
        low: smallest allowed value (``None``: unbounded).
        strict: whether ``low`` itself is excluded.
        high: largest allowed value (``None``: unbounded).

    Raises:
        ParameterError: naming ``name``, the value and the allowed range.
    """
    return validate_param(name, value, Interval(Real, low, high, closed="right" if strict else "both"))


def check_int(name: str, value: Any, *, low: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= low`` (booleans refused, numpy ints taken)."""
    return validate_param(name, value, Interval(Integral, low, None, closed="left"))


def check_seed(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking it is a seed: an integer in [0, 2**63) (``SEED``)."""
    return validate_param(name, value, SEED)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` after checking it is one of ``allowed``."""
    return validate_param(name, value, Options(tuple(allowed)))


def eager(model: Any) -> Any:
    """The module behind a ``torch.compile`` one (same parameters), else ``model`` itself.

    A penalty keeps a forward graph for several input-gradient passes or differentiates an input gradient
    again; graphs compiled by ``torch.compile`` allow neither (their backward frees its buffers, and has no
    double backward). So penalties run the eager module, which shares the compiled one's parameters; the
    training step's own forward stays compiled.
    """
    compiled = type(model).__name__ == "OptimizedModule" and type(model).__module__.startswith("torch._dynamo")
    inner = getattr(model, "_orig_mod", None) if compiled else None
    return inner if isinstance(inner, nn.Module) else model


def check_model(model: Any) -> nn.Module:
    """Check ``model`` is an ``nn.Module`` with at least one parameter; returns the module to work on
    (:func:`eager`: the one behind a ``torch.compile`` model, so layer names do not depend on compiling)."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model={type(model).__name__} is not a torch.nn.Module; pass the network itself.")
    if next(model.parameters(), None) is None:
        raise InputError("model has no parameters: a penalty on it is a constant with no gradient; "
                         "pass the trainable network.")
    return eager(model)


def check_inputs(inputs: Any, *, min_dim: int = 2, exact_dim: int | None = None, name: str = "inputs") -> torch.Tensor:
    """Check ``inputs`` is a non-empty, finite, floating-point batch of the right rank (``name``: the word the
    messages use, e.g. ``"probe"``)."""
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"{name}={type(inputs).__name__} is not a tensor; pass a float tensor of shape (N, ...).")
    if not inputs.is_floating_point():
        raise InputError(f"{name} has dtype {inputs.dtype}; a floating-point tensor is required "
                         "(convert images with .float() / 255 or a torchvision transform).")
    if exact_dim is not None and inputs.dim() != exact_dim:
        raise InputError(f"{name} has shape {tuple(inputs.shape)} (rank {inputs.dim()}); this plugin needs "
                         f"rank {exact_dim} (N, C, H, W).")
    if inputs.dim() < min_dim:
        raise InputError(f"{name} has shape {tuple(inputs.shape)} (rank {inputs.dim()}); a batch of rank "
                         f">= {min_dim} (N, ...) is required.")
    if inputs.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (N=0); pass at least one example.")
    bad = int((~torch.isfinite(inputs.detach())).sum())
    if bad:  # the policy: non-finite inputs are refused, never turned into a finite penalty or accuracy
        raise InputError(f"{name} contains {bad} non-finite value(s) (NaN or inf) in a batch of shape "
                         f"{tuple(inputs.shape)}; rkhsreg refuses them rather than return a meaningless number. "
                         f"Find them with torch.isfinite({name}) and fix or drop those examples.")
    return inputs


def check_in_box(inputs: torch.Tensor, bounds: tuple[float, float] | None, *, name: str = "bounds") -> None:
    """The one contract for inputs and a declared box (``clip`` of the penalties, ``bounds`` of the evaluators
    and the certificate): every value inside ``[low, high]`` (up to 1e-6 of its width), else an error.

    An image batch in 0–255 given with a [0, 1] box is the usual case: the ε of a search or a certificate means
    nothing there, and a search would clip the clean inputs themselves.

    Raises:
        InputError: naming the inputs' range, the box and how to fix it.
    """
    if bounds is None:
        return
    values = inputs.detach()
    if not bool(torch.isfinite(values).all()):
        raise InputError(f"inputs hold {int((~torch.isfinite(values)).sum())} nan or inf values; pass finite inputs.")
    low, high = float(values.min()), float(values.max())
    slack = 1e-6 * (bounds[1] - bounds[0])
    if low < bounds[0] - slack or high > bounds[1] + slack:
        hint = " (images in 0–255? divide by 255)" if high > 1.5 and bounds[1] <= 1 else ""
        raise InputError(f"inputs range over [{low:.4g}, {high:.4g}], outside {name}={tuple(bounds)!r}{hint}; "
                         f"pass the box the inputs live in ({name}=(low, high)), and keep any normalisation inside "
                         "the model.")


def warn_unboxed_range(owner: str, inputs: torch.Tensor, epsilon: float, norm: str) -> None:
    """The box contract of :func:`check_in_box` for a search without a box (``clip=None``), as a warning from the
    batch's observed range ``[min, max]`` (no forward pass):

    * images in 0–255 (a batch of rank >= 4, ``min >= 0``, ``max <= 255``, and ``max > 20``, or ``max > 2`` with integer values): ε is
      in the inputs' units, so the ball is 255 times smaller than meant. Standardised data (mean 0, std 1,
      values in about [-3, 3]) goes below 0 and is not taken for pixels.
    * a ball covering the batch's whole range: ℓ∞ ``ε >= max − min``, ℓ2 ``ε >= (max − min)·√d`` (d the size of
      one example), like the box check of ``clip`` (most often 8 meant as 8/255).

    Raises nothing; warns with :class:`~rkhsreg.InputRangeWarning` (the caller says it once).
    """
    values = inputs.detach()
    low, high = (float(v) for v in torch.aminmax(values))
    width = high - low
    image = values.dim() >= 4  # (N, C, H, W): feature vectors in other units are not taken for pixels
    if image and low >= 0 and 2 < high <= 255 and (high > 20 or bool(torch.equal(values, values.round()))):
        warnings.warn(f"{owner}: inputs range over [{low:.4g}, {high:.4g}] with clip=None: this looks like 0–255 "
                      f"pixels, and epsilon={epsilon:g} is in the inputs' units: 1/255 of what it means on [0, 1] "
                      "images. Divide the images by 255 (keep any normalisation inside "
                      "the model, e.g. rkhsreg.Normalize), or pass clip=(0, 255) to state the box; said once.",
                      InputRangeWarning, stacklevel=5)
        return
    reach = width if norm == "linf" else width * math.sqrt(values[0].numel())
    if width > 0 and epsilon >= reach:
        what = "max − min" if norm == "linf" else f"(max − min)·√{values[0].numel()}"
        warnings.warn(f"{owner}: epsilon={epsilon:g} with norm={norm!r} covers the inputs' whole range [{low:.4g}, "
                      f"{high:.4g}] ({what} = {reach:.4g}) with clip=None: the search can move an example to any "
                      "input, not to a neighbour. epsilon is in the inputs' units (images in [0, 1] with ℓ∞: "
                      "8/255, not 8); pass clip=(low, high) to have this refused instead; said once.",
                      InputRangeWarning, stacklevel=5)


def check_targets(targets: Any, inputs: torch.Tensor, *, required: bool, name: str = "targets") -> torch.Tensor | None:
    """Check ``targets`` are class indices of shape (N,) matching ``inputs``; returned as int64 (any integer dtype
    is accepted: int32 labels from numpy or a data set are class indices all the same)."""
    if targets is None:
        if required:
            raise InputError(f"{name}=None, but this plugin needs class indices of shape (N,).")
        return None
    if not isinstance(targets, torch.Tensor):
        raise InputError(f"{name}={type(targets).__name__} is not a tensor; pass class indices of shape (N,).")
    if targets.dim() != 1 or targets.shape[0] != inputs.shape[0]:
        raise InputError(f"{name} has shape {tuple(targets.shape)}; class indices of shape ({inputs.shape[0]},) "
                         "matching the batch are required.")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise InputError(f"{name} has dtype {targets.dtype}; integer class indices are required.")
    return targets if targets.dtype == torch.int64 else targets.long()


def _version(tensor: torch.Tensor) -> int | None:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors have no version counter
        return None


def call_model(model: Any, inputs: torch.Tensor) -> Any:
    """``model(inputs)``, refusing a forward that modifies its input in place or whose output is cut from its input
    (the inputs require grad, the output does not: ``.detach()`` or ``torch.no_grad()`` in forward), and naming the
    inputs' fault when the forward fails because of them (:func:`explain_forward_error`: dtype, device, rank,
    channels, a size too small for the model).

    A search evaluates the model at ``x + δ`` and keeps ``x`` (and ``δ``) for the next step: a forward that
    writes into its input (``nn.ReLU(inplace=True)`` or ``x.mul_(...)`` as its first operation) silently changes
    them. Detected with the tensor's version counter (free).

    Raises:
        InputError: saying what happened and how to fix it.
    """
    before = _version(inputs)
    try:
        out = model(inputs)
    except RuntimeError as exc:
        explain_forward_error(model, inputs, exc)
        raise
    if before is not None and _version(inputs) != before:
        raise InputError("the model's forward modified its input in place (an in-place operation such as "
                         "nn.ReLU(inplace=True), x.clamp_() or x.mul_() applied to the input itself): rkhsreg "
                         "reuses the inputs after each forward, so they would be silently corrupted; make that "
                         "operation out of place (inplace=False) or start forward with x = x.clone().")
    if (isinstance(out, torch.Tensor) and out.is_floating_point() and not out.requires_grad
            and inputs.requires_grad and torch.is_grad_enabled()):
        raise InputError(f"the model's output (shape {tuple(out.shape)}) is not connected to its input: the inputs "
                         "require grad, but the output does not depend differentiably on them, so no gradient with "
                         "respect to the input exists (penalties and gradient attacks need one). " + GRAPH_CUT)
    return out


#: how a forward loses the autograd graph, and the fix (said by every check that finds a graph cut)
GRAPH_CUT = ("Something in forward cuts the graph: .detach(), a torch.no_grad() block, a .numpy()/.item()/.tolist() "
             "round trip, or a non-differentiable step (argmax, rounding); remove it from forward, or replace it "
             "with a differentiable (straight-through) approximation.")


def check_trainable_value(owner: str, value: torch.Tensor, model: Any) -> None:
    """Refuse a penalty value that cannot train the model: the caller records gradients and the model has
    trainable parameters, but the value does not depend on any of them (a forward that detaches its output makes
    a search that needs no input gradient — a random deformation search — return a constant, silently)."""
    if not isinstance(value, torch.Tensor) or value.requires_grad or not isinstance(model, nn.Module):
        return
    if any(p.requires_grad for p in model.parameters()):
        raise InputError(f"{owner}: the penalty's value does not depend on the model's trainable parameters, so "
                         "adding it to the loss would train nothing (its gradient is zero). " + GRAPH_CUT)


#: torch's message for a convolution given the wrong number of channels
_CHANNELS = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels")
_CONV_RANK = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


def _first_convolution(model: nn.Module) -> tuple[str, nn.Module, int] | None:
    """``(name, module, spatial dims)`` of the model's first convolution in module order, or None."""
    for name, module in model.named_modules():
        for kind, dims in _CONV_RANK.items():
            if isinstance(module, kind):
                return name, module, dims
    return None


#: torch's messages for a spatial size that a pooling, convolution or padding layer cannot reduce further
_TOO_SMALL = re.compile(r"Output size is too small|Kernel size can't be greater than actual input size|"
                        r"smaller than kernel size|Padding size should be less than the corresponding input dimension")


def _failing_layer(model: nn.Module, inputs: torch.Tensor) -> tuple[str, nn.Module, tuple[int, ...]] | None:
    """``(name, module, input shape)`` of the innermost module whose forward fails on one example of ``inputs``, or
    None if that forward passes. One more forward, run only after a failure: eval mode, no_grad, every module's
    mode and every buffer restored."""
    from rkhsreg.functional._context import restore_buffers, restore_modes

    running: list[tuple[str, nn.Module, tuple[int, ...]]] = []   # modules entered and not yet left

    def enter(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            running.append((name, module, tuple(first.shape) if first is not None else ()))
        return hook

    def leave(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        running.pop()

    handles = []
    for name, module in model.named_modules():
        handles += [module.register_forward_pre_hook(enter(name)), module.register_forward_hook(leave)]
    try:
        with torch.no_grad(), restore_modes(model), restore_buffers(model):
            model.eval()
            model(inputs[:1].detach())
    except RuntimeError:
        return running[-1] if running else None
    finally:
        for handle in handles:
            handle.remove()
    return None


def _explain_too_small(model: nn.Module, inputs: torch.Tensor, first_line: str) -> str:
    """The message for inputs whose spatial size the model's pooling/strided layers reduce below one pixel."""
    shape = tuple(inputs.shape)
    size = "×".join(map(str, shape[2:] if len(shape) > 2 else shape[1:]))
    failing = _failing_layer(model, inputs)
    where = ""
    if failing is not None:
        name, layer, got = failing
        what = repr(layer) if not any(layer.children()) else type(layer).__name__
        reached = "×".join(map(str, got[2:])) if len(got) > 2 else str(got)
        where = (f": its layer {name or type(layer).__name__!r} ({what}) gets them at {reached} (one example's "
                 f"input there has shape {got}), too small for it")
    return (f"inputs of {size} (shape {shape}) are too small for the model{where}. Pass inputs of the size the model "
            f"was built for (resize them, e.g. torchvision.transforms.Resize), or build the model for {size} inputs "
            f"(fewer pooling or strided layers). (torch: {first_line})")


def explain_forward_error(model: Any, inputs: torch.Tensor, exc: RuntimeError) -> None:
    """The one contract between inputs and a model, checked when the model's forward has failed (no cost
    otherwise): raise an :class:`InputError` naming the inputs' fault when the failure is theirs, else return
    (the caller re-raises ``exc``).

    Named: a forward writing into a leaf input in place; inputs on another device or of another dtype than the
    parameters; one example without its batch dimension (rank one less than the first convolution takes);
    channels-last (NHWC) images given to a channels-first convolution; another number of channels; images too
    small for the model's pooling or strided layers (the layer where their size runs out is found by one more
    forward of one example, on this failure only).
    """
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())) or not isinstance(inputs, torch.Tensor):
        return
    text = str(exc)
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "leaf Variable that requires grad is being used in an in-place operation" in text:
        raise InputError("the model's forward modified its input in place (an in-place operation such as "
                         "nn.ReLU(inplace=True) or x.mul_() applied to the input itself); make that operation out "
                         "of place (inplace=False) or start forward with x = x.clone().") from exc
    module = model if isinstance(model, nn.Module) else None
    param = next((p for p in module.parameters() if p.is_floating_point()), None) if module is not None else None
    if param is not None and param.device != inputs.device and re.search(r"device|cuda|cpu|mps", text, re.I):
        raise InputError(f"inputs are on {inputs.device} but the model's parameters on {param.device}; move one of "
                         "them (inputs.to(device) or model.to(device)).") from exc
    if (param is not None and param.dtype != inputs.dtype and not torch.is_autocast_enabled()
            and re.search(r"type|Float|Double|Half|BFloat", text)):
        raise InputError(f"inputs have dtype {inputs.dtype} but the model's parameters {param.dtype}; convert one "
                         f"of them (inputs.to({param.dtype}) or model.to({inputs.dtype})), or run under "
                         "torch.autocast.") from exc
    if module is not None and _TOO_SMALL.search(text):
        raise InputError(_explain_too_small(eager(module), inputs, first_line)) from exc
    first = _first_convolution(module) if module is not None else None
    if first is None:
        return
    name, conv, dims = first
    label = f"{name or type(conv).__name__!r} ({type(conv).__name__}, {conv.in_channels} input channel"
    label += "s)" if conv.in_channels != 1 else ")"
    layout = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[dims]
    shape = tuple(inputs.shape)
    if inputs.dim() == dims + 2 and shape[-1] == conv.in_channels and shape[1] != conv.in_channels:
        order = (0, dims + 1, *range(1, dims + 1))
        raise InputError(f"inputs have shape {shape}, but the model's first convolution {label} takes {layout}: "
                         f"their last dimension is {shape[-1]}, which looks like channels-last (NHWC) data; permute "
                         f"to channels-first (NCHW) with inputs.permute{order} (torchvision's ToTensor does it for "
                         f"images). (torch: {first_line})") from exc
    if inputs.dim() == dims + 1:
        raise InputError(f"inputs have shape {shape} (rank {inputs.dim()}), but the model's first convolution "
                         f"{label} takes batches {layout} of rank {dims + 2}: one example without its batch "
                         "dimension? Add it with inputs.unsqueeze(0) (and labels of shape (1,)). "
                         f"(torch: {first_line})") from exc
    match = _CHANNELS.search(text)
    if match and inputs.dim() == dims + 2:
        seen = tuple(int(v) for v in match.group(1).split(","))
        if seen[1:] == shape[1:]:   # the inputs themselves reached that convolution
            raise InputError(f"inputs have {shape[1]} channels (shape {shape}), but the model's first convolution "
                             f"{label} takes {conv.in_channels}; pass images with {conv.in_channels} channel(s) or "
                             f"build the model for {shape[1]}. (torch: {first_line})") from exc


def check_logits(logits: Any, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
                 finite: bool = True, model: nn.Module | None = None) -> torch.Tensor:
    """Check the model returned a (N, K) floating-point tensor of scores (and, given ``targets``, that they
    index it).

    ``finite=False`` leaves non-finite scores to the caller (the robustness sweep discards non-finite
    adversarial candidates and reports non-finite clean logits itself). ``model``, when given, lets a
    non-finite score be explained: diverged weights, or inputs pushed far out of range by a search.
    """
    if not isinstance(logits, torch.Tensor):
        kind = type(logits).__name__
        keys = f" with keys {sorted(map(str, logits))}" if isinstance(logits, dict) else ""
        raise InputError(f"model output is a {kind}{keys}; rkhsreg needs one tensor of scores of shape (N, K). "
                         "Select the logits with rkhsreg.SelectLogits(model, select=...), e.g. "
                         "select=0 for a tuple or select='logits' for a dict.")
    if not logits.is_floating_point():      # before the shape: argmax(1) has shape (N,), and wrapping is no fix
        raise InputError(f"model output has dtype {logits.dtype}; rkhsreg needs floating-point scores (logits) of "
                         "shape (N, K), not predicted classes (an argmax) or rounded values: return the last layer's "
                         "output.")
    if logits.dim() != 2 or logits.shape[0] != inputs.shape[0]:
        raise InputError(f"model output has shape {tuple(logits.shape)}; rkhsreg needs scores of shape (N, K) = "
                         f"({inputs.shape[0]}, n_classes), one row per example (a binary classifier returns "
                         "2 scores, or wrap a single score s as rkhsreg.SelectLogits(model, select=lambda s: "
                         "torch.cat([-s, s], 1) / 2)).")
    bad = int((~torch.isfinite(logits.detach())).sum()) if finite else 0
    if bad and model is not None:
        _explain_non_finite(bad, logits, inputs, model)
    if bad:
        raise InputError(f"model output contains {bad} non-finite score(s) (NaN or inf) for finite inputs of shape "
                         f"{tuple(inputs.shape)}: the weights have diverged (check torch.isfinite on the "
                         "parameters) or a layer overflows. rkhsreg refuses to turn them into a penalty or an "
                         "accuracy; lower the learning rate or a penalty weight, or resume from an earlier checkpoint.")
    if targets is not None:
        check_class_range(targets, logits.shape[1])
    return logits


def check_class_range(targets: torch.Tensor, num_classes: int, *, name: str = "targets") -> torch.Tensor:
    """Class indices ``targets`` index the model's ``num_classes`` scores (every entry point: penalties, evaluators).

    Example:
        >>> check_class_range(torch.tensor([0, 7]), 3)  # doctest: +SKIP
        InputError: targets contains class 7, but the model returns 3 scores per example; ...
    """
    if targets.numel():
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise InputError(f"{name} contains class {bad}, but the model returns {num_classes} scores per "
                             f"example; class indices must be in [0, {num_classes - 1}].")
    return targets


def check_num_classes(num_classes: int, owner: str, why: str, *, minimum: int = 2) -> None:
    """Refuse a model returning fewer than ``minimum`` scores per example (K = 1: one logit, a regression head),
    saying ``why`` the caller needs more and how to wrap a single score.

    Example:
        >>> check_num_classes(1, "evaluate_robustness", "the predicted class is always 0")  # doctest: +SKIP
    """
    if num_classes < minimum:
        raise InputError(f"{owner}: the model returns K = {num_classes} score per example; {why}. Return one score "
                         "per class (a binary classifier: 2 scores, e.g. rkhsreg.SelectLogits(model, select=lambda s: "
                         "torch.cat([-s, s], 1) / 2)).")


def warn_if_probabilities(logits: torch.Tensor, owner: str, *, dtype: torch.dtype | None = None,
                          stacklevel: int = 3) -> bool:
    """The contract "the model returns logits", checked on outputs already computed (the first forward of a call):
    rows that are all in [0, 1] and sum to 1 (within the dtype's rounding) are probabilities, almost surely from a
    final ``nn.Softmax`` — one :class:`~rkhsreg.ProbabilityOutputWarning` naming ``owner`` and the fix. Returns
    whether it warned.

    Logits never pass this test by chance: every row of every example would need non-negative scores summing to 1
    within ``max(2·eps, 1e-5)``. Log-probabilities (``nn.LogSoftmax``) are logits up to a constant per row, so the
    cross-entropy and the attacks are unchanged: they are not warned about. One output per example (K = 1) is not
    a distribution: not checked. ``dtype``: the model's output dtype when ``logits`` were converted since (the
    rounding tolerance is that dtype's).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 2 or logits.shape[0] == 0:
        return False
    values = logits.detach()
    kind = dtype if dtype is not None else values.dtype
    tolerance = max(2 * torch.finfo(kind).eps, 1e-5) if kind.is_floating_point else 0.0
    low, high, off = torch.stack([values.min().double(), values.max().double(),
                                  (values.double().sum(1) - 1).abs().max()]).tolist()   # one synchronisation
    if not (low >= 0 and high <= 1 and off <= tolerance):
        return False
    warnings.warn(f"{owner}: the model's outputs look like probabilities (every row of scores is in [0, 1] and "
                  "sums to 1), but rkhsreg needs logits: the "
                  "cross-entropy, margins and attacks apply the softmax themselves, so on probabilities they measure "
                  "something else. Pass logits; remove the final Softmax (keep it for predictions only, e.g. "
                  "model(x).softmax(1)).", ProbabilityOutputWarning, stacklevel=stacklevel)
    return True


def _explain_non_finite(bad: int, logits: torch.Tensor, inputs: torch.Tensor, model: nn.Module) -> None:
    """Raise the InputError that names the cause of non-finite scores: weights, or huge inputs."""
    diverged = next((name for name, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())),
                    None)
    if diverged is not None:
        raise InputError(f"model output contains {bad} non-finite score(s) (NaN or inf): parameter {diverged!r} "
                         "holds NaN/inf, the weights have diverged; lower the learning rate or a penalty weight, "
                         "or resume from an earlier checkpoint.")
    size = float(inputs.detach().abs().amax()) if inputs.numel() else 0.0
    if size > 1e3:
        raise InputError(f"model output contains {bad} non-finite score(s) (NaN or inf) for inputs as large as "
                         f"|x| = {size:.3g}: the weights are finite, so the perturbation or deformation of the "
                         "search drove the model out of range. Lower epsilon / step_size / the deformation "
                         "budget to the inputs' scale, or pass clip=(low, high) to keep the search in the box.")


def check_finite_weights(layers: Iterable[tuple[str, nn.Module]]) -> None:
    """Refuse layers with a NaN/inf weight, naming the first such layer (a diverged run, not a bound)."""
    for name, module in layers:
        weight = module.weight.detach()
        bad = int((~torch.isfinite(weight)).sum())
        if bad:
            raise InputError(f"layer {name or type(module).__name__!r} has {bad} non-finite weight(s) (NaN or inf): "
                             "the training diverged before this step; lower the learning rate or a penalty "
                             "weight, or resume from an earlier checkpoint.")


#: Layers whose forward standardises the weight (timm's weight-standardised convs, NF-Nets, BiT): the layer's
#: operator depends on the weight's direction only, so no bound on ``.weight`` bounds it.
_STANDARDISED = ("StdConv2d", "StdConv2dSame", "ScaledStdConv2d", "ScaledStdConv2dSame")


#: ``torch.nn.utils.parametrizations`` whose forward normalises the weight (σ = 1 for spectral_norm, an orthogonal
#: matrix for orthogonal): a weight assigned through them is renormalised on the next read.
_NORMALISING = ("_SpectralNorm", "_Orthogonal")


def check_weights_used(layers: Iterable[tuple[str, nn.Module]], what: str, hint: str, *,
                       hooks: bool = True, assigned: bool = False) -> None:
    """Refuse layers whose ``.weight`` is not the weight their forward uses, naming the first one.

    ``torch.nn.utils.weight_norm`` (hooks) recomputes ``.weight`` from ``weight_g``/``weight_v`` before each
    forward, and weight-standardised convs rescale it inside forward: a spectral bound on ``.weight`` would be
    silently lost or meaningless there. (Layers parametrised with ``torch.nn.utils.parametrize``, e.g.
    ``parametrizations.weight_norm``, are fine: ``.weight`` is the weight the forward uses.)

    Args:
        layers: ``(name, module)`` pairs.
        what: what would be wrong, e.g. ``"spectral_norm_projection would not bound it"``.
        hint: how to go on, a sentence appended to the message ("" for none).
        hooks: also refuse hook-based ``weight_norm`` (``False`` where ``.weight`` is read right after a
            forward, which has just recomputed it).
        assigned: the caller assigns a new ``.weight`` (a projection): also refuse parametrizations that
            normalise the weight (``parametrizations.spectral_norm``, ``orthogonal``), which would undo it.
    """
    for name, module in layers:
        label = f"layer {name or type(module).__name__!r} ({type(module).__name__})"
        if hooks and any(type(hook).__name__ == "WeightNorm" for hook in module._forward_pre_hooks.values()):
            raise InputError(f"{label} uses torch.nn.utils.weight_norm, which recomputes .weight from weight_g and "
                             f"weight_v before every forward, so {what}. Use torch.nn.utils.parametrizations."
                             f"weight_norm instead (supported).{hint}")
        if assigned and parametrize.is_parametrized(module, "weight"):
            norming = [type(p).__name__ for p in module.parametrizations.weight if type(p).__name__ in _NORMALISING]
            if norming:
                raise InputError(f"{label} has its weight parametrised by torch.nn.utils.parametrizations."
                                 f"{norming[0].strip('_').lower().replace('spectralnorm', 'spectral_norm')}, which "
                                 f"renormalises .weight on every read, so {what}: an assigned weight comes back "
                                 "renormalised (spectral_norm: σ = 1). Remove that parametrisation (the "
                                 f"projection bounds σ itself).{hint}")
        if type(module).__name__ in _STANDARDISED:
            raise InputError(f"{label} standardises its weight in forward (weight standardisation): the layer "
                             f"depends on the weight's direction only, so {what}.{hint}")


def check_device(name: str, value: str | torch.device) -> torch.device:
    """``torch.device(value)``, refusing a name torch does not parse and a CUDA device where CUDA is unavailable.

    Raises:
        ParameterError: naming ``name``, the value and what is allowed.
    """
    return validate_param(name, value, Device())
