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
from torch.nn.modules.batchnorm import _NormBase

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


def _norm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _NormBase) and m.track_running_stats]


@contextlib.contextmanager
def inner_mode(model: nn.Module, eval_mode: bool = True) -> Iterator[None]:
    """Run an inner maximisation without side effects on ``model`` or the global RNG.

    Args:
        model: the network.
        eval_mode: if True (default) every submodule is put in eval mode (BatchNorm uses its
            running statistics, Dropout is off). If False the modules keep their mode: BatchNorm
            layers in training mode normalise with batch statistics but do not update their running
            statistics (``track_running_stats`` is switched off meanwhile, so no buffer is written
            and autograd never sees an in-place change); other buffers are restored on exit; the
            global RNG state is forked, so stochastic layers do not advance it.

    Example:
        >>> with inner_mode(model):          # doctest: +SKIP
        ...     delta = pgd(...)
    """
    with restore_modes(model):
        if eval_mode:
            model.eval()
            yield
            return
        norms = _norm_layers(model)
        others = [(b, b.detach().clone()) for b in model.buffers()
                  if not any(b is nb for m in norms for nb in m.buffers(recurse=False))]
        devices = sorted({b.device.index for b, _ in others if b.device.type == "cuda"} |
                         {p.device.index for p in model.parameters() if p.device.type == "cuda"})
        for m in norms:
            m.track_running_stats = False
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            for m in norms:
                m.track_running_stats = True
            with torch.no_grad():
                for buf, saved in others:
                    if not torch.equal(buf, saved):
                        buf.copy_(saved)
