"""``Normalize``: (x − mean) / std as the first layer of a model, so every ε stays in the units of the raw input.

Penalties, attacks and the certificate measure perturbations in the units of what the model takes. Normalising
inside the model (``nn.Sequential(Normalize(mean, std), net)``) keeps those units the data's own (pixels in
[0, 1]); the layer declares its ℓ2 Lipschitz constant, 1 / min std, so the certified bound of a chain network
stays defined with it in front.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["Normalize"]


def _values(name: str, value: float | Sequence[float] | torch.Tensor, *, positive: bool) -> list[float]:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().flatten().tolist()
    items = [value] if isinstance(value, numbers.Real) else value
    allowed = "a number > 0" if positive else "a finite number"
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items):
        raise ConfigurationError(f"{name}={value!r} is not allowed; pass {allowed} or one per channel "
                                 f"(a non-empty list, tuple or 1-d tensor).")
    values = [float(v) for v in items]
    bad = [v for v in values if not math.isfinite(v) or (positive and v <= 0)]
    if bad:
        raise ConfigurationError(f"{name}={value!r} holds {bad[0]!r}; each entry must be {allowed} "
                                 f"(finite{', > 0' if positive else ''}).")
    return values


class Normalize(nn.Module):
    """(x − mean_c) / std_c along the channel dimension (dim 1), as a layer with no parameters.

    Put it first in the model (``nn.Sequential(Normalize(mean, std), net)``) instead of normalising the data:
    ε in the penalties, the attacks and the certificate is then in the units of the raw inputs, and the
    certified bound multiplies the network's by :meth:`lipschitz_constant`. ``mean`` and ``std`` are
    non-persistent buffers (they follow ``.to(device)`` and stay out of ``state_dict``).

    Args:
        mean: one number, or one per channel.
        std: one number > 0, or one per channel (as many as ``mean`` when both are per channel).

    Raises:
        ConfigurationError: a non-finite mean, a std ≤ 0 or non-finite, or per-channel lengths that differ.
        InputError: (in forward) per-channel statistics for another number of channels than the inputs have
            (never broadcast: 3-channel statistics on 1-channel images would make 3 channels out of one).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import rkhsreg
        >>> norm = rkhsreg.Normalize(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 0.5))
        >>> model = nn.Sequential(norm, nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten())
        >>> norm.lipschitz_constant()
        4.0
    """

    def __init__(self, mean: float | Sequence[float] | torch.Tensor,
                 std: float | Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        means, stds = _values("mean", mean, positive=False), _values("std", std, positive=True)
        if len(means) > 1 and len(stds) > 1 and len(means) != len(stds):
            raise ConfigurationError(f"mean has {len(means)} entries and std {len(stds)}; give one per channel to "
                                     "both, or a single number to either.")
        channels = max(len(means), len(stds))

        def buffer(values: list[float]) -> torch.Tensor:  # a 0-d tensor for one number, else one per channel
            tensor = torch.tensor(values, dtype=torch.float64)
            return tensor[0].clone() if channels == 1 else tensor.expand(channels).clone()

        self.register_buffer("mean", buffer(means), persistent=False)
        self.register_buffer("std", buffer(stds), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        mean, std = self.mean.to(x.dtype), self.std.to(x.dtype)
        if mean.dim():  # per channel: along dim 1 of (N, C, ...)
            if x.dim() < 2 or x.shape[1] != mean.shape[0]:
                got = f"{x.shape[1]} channel(s)" if x.dim() >= 2 else "no channel dimension"
                raise InputError(f"Normalize has statistics for {mean.shape[0]} channels, but its inputs have "
                                 f"{got} (shape {tuple(x.shape)}, channels along dim 1 of (N, C, ...)); give "
                                 "one mean and std per input channel, or single numbers for any channel count.")
            view = (1, -1, *([1] * (x.dim() - 2)))
            mean, std = mean.view(view), std.view(view)
        return (x - mean) / std

    def lipschitz_constant(self) -> float:
        """ℓ2 Lipschitz constant, 1 / min std (the map is a diagonal scaling plus a shift)."""
        return float(1.0 / self.std.min())

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}"
