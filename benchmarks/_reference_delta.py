"""A straightforward ‖f‖²_δ, written from the paper's description, to compare the library's cost with.

The algorithm (Bietti et al., 2019; ``reg.py`` ``AdvPerturbationPenalty`` of the reference code), for a
batch x_1..x_n and K outputs: for every class k, one PGD per example — δ_{k,i} from zero, ``steps``
steps of normalised gradient ascent on f_k(x_i + δ) of length 1.5ε/steps, each followed by the
projection onto the ℓ2 ball of radius ε; then i_k = argmax_i f_k(x_i + δ_{k,i}) − f_k(x_i) and the
penalty is Σ_k (f_k(x_{i_k} + δ_{k,i_k}) − f_k(x_{i_k}))², δ detached. That is K·n rows per PGD step:
K·(steps + 1) forward and K·steps backward passes of the batch, plus the final 2K rows.

Nothing here comes from :mod:`rkhsreg`; a zero gradient leaves its row where it is (the reference
code divides by the norm and produces NaN there). The search runs with the model in eval mode
(BatchNorm statistics untouched), like the library's default ``eval_mode=True``.

Example:
    >>> value, counts = reference_delta_penalty(model, x, epsilon=1.0)   # doctest: +SKIP
    >>> value.backward()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks._timing import CountingModel

__all__ = ["reference_delta_penalty"]


def _l2_per_row(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def reference_delta_penalty(model: nn.Module, x: torch.Tensor, *, epsilon: float = 1.0, steps: int = 5,
                            num_classes: int | None = None) -> tuple[torch.Tensor, CountingModel]:
    """Σ_k sup_{i, ‖δ‖₂ ≤ ε} (f_k(x_i + δ) − f_k(x_i))², one PGD per (class, example).

    Args:
        model: a classifier returning logits (n, K).
        x: the batch.
        epsilon: ℓ2 radius in input units.
        steps: PGD steps (step length 1.5ε/steps).
        num_classes: K (default: read from the clean logits).

    Returns:
        The penalty (differentiable w.r.t. the parameters) and the :class:`CountingModel` that
        counted the passes it spent (``forward_passes``, ``backward_passes``).
    """
    n = x.shape[0]
    counted = CountingModel(model, batch=n)
    step_size = 1.5 * epsilon / steps
    was_training = model.training
    model.eval()
    try:
        x = x.detach()
        with torch.no_grad():
            clean = counted(x)
        num_classes = clean.shape[1] if num_classes is None else num_classes
        selected_x, selected_delta = [], []
        for k in range(num_classes):
            delta = torch.zeros_like(x)
            for _ in range(steps):
                delta.requires_grad_(True)
                with torch.enable_grad():
                    (grad,) = torch.autograd.grad(counted(x + delta)[:, k].sum(), delta)
                counted.add_backward(n)
                with torch.no_grad():
                    length = _l2_per_row(grad)
                    delta = delta + step_size * grad / torch.where(length > 0, length, torch.ones_like(length))
                    delta = delta * torch.clamp(epsilon / _l2_per_row(delta).clamp(min=1e-30), max=1.0)
            with torch.no_grad():
                gain = counted(x + delta)[:, k] - clean[:, k]
            best = int(gain.argmax())
            selected_x.append(x[best])
            selected_delta.append(delta[best].detach())
        xs, ds = torch.stack(selected_x), torch.stack(selected_delta)
        out = counted(torch.cat([xs + ds, xs]))
        counted.add_backward(2 * num_classes)
        classes = torch.arange(num_classes, device=x.device)
        diff = out[:num_classes, :].gather(1, classes[:, None]) - out[num_classes:, :].gather(1, classes[:, None])
        return diff.pow(2).sum(), counted
    finally:
        model.train(was_training)
