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

__all__ = ["inner_mode", "restore_modes", "restore_buffers"]


@contextlib.contextmanager
def restore_modes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's ``training`` flag on exit, also on exceptions."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


@contextlib.contextmanager
def restore_buffers(model: nn.Module, *, skip: tuple[torch.Tensor, ...] = ()) -> Iterator[None]:
    """Restore every buffer's value on exit, also on exceptions: BatchNorm statistics and any buffer the model's
    own forward writes (a step counter, a cache), which eval mode does not freeze.

    Args:
        model: the network.
        skip: buffers left alone (e.g. those whose writes are switched off otherwise).
    """
    saved = [(module, name, buf, buf.detach().clone()) for module in model.modules()
             for name, buf in module._buffers.items()
             if buf is not None and not any(buf is other for other in skip)]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, name, buf, value in saved:
                if module._buffers.get(name) is not buf:   # the forward replaced the tensor: put ours back
                    module._buffers[name] = buf
                if buf.shape != value.shape or not torch.equal(buf, value):
                    buf.set_(value) if buf.shape != value.shape else buf.copy_(value)


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
            and autograd never sees an in-place change); the global RNG state is forked, so stochastic
            layers do not advance it.

    In both modes every buffer is restored on exit, also the ones the model's own forward writes (a counter
    buffer incremented at each call is as it was before the search).

    Example:
        >>> with inner_mode(model):          # doctest: +SKIP
        ...     delta = pgd(...)
    """
    with restore_modes(model):
        if eval_mode:
            model.eval()
            with restore_buffers(model):
                yield
            return
        norms = _norm_layers(model)
        frozen = tuple(nb for m in norms for nb in m.buffers(recurse=False))
        devices = sorted({b.device.index for b in model.buffers() if b.device.type == "cuda"} |
                         {p.device.index for p in model.parameters() if p.device.type == "cuda"})
        for m in norms:
            m.track_running_stats = False
        try:
            with restore_buffers(model, skip=frozen), torch.random.fork_rng(devices=devices):
                yield
        finally:
            for m in norms:
                m.track_running_stats = True
