"""Turn what a user passes as ``data`` into two CPU tensors, and check ε lists and boxes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from rkhsreg._checks import check_in_box, check_inputs, check_real, check_targets
from rkhsreg._params import Check
from rkhsreg._errors import ConfigurationError, InputError, ParameterError

__all__ = ["collect", "check_epsilons", "check_radii", "RADII", "check_bounds", "check_inside", "EPSILONS", "BOUNDS"]


def _pair(item: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if (isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[0], torch.Tensor)):
        x, y = item[0], item[1]
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(y)
        return x, y
    raise InputError(f"data yielded {type(item).__name__} {where}; pass (inputs, labels) tensors, a Dataset of "
                     "(input, label) pairs, or a DataLoader of (inputs, labels) batches.")


def _same_shapes(shapes: list[torch.Size], unit: str, what: str) -> None:
    """Refuse inputs of different shapes (images of different sizes) naming the first that differs, not torch.cat's
    "Sizes of tensors must match"."""
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise InputError(f"data yields inputs of different shapes ({what}): {unit} {i} holds inputs of shape "
                             f"{tuple(shape)}, {unit} 0 of shape {tuple(shapes[0])}; an evaluation needs one input "
                             "shape: resize the images to one size (e.g. torchvision.transforms.Resize) or evaluate "
                             "each size separately.")


def collect(data: Any, n_examples: int | None = None, *, at_most: bool = False,
            owner: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_examples`` examples of ``data`` as ``(inputs, labels)`` CPU tensors.

    Args:
        data: a pair ``(inputs, labels)`` of tensors; a ``Dataset`` of ``(input, label)`` items; or an
            iterable of ``(inputs, labels)`` batches (a ``DataLoader``).
        n_examples: how many to keep (``None``: all).
        at_most: ``n_examples`` is an upper bound (a probe size): fewer examples are fine. Default: ``data``
            must hold at least ``n_examples``, else a :class:`~rkhsreg.ParameterError` (an accuracy "on 1000
            examples" computed on fewer would be reported under the wrong count).
        owner: the function named in that error.

    Raises:
        ParameterError: ``data`` holds fewer than ``n_examples`` examples (and ``at_most`` is False).
        InputError: data of another form, empty, or inputs and labels that break the input contract.

    Example:
        >>> x, y = collect((torch.zeros(5, 1, 8, 8), torch.zeros(5, dtype=torch.long)), 3)
        >>> x.shape, y.shape
        (torch.Size([3, 1, 8, 8]), torch.Size([3]))
    """
    if n_examples is not None and (isinstance(n_examples, bool) or not isinstance(n_examples, int)
                                   or n_examples < 1):
        raise ConfigurationError(f"n_examples={n_examples!r} is not allowed; pass a positive int or None (all).")
    limit = math.inf if n_examples is None else n_examples
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        xs, ys = [data[0]], [data[1]]
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (tuple, list)):
        count = len(data) if n_examples is None else min(len(data), n_examples)
        items = [_pair(data[i], f"at index {i}") for i in range(count)]
        _same_shapes([x.shape for x, _ in items], "example", "items of a Dataset")
        xs = [torch.stack([x for x, _ in items])] if items else []
        ys = [torch.stack([torch.as_tensor(y) for _, y in items])] if items else []
    elif isinstance(data, Iterable):
        xs, ys, total = [], [], 0
        for i, batch in enumerate(data):
            x, y = _pair(batch, f"as batch {i}")
            if y.dim() == 0:  # a single (input, label) example
                x, y = x.unsqueeze(0), y.unsqueeze(0)
            xs.append(x)
            ys.append(y)
            total += x.shape[0]
            if total >= limit:
                break
    else:
        raise InputError(f"data={type(data).__name__} is not allowed; pass (inputs, labels) tensors, a Dataset or a "
                         "DataLoader.")
    if not xs:
        raise InputError("data is empty; pass at least one example.")
    if len(xs) > 1:
        _same_shapes([x.shape[1:] for x in xs], "batch", "batches of a DataLoader")
    inputs = torch.cat([x.detach().cpu() for x in xs])
    labels = torch.cat([y.detach().cpu().reshape(-1) for y in ys])
    if n_examples is not None and not at_most and min(inputs.shape[0], labels.shape[0]) < n_examples:
        held = min(inputs.shape[0], labels.shape[0])
        raise ParameterError(f"{owner + ': ' if owner else ''}n_examples={n_examples} is out of range: data holds "
                             f"{held} example{'s' if held != 1 else ''}; pass n_examples <= {held}, or None for all "
                             "of them.", parameter="n_examples", value=n_examples,
                             allowed=f"None or an int in [1, {held}]")
    if n_examples is not None:
        inputs, labels = inputs[:n_examples], labels[:n_examples]
    if inputs.shape[0] != labels.shape[0]:
        raise InputError(f"data has {inputs.shape[0]} inputs but {labels.shape[0]} labels; they must match.")
    # the contract the penalties check too (rkhsreg._checks): float, a batch, finite; integer class indices
    check_inputs(inputs)
    return inputs, check_targets(labels, inputs, required=True, name="labels")


def check_radii(epsilons: Any, name: str = "epsilons") -> list[float]:
    """A non-empty list of finite radii >= 0, in the order given (a number is a list of one).

    Example:
        >>> check_radii([1.0, 0.5, 1.0])
        [1.0, 0.5, 1.0]
    """
    if isinstance(epsilons, (int, float)) and not isinstance(epsilons, bool):
        epsilons = [epsilons]
    if isinstance(epsilons, torch.Tensor) or type(epsilons).__module__ == "numpy":   # tensors, numpy arrays
        epsilons = epsilons.flatten().tolist() if hasattr(epsilons, "flatten") else [epsilons]
    if not isinstance(epsilons, (list, tuple)) or not epsilons:
        raise ConfigurationError(f"{name}={epsilons!r} is not allowed; pass a non-empty list of radii >= 0, "
                                 "e.g. [0.25, 0.5, 1.0].")
    return [check_real(f"{name}[{i}]", e, low=0.0) for i, e in enumerate(epsilons)]


def check_epsilons(epsilons: Any, name: str = "epsilons") -> list[float]:
    """Sorted, de-duplicated list of finite radii >= 0.

    Example:
        >>> check_epsilons([1.0, 0.5, 1.0])
        [0.5, 1.0]
    """
    return sorted(set(check_radii(epsilons, name)))


def check_bounds(bounds: Any) -> tuple[float, float]:
    """``(low, high)`` with ``low < high``, both finite."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ConfigurationError(f"bounds={bounds!r} is not allowed; pass the valid input box as (low, high), "
                                 "e.g. (0.0, 1.0) for pixels.")
    low = check_real("bounds[0]", bounds[0], low=None)
    high = check_real("bounds[1]", bounds[1], low=None)
    if not low < high:
        raise ConfigurationError(f"bounds={tuple(bounds)!r} is empty; low must be < high.")
    return low, high


def check_inside(inputs: torch.Tensor, bounds: tuple[float, float]) -> None:
    """Refuse inputs outside the box (attacks would clip them, changing the clean examples) or not finite:
    :func:`rkhsreg._checks.check_in_box`, the contract shared with the penalties' ``clip``."""
    check_in_box(inputs, bounds)


#: ``epsilons`` / ``sizes`` of the evaluators (rkhsreg._params declaration).
EPSILONS = Check(check_epsilons, "a non-empty list of finite radii >= 0, e.g. [0.25, 0.5, 1.0]",
                 examples=[[0.5, 1.0], (0.0,)], named=True)
#: ``epsilons`` of a function that returns one value per ε as a bare list (``certified_accuracy``): in the order given.
RADII = Check(check_radii, "a non-empty list of finite radii >= 0, e.g. [0.25, 0.5, 1.0] (one value returned per "
              "radius, in this order)", examples=[[0.5, 1.0], (0.0,)], named=True)
#: ``bounds`` of the evaluators: the valid input box.
BOUNDS = Check(check_bounds, "a (low, high) pair of finite floats with low < high, e.g. (0.0, 1.0) for pixels",
               examples=[(0.0, 1.0), [-1, 1]])
