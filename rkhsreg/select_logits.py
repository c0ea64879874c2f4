"""``SelectLogits``: make a model that returns a tuple, a dict or a single score usable by every plugin.

Penalties, constraints and evaluators call ``model(x)`` and need one (N, K) tensor of class scores.
Models that return more (timm's ``forward_intermediates``, Hugging Face outputs, auxiliary heads) are
wrapped once instead of every plugin growing an option. Parameters and modes are the wrapped model's:
the constraints project the same layers, and ``state_dict`` keys gain a ``model.`` prefix only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["SelectLogits"]


class SelectLogits(nn.Module):
    """``model`` whose output is reduced to its logits by ``select``.

    Args:
        model: the network.
        select: an int (index into a tuple/list output), a str (key of a dict or attribute of an output
            object) or a function ``output -> logits``.

    Example:
        >>> net = SelectLogits(nn.Sequential(nn.Linear(4, 3)), select=lambda out: out)
        >>> net(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, model: nn.Module, select: int | str | Callable[[Any], torch.Tensor]) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ConfigurationError(f"model={type(model).__name__} is not a torch.nn.Module; pass the network.")
        if isinstance(select, bool) or not (isinstance(select, (int, str)) or callable(select)):
            raise ConfigurationError(f"select={select!r} is not allowed; pass an int (tuple index), a str (dict "
                                     "key or attribute) or a function output -> logits.")
        self.model = model
        self.select = select

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        try:
            if callable(self.select):
                return self.select(out)
            if isinstance(self.select, int):
                return out[self.select]
            return out[self.select] if isinstance(out, dict) else getattr(out, self.select)
        except (IndexError, KeyError, AttributeError, TypeError) as err:
            raise InputError(f"select={self.select!r} cannot be applied to the model's output "
                             f"({type(out).__name__}): {err}") from None
