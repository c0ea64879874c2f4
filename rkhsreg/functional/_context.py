"""Side-effect containment for inner maximisations.

Inner loops (PGD, deformation search, gradient selection) must leave the model exactly as they
found it: each submodule's own ``training`` flag, BatchNorm running statistics, the parameters'
``.grad`` and the global RNG. Nothing in torch offers this as one context, hence this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["inner_mode", "restore_modes"]


@contextlib.contextmanager
def restore_modes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's ``training`` flag on exit, also on exceptions."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _buffers_snapshot(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b, b.detach().clone()) for b in model.buffers()]


@contextlib.contextmanager
def inner_mode(model: nn.Module, eval_mode: bool = True) -> Iterator[None]:
    """Run an inner maximisation without side effects on ``model`` or the global RNG.

    Args:
        model: the network.
        eval_mode: if True (default) every submodule is put in eval mode (BatchNorm uses its
            running statistics, Dropout is off). If False the modules keep their mode; buffers
            (BatchNorm statistics) are restored afterwards and the global RNG state is forked, so
            stochastic layers do not advance it.

    Example:
        >>> with inner_mode(model):          # doctest: +SKIP
        ...     delta = pgd(...)
    """
    with restore_modes(model):
        if eval_mode:
            model.eval()
            yield
            return
        snapshot = _buffers_snapshot(model)
        devices = sorted({b.device.index for b, _ in snapshot if b.device.type == "cuda"})
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            with torch.no_grad():
                for buf, saved in snapshot:
                    buf.copy_(saved)
