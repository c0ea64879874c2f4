"""Accumulate reductions in at least float32: bfloat16/float16 values are widened, float64 kept."""

from __future__ import annotations

import torch

__all__ = ["wide"]


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float32 if it has fewer bits, otherwise unchanged (float64 stays float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
