"""Projected gradient ascent on inputs, one independent problem per row.

Written here rather than taken from torchattacks because the penalties need what its attacks
do not offer: an arbitrary per-row objective (a signed logit, a squared output difference, a
loss), no [0, 1] clipping unless asked (the paper does not clip), a zero start, zero-gradient
rows that stay put instead of producing NaN, gradients w.r.t. the inputs only, and an explicit
``torch.Generator`` for random starts instead of the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rkhsreg.functional._precision import wide

__all__ = ["normalize_step", "project", "random_start", "ascent_step", "pgd_maximize"]

Objective = Callable[[torch.Tensor], torch.Tensor]


def _row_norm(t: torch.Tensor) -> torch.Tensor:
    """ℓ2 norm of each row, shaped for broadcasting against ``t``, computed in float32."""
    norm = wide(t.flatten(1)).norm(dim=1)
    return norm.view(-1, *([1] * (t.dim() - 1)))


def normalize_step(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit ``norm`` for each row; zero where the gradient is zero."""
    if norm == "linf":
        return grad.sign()
    length = _row_norm(grad)
    safe = torch.where(length > 0, length, torch.ones_like(length))
    return (wide(grad) / safe).to(grad.dtype)


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Project each row of ``delta`` onto the ``norm`` ball of radius ``epsilon``."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    length = _row_norm(delta)
    factor = torch.clamp(epsilon / torch.clamp(length, min=1e-30), max=1.0)
    return (wide(delta) * factor).to(delta.dtype)


def random_start(like: torch.Tensor, epsilon: float, norm: str, generator: torch.Generator,
                 radius_fraction: float = 1.0) -> torch.Tensor:
    """A random point of the ``norm`` ball (uniform in the ℓ∞ box; uniform direction on the ℓ2 sphere of
    radius ``radius_fraction * epsilon``), drawn from ``generator`` on the CPU and moved to ``like``'s device."""
    if norm == "linf":
        u = torch.rand(like.shape, generator=generator, dtype=torch.float32) * 2 - 1
        out = u * epsilon * radius_fraction
    else:
        u = torch.randn(like.shape, generator=generator, dtype=torch.float32)
        out = u / _row_norm(u).clamp(min=1e-30) * epsilon * radius_fraction
    return out.to(device=like.device, dtype=like.dtype)


def ascent_step(delta: torch.Tensor, grad: torch.Tensor, base: torch.Tensor, *, epsilon: float, step_size: float,
                norm: str = "l2", clip: tuple[float, float] | None = None) -> torch.Tensor:
    """One projected ascent step of :func:`pgd_maximize` from ``delta`` along ``grad`` (e.g. a gradient already known).

    Example:
        >>> ascent_step(torch.zeros(1, 2), torch.tensor([[3., 4.]]), torch.zeros(1, 2), epsilon=1.0, step_size=0.5)
        tensor([[0.3000, 0.4000]])
    """
    with torch.no_grad():
        delta = project(delta + step_size * normalize_step(grad, norm), epsilon, norm)
        if clip is not None:
            delta = (base + delta).clamp(*clip) - base
    return delta


def pgd_maximize(objective: Objective, inputs: torch.Tensor, *, epsilon: float, steps: int, step_size: float,
                 norm: str = "l2", delta: torch.Tensor | None = None,
                 clip: tuple[float, float] | None = None,
                 record: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Maximise ``objective(inputs + delta)`` row by row over the ``norm`` ball of radius ``epsilon``.

    Each step: gradient of ``objective(x + delta).sum()`` w.r.t. ``delta`` only (parameters'
    ``.grad`` untouched), normalised per row (ℓ2) or signed (ℓ∞), scaled by ``step_size``, then
    projected onto the ball (and onto ``clip`` bounds of ``inputs + delta`` if given).

    Args:
        objective: maps a batch (n, ...) to per-row values (n,) to maximise.
        inputs: the clean batch; not modified.
        epsilon: radius of the ball, in input units.
        steps: number of ascent steps (each one forward and one input-backward pass).
        step_size: length of each step.
        norm: ``"l2"`` or ``"linf"``.
        delta: starting perturbation (default zero, the paper's start).
        clip: optional (low, high) bounds for ``inputs + delta``.
        record: a list to which the objective's per-row values at each step's starting point are appended
            (detached): ``steps`` tensors, the values at δ_0 (the start), δ_1, …, δ_{steps−1}.

    Returns:
        The final perturbation, detached.

    Example:
        >>> delta = pgd_maximize(lambda z: model(z)[:, 3], x, epsilon=1.0, steps=5, step_size=0.3)  # doctest: +SKIP
    """
    base = inputs.detach()
    delta = torch.zeros_like(base) if delta is None else delta.detach().clone()
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            values = objective(base + delta)
            (grad,) = torch.autograd.grad(values.sum(), delta)
        if record is not None:
            record.append(values.detach())
        delta = ascent_step(delta.detach(), grad, base, epsilon=epsilon, step_size=step_size, norm=norm, clip=clip)
    return delta.detach()
