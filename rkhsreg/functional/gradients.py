"""Input gradients of selected outputs, one backward pass per output slot.

``torch.func`` could vectorise this (``vmap`` over ``vjp``), but models with BatchNorm buffers,
in-place activations or hooks (common in timm) fail under ``functorch`` transforms, and on CPU a
loop of input-only backward passes through one retained graph costs the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["output_gradients"]

Slots = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


def output_gradients(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, slots: Slots = None,
                     *, reduce: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ∇_x f_c(x_i) for the classes ``c = slots[i, j]`` of every row, w.r.t. the inputs only.

    Args:
        forward: maps a batch (n, ...) to scores (n, K).
        inputs: the batch (n, ...); a leaf copy is made, the original is untouched.
        slots: (n, S) class indices per row, or a function of the detached scores returning them;
            ``None`` means every class (S = K).
        reduce: optional ``reduce(grad, j)`` applied to slot ``j``'s gradients (n, ...) as soon as
            they are computed, so only the reduced values are kept (e.g. norms: O(n·S) memory
            instead of O(n·S·dim)).

    Returns:
        ``(logits, slots, out)``: the scores (n, K) (detached), the slots used (n, S) and the
        gradients (n, S, ...) or their reductions stacked on dim 1. Parameters' ``.grad`` are not
        touched: gradients are taken w.r.t. the input copy only.

    Example:
        >>> logits, slots, grads = output_gradients(model, x)  # doctest: +SKIP
        >>> grads.shape  # (n, K, C, H, W)                       # doctest: +SKIP
    """
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = forward(x)
        if slots is None:
            slots = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
        elif callable(slots):
            slots = slots(logits.detach())
        out = []
        n_slots = slots.shape[1]
        for j in range(n_slots):
            picked = logits.gather(1, slots[:, j:j + 1]).sum()
            (g,) = torch.autograd.grad(picked, x, retain_graph=j < n_slots - 1)
            out.append(g if reduce is None else reduce(g, j))
    return logits.detach(), slots, torch.stack(out, dim=1)
