"""The examples of a batch a sup runs over: a random subset drawn from an explicit generator.

The paper's ‖f‖²_τ and ‖D_τ f‖² take their max over 32 examples per step (from an independent
stream in the reference code). Here they are drawn from the training batch with the penalty's own
``torch.Generator``, so the global RNG is untouched and a saved generator state replays the draw.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch

from rkhsreg._params import Interval, Options, validate_param

__all__ = ["NUM_EXAMPLES", "check_num_examples", "pick_examples"]


#: ``num_examples``: how many examples of the batch a sup runs over (rkhsreg._params declaration).
NUM_EXAMPLES = [Interval(Integral, 1, None), Options(("all",), doc="the whole batch")]


def check_num_examples(value: Any, name: str = "num_examples") -> int | str:
    """``num_examples``: an int >= 1 or ``"all"`` (the whole batch)."""
    return validate_param(name, value, NUM_EXAMPLES)


def pick_examples(n: int, num_examples: int | str, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices (CPU) of ``num_examples`` distinct examples among ``n``, drawn from ``generator``.

    ``"all"`` or ``num_examples >= n`` returns every index without drawing.

    Example:
        >>> pick_examples(5, "all", torch.Generator())
        tensor([0, 1, 2, 3, 4])
    """
    if num_examples == "all" or num_examples >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:num_examples].sort().values
