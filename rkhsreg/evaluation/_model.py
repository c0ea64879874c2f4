"""The model as attacks see it, and the context that keeps an evaluation free of side effects.

Attack libraries assume image batches ``(N, C, H, W)`` with pixels in [0, 1]. :class:`AttackView`
presents any classifier that way: inputs of another rank travel as ``(N, 1, 1, D)``, and a box
``[low, high]`` is mapped affinely onto [0, 1] (so an ε in input units is ``ε / (high − low)`` for
the attack). It also counts the rows pushed forward and back-propagated, which is how the
evaluation reports the budget it spent.

:func:`evaluation_mode` is the one context every attack runs in: every submodule in eval mode
(each one's own flag restored on exit), parameters' ``requires_grad`` switched off (no ``.grad`` is
written and no weight gradient is computed, even by attacks that call ``backward()``), and the
global CPU and CUDA RNGs forked, so libraries that reseed them (torchattacks' APGD, APGD-T and FAB
call ``torch.manual_seed`` on every run) leave the caller's streams untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from rkhsreg._checks import call_model, check_logits
from rkhsreg.functional._context import restore_buffers, restore_modes

__all__ = ["AttackView", "evaluation_mode", "model_device", "predict", "cuda_devices"]



#: Why an evaluator refuses a model returning K = 1 score per example (rkhsreg._checks.check_num_classes).
SINGLE_SCORE = ("an example's predicted class, the argmax of its scores, is then always 0, so no perturbation can "
                "change it and an accuracy under attack or a certified radius would say nothing of the model")

def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def cuda_devices(model: nn.Module) -> list[int]:
    """Indices of the CUDA devices the model lives on, for ``torch.random.fork_rng``."""
    found = {t.device.index or 0 for t in (*model.parameters(), *model.buffers()) if t.device.type == "cuda"}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        found.add(torch.cuda.current_device())
    return sorted(found)


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode, no parameter gradients, forked RNG; everything restored on exit (also on errors).

    Example:
        >>> with evaluation_mode(model):   # doctest: +SKIP
        ...     adv = attack(view, x, y)
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    with restore_modes(model), restore_buffers(model), torch.random.fork_rng(devices=cuda_devices(model)):
        model.eval()
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


class AttackView(nn.Module):
    """``model`` seen through a [0, 1] box and a 4-d shape, counting the rows it processes.

    Args:
        model: the classifier, returning logits (N, K).
        example_shape: one input's shape (without the batch dimension).
        bounds: the valid input box ``(low, high)`` in the model's units.

    Attributes:
        forward_rows: rows pushed through ``model`` since creation.
        backward_rows: rows whose logits received a gradient (each ``backward``/``grad`` call counts).
    """

    def __init__(self, model: nn.Module, example_shape: tuple[int, ...], bounds: tuple[float, float]) -> None:
        super().__init__()
        self.model = model
        self.example_shape = tuple(example_shape)
        self.low, self.high = float(bounds[0]), float(bounds[1])
        self.scale = self.high - self.low
        self.forward_rows = 0
        self.backward_rows = 0
        self.training = False  # not recursive: the caller decides when the model itself goes to eval mode

    def train(self, mode: bool = True) -> AttackView:
        """Always eval: attack libraries that switch their model back to training mode (torchattacks
        calls ``model.train()`` after each attack on a model it found training) cannot reach ``model``."""
        return self

    # -- conversions between the model's space and the attack's ------------------------------------
    def to_attack(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs (N, *shape) → attack inputs (N, C, H, W) in [0, 1]."""
        z = (x - self.low) / self.scale if (self.low, self.scale) != (0.0, 1.0) else x
        return z if z.dim() == 4 else z.reshape(z.shape[0], 1, 1, -1)

    def to_model(self, z: torch.Tensor) -> torch.Tensor:
        """Attack inputs back to the model's shape and units."""
        x = z.reshape(z.shape[0], *self.example_shape)
        return x * self.scale + self.low if (self.low, self.scale) != (0.0, 1.0) else x

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.to_model(z)
        out = check_logits(call_model(self.model, x), x, finite=False)
        rows = int(out.shape[0])
        self.forward_rows += rows
        if out.requires_grad:
            out.register_hook(self._count_backward(rows))
        return out

    def _count_backward(self, rows: int):
        def hook(grad: torch.Tensor) -> None:
            self.backward_rows += rows
        return hook


def predict(model: nn.Module, inputs: torch.Tensor, *, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits of ``inputs`` (on CPU, detached) computed in batches under ``no_grad``; the model's mode is kept."""
    outs = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            batch = inputs[start:start + batch_size].to(device)
            outs.append(check_logits(call_model(model, batch), batch, finite=False).detach().float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0, 0)
