"""Projected gradient ascent over deformation parameters, and its first-order estimate at τ = 0.

The adversarial counterpart of :mod:`rkhsreg.functional.pgd` for deformations: the variable is
the coefficient vector θ = (control displacements, translation) of
:class:`~rkhsreg.functional.deformation.DeformationParams`, steps are sign-gradient (ℓ∞ steepest
ascent) in coefficient space, and the feasible set {‖τ‖∞ ≤ a, ‖∇τ‖∞ ≤ b} is enforced after each
step by the radial rescaling :func:`~rkhsreg.functional.deformation.project_params`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rkhsreg.functional.deformation import DeformationParams, deform, image_gradient, project_params

__all__ = ["maximize_deformation", "coefficient_gradient", "first_step_gain"]

Objective = Callable[[torch.Tensor], torch.Tensor]

#: Relative threshold below which a coefficient's gradient counts as zero in a sign step.
DEAD_ZONE = 1e-4


def _limit_translation(translation: torch.Tensor, max_translation: float | None) -> torch.Tensor:
    if max_translation is None:
        return translation
    if max_translation == 0:
        return torch.zeros_like(translation)
    length = translation.norm(dim=1, keepdim=True)
    return translation * (max_translation / length.clamp(min=1e-30)).clamp(max=1.0)


def _signs(grad_field: torch.Tensor, grad_translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sign(∇θ) with a dead zone: coefficients whose gradient is below ``DEAD_ZONE`` times the row's
    largest are left still. They carry no first-order gain, and sign() would turn round-off (e.g.
    the exactly-zero vertical gradient of an image constant along columns) into full steps."""
    largest = torch.maximum(grad_field.abs().flatten(1).amax(1), grad_translation.abs().amax(1))
    cut = (DEAD_ZONE * largest)
    sign_field = torch.where(grad_field.abs() > cut[:, None, None, None], grad_field.sign(), 0.0)
    sign_translation = torch.where(grad_translation.abs() > cut[:, None], grad_translation.sign(), 0.0)
    return sign_field, sign_translation


def _step(params: DeformationParams, grad_field: torch.Tensor, grad_translation: torch.Tensor, step_size: float,
          size: tuple[int, int], max_displacement: float, max_gradient: float,
          max_translation: float | None) -> DeformationParams:
    sign_field, sign_translation = _signs(grad_field, grad_translation)
    field = params.field + step_size * sign_field
    translation = _limit_translation(params.translation + step_size * sign_translation, max_translation)
    return project_params(DeformationParams(field, translation), size, max_displacement, max_gradient)


def maximize_deformation(objective: Objective, inputs: torch.Tensor, *, max_displacement: float,
                         max_gradient: float, steps: int, step_size: float, grid_size: int = 4,
                         max_translation: float | None = None, start: DeformationParams | None = None,
                         padding_mode: str = "border") -> DeformationParams:
    """Maximise ``objective(deform(inputs, θ))`` row by row over the deformation budget.

    Each step: gradient of ``objective(deform(x, θ)).sum()`` w.r.t. θ only (parameters' ``.grad``
    untouched), sign step of length ``step_size`` pixels on every coefficient (coefficients whose
    gradient is below ``DEAD_ZONE`` = 1e-4 times the row's largest stay still), translation limited
    to the disk of radius ``max_translation``, then :func:`project_params`. Rows with a zero
    gradient stay put.

    Args:
        objective: maps deformed images (n, C, H, W) to per-row values (n,) to maximise.
        inputs: the clean images (n, C, H, W); not modified.
        max_displacement: budget on ‖τ‖∞, pixels.
        max_gradient: budget on ‖∇τ‖∞.
        steps: ascent steps (each one forward and one backward pass on n rows).
        step_size: sign-step length in pixels.
        grid_size: control grid side (ignored when ``start`` is given).
        max_translation: largest translation in pixels (``None``: only ``max_displacement``; 0: none).
        start: starting parameters (default: zero, the identity).
        padding_mode: as in :func:`~rkhsreg.functional.deformation.deform`.

    Returns:
        The final parameters (float32, detached).

    Example:
        >>> theta = maximize_deformation(lambda z: model(z)[:, 3], x, max_displacement=2.0,   # doctest: +SKIP
        ...                              max_gradient=0.3, steps=5, step_size=0.6)
    """
    x = inputs.detach()
    size = (x.shape[-2], x.shape[-1])
    params = (DeformationParams.zeros(x.shape[0], grid_size, device=x.device) if start is None
              else start.detach().to(device=x.device, dtype=torch.float32))
    for _ in range(steps):
        field = params.field.detach().requires_grad_(True)
        translation = params.translation.detach().requires_grad_(True)
        with torch.enable_grad():
            value = objective(deform(x, DeformationParams(field, translation), padding_mode=padding_mode)).sum()
            grad_field, grad_translation = torch.autograd.grad(value, (field, translation))
        with torch.no_grad():
            params = _step(params.detach(), grad_field.float(), grad_translation.float(), step_size, size,
                           max_displacement, max_gradient, max_translation)
    return params.detach()


def coefficient_gradient(input_grad: torch.Tensor, images: torch.Tensor, grid_size: int, *,
                         padding_mode: str = "border") -> DeformationParams:
    """∇_θ f(L_θx) at θ = 0 from the input gradient ∇_x f(x), without resampling.

    By the chain rule, d/dθ L_θx = −∇x · ∂τ/∂θ at θ = 0, so the gradient w.r.t. the dense
    displacement is g_τ = −Σ_c ∇_x f_c · ∇x_c, and the coefficients' gradient is the adjoint of the
    (linear) bicubic upsampling applied to g_τ, plus its sum over the pixels for the translation.

    Args:
        input_grad: ∇_x f(x) (n, C, H, W).
        images: x (n, C, H, W).
        grid_size: control grid side.
        padding_mode: as in :func:`~rkhsreg.functional.deformation.deform`.

    Returns:
        The gradient, in :class:`DeformationParams` form (float32).
    """
    grad_x = image_gradient(images.float(), padding_mode=padding_mode)  # (n, C, 2, H, W)
    g_tau = -(input_grad.float()[:, :, None] * grad_x).sum(1)       # (n, 2, H, W)
    n, _, h, w = g_tau.shape
    if grid_size == 1:
        grad_field = g_tau.sum((2, 3), keepdim=True)
    else:
        field = torch.zeros(n, 2, grid_size, grid_size, device=g_tau.device, requires_grad=True)
        with torch.enable_grad():
            up = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
            (grad_field,) = torch.autograd.grad(up, field, grad_outputs=g_tau)
    return DeformationParams(grad_field, g_tau.sum((2, 3)))


def first_step_gain(grad: DeformationParams, size: tuple[int, int], *, max_displacement: float,
                    max_gradient: float, step_size: float, max_translation: float | None = None) -> torch.Tensor:
    """First-order gain ⟨∇_θ f, θ₁⟩ of the first ascent step θ₁ from θ = 0, per row (n,).

    The first step of :func:`maximize_deformation` is θ₁ = project(step · sign(∇_θ f)); its gain to
    first order is the value a candidate search ranks examples by.
    """
    zero = DeformationParams(torch.zeros_like(grad.field), torch.zeros_like(grad.translation))
    theta = _step(zero, grad.field, grad.translation, step_size, size, max_displacement, max_gradient,
                  max_translation)
    return (grad.field * theta.field).flatten(1).sum(1) + (grad.translation * theta.translation).sum(1)
