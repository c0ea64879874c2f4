"""Model and data must agree on the input's channels and size: checked on one example before any work."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rkhsreg.cli.errors import UserError

__all__ = ["check_input_shape", "check_classes"]

#: Image sizes tried to tell the user which one the model takes when the data's does not fit.
COMMON_SIZES = (28, 32, 64, 96, 224)


def _describe(channels: int, height: int, width: int) -> str:
    return f"{channels} channel{'s' if channels != 1 else ''} of {height}×{width}"


def _error(model: nn.Module, x: torch.Tensor) -> str | None:
    """The model's error on ``x`` in one line, or None when the forward runs."""
    try:
        model(x)
    except Exception as exc:  # any layer's own error: shapes, dtypes
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    return None


def check_input_shape(model: nn.Module, example: torch.Tensor, data: str) -> None:
    """Refuse, naming both shapes, a model that cannot take the data's images.

    Raises:
        UserError: "model takes C channels of H×W, data <name> has …" (the first convolution's ``in_channels``,
            or the size found among :data:`COMMON_SIZES` when a forward at the data's size fails).

    Example:
        >>> check_input_shape(mnist_vgg5(), torch.zeros(3, 32, 32), "cifar10")  # doctest: +SKIP
        UserError: model takes 1 channel of 28×28, data cifar10 has 3 channels of 32×32; ...
    """
    if example.dim() != 3:
        return
    channels, height, width = (int(v) for v in example.shape)
    has = f"data {data} has {_describe(channels, height, width)}"
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    takes = channels if first is None else int(first.in_channels)
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            failure = _error(model, example[None].to(_device(model)))
            if failure is None:
                return
            sizes = ([height] if height == width else []) + [s for s in COMMON_SIZES if s != height]
            size = next((s for s in sizes
                         if _error(model, torch.zeros(1, takes, s, s, device=_device(model))) is None), None)
    finally:
        for module, mode in zip(model.modules(), was):
            module.training = mode
    if size is not None and (size != height or takes == channels):
        raise UserError(f"model takes {_describe(takes, size, size)}, {has}; pass the --model (or --model-kwargs) "
                        "built for this data, or the --data it was trained on")
    if takes != channels:  # the size is not the problem (or none of the common sizes runs)
        raise UserError(f"model takes {takes} channel{'s' if takes != 1 else ''} (its first convolution), {has}; "
                        "pass the --model (or --model-kwargs) built for this data, or the --data it was trained on")
    raise UserError(f"the model fails on one image of --data {data} ({_describe(channels, height, width)}) and at "
                    f"the sizes {', '.join(f'{s}×{s}' for s in COMMON_SIZES)} ({failure}); check that --model and "
                    "--data match")


def _device(model: nn.Module) -> Any:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def check_classes(model: nn.Module, example: torch.Tensor, dataset: Any, data: str) -> None:
    """Refuse a data set whose class folders are not the model's outputs (an ImageFolder root holding ``train/`` and
    ``test/`` is two classes): the labels would index other outputs, and every number would be wrong, silently.

    Raises:
        UserError: "data <name> has N classes (…), the model outputs K scores; …".
    """
    classes = getattr(dataset, "classes", None)
    if not isinstance(classes, (list, tuple)) or example.dim() != 3:
        return
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(example[None].to(_device(model)))
    finally:
        for module, mode in zip(model.modules(), was):
            module.training = mode
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] == len(classes):
        return
    shown = ", ".join(map(str, classes[:5])) + (", …" if len(classes) > 5 else "")
    raise UserError(f"data {data} has {len(classes)} classes ({shown}), the model outputs {out.shape[1]} scores; "
                    "point --data at the folder whose subfolders are the model's classes (for a root holding "
                    "train/ and test/, the test/ folder), or pass the --model (--num-classes) built for this data")
