"""``SelectLogits``: make a model that returns a tuple, a dict or a single score usable by every plugin.

Penalties, constraints and evaluators call ``model(x)`` and need one (N, K) tensor of class scores.
Models that return more (timm's ``forward_intermediates``, Hugging Face outputs, auxiliary heads) are
wrapped once instead of every plugin growing an option. Parameters and modes are the wrapped model's:
the constraints project the same layers, and ``state_dict`` keys gain a ``model.`` prefix only.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["SelectLogits"]


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _what_is_there(out: Any, select: Any) -> str | None:
    """What ``select`` could have been for this output: a tuple's length and valid indices, a dict's keys or an
    object's attributes (the closest to ``select`` suggested); ``None`` for a function."""
    if callable(select):
        return None
    if isinstance(out, Mapping) or (isinstance(select, str) and not isinstance(out, Sequence)):
        names = ([str(k) for k in out] if isinstance(out, Mapping) else
                 sorted(n for n in dir(out) if not n.startswith("_") and not callable(getattr(out, n, None))))
        what = "keys" if isinstance(out, Mapping) else "attributes"
        shown = ", ".join(repr(n) for n in names[:12]) + (", …" if len(names) > 12 else "") if names else "none"
        close = difflib.get_close_matches(str(select), names, n=1)
        return f"its {what} are {shown}" + (f"; did you mean select={close[0]!r}?" if close else ".")
    if isinstance(out, Sequence) and not isinstance(out, str):
        n = len(out)
        if not isinstance(select, int):
            return f"it is a {type(out).__name__} of {n}: select an element by its index (an int)."
        shapes = ", ".join(_shape(v) for v in out[:6]) + (", …" if n > 6 else "")
        valid = f"pass select=0 to {n - 1} (or -{n} to -1)" if n else "it has no element to select"
        return f"it is a {type(out).__name__} of {n} (shapes {shapes}); {valid}."
    return None


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
                             f"({type(out).__name__}): {_what_is_there(out, self.select) or err}") from None
