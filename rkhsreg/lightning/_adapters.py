"""From a Lightning batch and module to what a penalty needs: ``(inputs, targets)`` and the network f."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Union

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["BatchToInputs", "ForwardSpec", "default_batch_to_inputs", "check_batch_to_inputs", "extract_inputs",
           "check_forward", "resolve_network"]

#: ``batch -> (inputs, targets)``; targets may be None.
BatchToInputs = Callable[[Any], "tuple[torch.Tensor, torch.Tensor | None]"]
#: None (the LightningModule itself), a submodule's name, or ``fn(pl_module, inputs) -> logits``.
ForwardSpec = Union[None, str, Callable[[nn.Module, torch.Tensor], torch.Tensor]]


def _describe(batch: Any) -> str:
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {tuple(batch.shape)}"
    if isinstance(batch, Mapping):
        return f"a {type(batch).__name__} with keys {sorted(map(str, batch))}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items ({', '.join(type(b).__name__ for b in batch)})"
    return f"a {type(batch).__name__}"


def default_batch_to_inputs(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(batch[0], batch[1])`` for a tuple/list batch, ``(batch, None)`` for a tensor batch.

    Raises:
        InputError: any other batch, with a hint to pass ``batch_to_inputs``.

    Example:
        >>> x, y = default_batch_to_inputs((torch.zeros(2, 3), torch.tensor([0, 1])))
    """
    if isinstance(batch, torch.Tensor):
        return batch, None
    if (isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], torch.Tensor)
            and (batch[1] is None or isinstance(batch[1], torch.Tensor))):
        return batch[0], batch[1]
    raise InputError(f"batch is {_describe(batch)}; the default batch_to_inputs takes (batch[0], batch[1]) from an "
                     "(inputs, targets, ...) tuple. Pass batch_to_inputs=, e.g. "
                     "batch_to_inputs=lambda batch: (batch['image'], batch['label']).")


def check_batch_to_inputs(fn: Any) -> BatchToInputs:
    """Check ``batch_to_inputs`` is None (the default) or callable."""
    if fn is None:
        return default_batch_to_inputs
    if not callable(fn):
        raise ConfigurationError(f"batch_to_inputs={fn!r} is not callable; pass a function "
                                 "batch -> (inputs, targets) or None for (batch[0], batch[1]).")
    return fn


def extract_inputs(fn: BatchToInputs, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply ``fn`` and check it returned ``(tensor, tensor | None)``."""
    out = fn(batch)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor)
            and (out[1] is None or isinstance(out[1], torch.Tensor))):
        raise InputError(f"batch_to_inputs returned {_describe(out)}; it must return (inputs, targets) with "
                         "inputs a tensor and targets a tensor or None.")
    return out[0], out[1]


def check_forward(forward: Any) -> ForwardSpec:
    """Check ``forward`` is None, a non-empty string or a callable."""
    if forward is None or callable(forward) or (isinstance(forward, str) and forward):
        return forward
    raise ConfigurationError(f"forward={forward!r} is not allowed; pass None (call the LightningModule), the name "
                             "of a submodule (e.g. 'net') or a function (pl_module, inputs) -> logits.")


class _CallableNetwork(nn.Module):
    """``fn(module, x)`` as an ``nn.Module`` whose parameters and modes are ``module``'s."""

    def __init__(self, module: nn.Module, fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self._fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._fn(self.module, x)


def resolve_network(pl_module: nn.Module, forward: ForwardSpec) -> nn.Module:
    """The network f the penalties and constraints act on.

    Raises:
        ConfigurationError: ``forward`` names no submodule of ``pl_module``.
    """
    if forward is None:
        return pl_module
    if isinstance(forward, str):
        try:
            net = pl_module.get_submodule(forward)
        except AttributeError:
            names = sorted(n for n, _ in pl_module.named_children())
            raise ConfigurationError(f"forward={forward!r} is not a submodule of {type(pl_module).__name__}; "
                                     f"its children are {names}.") from None
        return net
    return _CallableNetwork(pl_module, forward)
