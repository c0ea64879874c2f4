"""Smooth image deformations L_τx(u) = x(u − τ(u)): parameters, sampling, the transform, norms, tangents.

Kornia-style split: random parameters are drawn by :func:`sample_params` (from an explicit
``torch.Generator``, never the global RNG) and applied by the deterministic :func:`deform`, so the
same code serves data augmentation (random parameters), the paper's ‖f‖²_τ penalty (a max over
random parameters), the adversarial variant (gradient ascent on the parameters) and replay.

Conventions:

* Everything is in **pixel units**: displacements in pixels, ‖∇τ‖ in pixels per pixel.
* Channel 0 of a displacement is horizontal (along the width, ``u_x``), channel 1 vertical (along
  the height, ``u_y``), the order of ``grid_sample``'s grids.
* τ = a coarse ``g × g`` grid of control displacements upsampled to ``(H, W)`` with **bicubic**
  interpolation (``align_corners=True``: the corner control points sit on the corner pixels), plus
  a per-example translation. τ is linear in the parameters, so both norms are 1-homogeneous.
* Sampling uses ``grid_sample(mode="bicubic", align_corners=True)``. Bicubic, not bilinear: the
  bilinear interpolant has a kink at every pixel centre, so at τ = 0 (the start of every
  adversarial search, and where tangent vectors are taken) its derivative w.r.t. τ is one-sided and
  autograd returns one side arbitrarily. PyTorch's bicubic kernel (cubic convolution, a = −0.75) is
  C¹, so L_τx is differentiable in τ everywhere, including the identity.
* Sampling runs in float64 whatever the image dtype, and the result is cast back: pixel
  coordinates in bfloat16 would be rounded to 1/8 pixel, and even float32 coordinates (ULP 2e-6
  at pixel 27) make the identity off by ~1e-6·|∇x|. The resampling is a small part of a step
  (a 4×4-tap gather per pixel, next to a CNN forward).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(4, 1, 16, 16)
    >>> params = sample_params(4, (16, 16), max_displacement=2.0, max_gradient=0.3, generator=g)
    >>> deform(x, params).shape
    torch.Size([4, 1, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rkhsreg._checks import check_choice, check_int, check_real
from rkhsreg._errors import InputError

__all__ = ["DeformationParams", "displacement", "deform", "sample_params", "displacement_norm", "jacobian_norm",
           "project_params", "image_gradient", "tangent_vectors", "PADDING_MODES", "CUBIC_A"]

#: ``padding_mode`` values accepted by :func:`deform` (what happens to samples outside the image).
PADDING_MODES = ("border", "zeros")
#: The cubic-convolution parameter of PyTorch's bicubic kernels (``grid_sample`` and ``interpolate``).
CUBIC_A = -0.75

Size = Sequence[int]


@dataclass(frozen=True, eq=False)
class DeformationParams:
    """Parameters of a batch of deformations: control displacements and translations, in pixels.

    Attributes:
        field: (N, 2, g, g) control displacements (channel 0 horizontal, 1 vertical), upsampled
            bicubically to the image size by :func:`displacement`.
        translation: (N, 2) constant displacement added everywhere (horizontal, vertical).

    Example:
        >>> p = DeformationParams.zeros(3, grid_size=4)
        >>> p.field.shape, p.translation.shape
        (torch.Size([3, 2, 4, 4]), torch.Size([3, 2]))
    """

    field: torch.Tensor
    translation: torch.Tensor

    def __post_init__(self) -> None:
        f, t = self.field, self.translation
        if not isinstance(f, torch.Tensor) or f.dim() != 4 or f.shape[1] != 2 or f.shape[2] != f.shape[3]:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise InputError(f"field has shape {shape}; DeformationParams needs (N, 2, g, g) control displacements.")
        if not isinstance(t, torch.Tensor) or t.shape != (f.shape[0], 2):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InputError(f"translation has shape {shape}; DeformationParams needs ({f.shape[0]}, 2) "
                             "to match field's batch.")

    @classmethod
    def zeros(cls, n: int, grid_size: int = 4, *, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> DeformationParams:
        """``n`` identity deformations (τ = 0) on a ``grid_size × grid_size`` control grid."""
        n = check_int("n", n, low=0)
        g = check_int("grid_size", grid_size, low=1)
        return cls(torch.zeros(n, 2, g, g, device=device, dtype=dtype), torch.zeros(n, 2, device=device, dtype=dtype))

    @classmethod
    def cat(cls, items: Sequence[DeformationParams]) -> DeformationParams:
        """Concatenate batches of parameters (same grid size)."""
        return cls(torch.cat([p.field for p in items]), torch.cat([p.translation for p in items]))

    def __len__(self) -> int:
        return self.field.shape[0]

    @property
    def grid_size(self) -> int:
        """Side ``g`` of the control grid."""
        return self.field.shape[-1]

    def __getitem__(self, index: Any) -> DeformationParams:
        """Rows ``index`` (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return DeformationParams(self.field[index], self.translation[index])

    def to(self, *args: Any, **kwargs: Any) -> DeformationParams:
        """Move/cast both tensors like ``torch.Tensor.to``."""
        return DeformationParams(self.field.to(*args, **kwargs), self.translation.to(*args, **kwargs))

    def detach(self) -> DeformationParams:
        return DeformationParams(self.field.detach(), self.translation.detach())

    def clone(self) -> DeformationParams:
        return DeformationParams(self.field.clone(), self.translation.clone())

    def requires_grad_(self, flag: bool = True) -> DeformationParams:
        self.field.requires_grad_(flag)
        self.translation.requires_grad_(flag)
        return self

    def scale(self, factor: torch.Tensor | float) -> DeformationParams:
        """Multiply each example's deformation by ``factor`` (a float or an (N,) tensor)."""
        if not isinstance(factor, torch.Tensor):
            factor = torch.tensor(float(factor))
        factor = factor.to(device=self.field.device, dtype=self.field.dtype)
        if factor.dim() == 0:
            factor = factor.expand(len(self))
        if factor.shape != (len(self),):
            raise InputError(f"factor has shape {tuple(factor.shape)}; pass a float or one factor per example "
                             f"({len(self)},).")
        return DeformationParams(self.field * factor[:, None, None, None], self.translation * factor[:, None])

    def __add__(self, other: DeformationParams) -> DeformationParams:
        return DeformationParams(self.field + other.field, self.translation + other.translation)


Tau = DeformationParams | torch.Tensor


def _size(size: Any) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"size={size!r} is not an (H, W) pair of ints.") from None
    if h < 2 or w < 2:
        raise InputError(f"size={size!r} is too small; deformations need images of at least 2x2 pixels.")
    return h, w


def displacement(params: DeformationParams, size: Size) -> torch.Tensor:
    """The dense displacement τ (N, 2, H, W) in pixels: bicubic upsampling of the field + translation.

    Args:
        params: the deformation parameters.
        size: (H, W) of the images.

    Example:
        >>> p = DeformationParams(torch.zeros(1, 2, 3, 3), torch.tensor([[1.0, -2.0]]))
        >>> displacement(p, (8, 8))[0, :, 5, 5]
        tensor([ 1., -2.])
    """
    h, w = _size(size)
    field = params.field
    if field.shape[-1] == 1:
        dense = field.expand(-1, -1, h, w)
    else:
        dense = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
    return dense + params.translation[:, :, None, None]


def _dense(tau: Tau, size: Size | None) -> torch.Tensor:
    """τ as a dense (..., 2, H, W) tensor."""
    if isinstance(tau, DeformationParams):
        if size is None:
            raise InputError("size=None; pass the image size (H, W) to evaluate DeformationParams.")
        return displacement(tau, size)
    if not isinstance(tau, torch.Tensor) or tau.dim() < 4 or tau.shape[-3] != 2:
        shape = tuple(tau.shape) if isinstance(tau, torch.Tensor) else type(tau).__name__
        raise InputError(f"tau has shape {shape}; pass DeformationParams or a displacement tensor (N, 2, H, W).")
    return tau


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def deform(x: torch.Tensor, tau: Tau, *, padding_mode: str = "border") -> torch.Tensor:
    """L_τx(u) = x(u − τ(u)), differentiable w.r.t. ``x`` and ``tau``.

    Args:
        x: images (N, C, H, W), any float dtype (sampling runs in float64, the result has x's dtype).
        tau: :class:`DeformationParams` of N examples, or a dense displacement (N, 2, H, W) in pixels.
        padding_mode: ``"border"`` (default: samples outside the image take the nearest edge
            pixel) or ``"zeros"``.

    Returns:
        The deformed images (N, C, H, W).

    Example:
        >>> x = torch.rand(1, 1, 8, 8)
        >>> shift = DeformationParams(torch.zeros(1, 2, 2, 2), torch.tensor([[1.0, 0.0]]))
        >>> torch.allclose(deform(x, shift)[..., 1:], x[..., :-1], atol=1e-5)  # content moves right
        True
    """
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        desc = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x has {desc}; deform needs float images (N, C, H, W).")
    h, w = _size(x.shape[-2:])
    t = _dense(tau, (h, w))
    if t.shape != (x.shape[0], 2, h, w):
        raise InputError(f"tau gives displacements of shape {tuple(t.shape)}; ({x.shape[0]}, 2, {h}, {w}) is "
                         "needed to deform x.")
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    t = t.to(dtype)
    ys = torch.arange(h, device=x.device, dtype=dtype)
    xs = torch.arange(w, device=x.device, dtype=dtype)
    px = xs[None, None, :] - t[:, 0]  # (N, H, W) sampling positions in pixels
    py = ys[None, :, None] - t[:, 1]
    grid = torch.stack([px * (2.0 / (w - 1)) - 1.0, py * (2.0 / (h - 1)) - 1.0], dim=-1)
    out = F.grid_sample(x.to(dtype), grid, mode="bicubic", padding_mode=padding_mode, align_corners=True)
    return out.to(x.dtype)


def _jacobian_spectral(t: torch.Tensor) -> torch.Tensor:
    """Per-pixel spectral norm of the 2×2 Jacobian of a dense field (..., 2, H, W), by central differences."""
    d_row, d_col = torch.gradient(t, dim=(-2, -1))  # one-sided at the edges
    a, b = d_col[..., 0, :, :], d_row[..., 0, :, :]  # ∂τx/∂ux, ∂τx/∂uy
    c, d = d_col[..., 1, :, :], d_row[..., 1, :, :]  # ∂τy/∂ux, ∂τy/∂uy
    fro2 = a * a + b * b + c * c + d * d
    det = a * d - b * c
    disc = (fro2 * fro2 - 4 * det * det).clamp(min=0)
    return ((fro2 + disc.sqrt()) / 2).clamp(min=0).sqrt()


def displacement_norm(tau: Tau, size: Size | None = None) -> torch.Tensor:
    """‖τ‖∞ of each example: the largest Euclidean displacement over the pixels, in pixels, shape (N,).

    Example:
        >>> p = DeformationParams(torch.zeros(1, 2, 2, 2), torch.tensor([[3.0, 4.0]]))
        >>> displacement_norm(p, (8, 8))
        tensor([5.])
    """
    t = _dense(tau, size)
    return t.float().pow(2).sum(-3).sqrt().flatten(-2).amax(-1)


def jacobian_norm(tau: Tau, size: Size | None = None) -> torch.Tensor:
    """‖∇τ‖∞ of each example, shape (N,): max over the pixels of the **spectral** norm of the 2×2
    Jacobian of τ, estimated by central finite differences on the pixel grid (one-sided at the edges).

    The spectral norm is the operator norm of the stability bound ‖Φ(L_τx) − Φ(x)‖ ≤ (C₁‖∇τ‖∞ +
    C₂‖τ‖∞)‖x‖; it is at most the Frobenius norm (≤ √2 times less). Translations have ‖∇τ‖∞ = 0.

    Example:
        >>> p = DeformationParams(torch.zeros(1, 2, 2, 2), torch.tensor([[3.0, 4.0]]))
        >>> jacobian_norm(p, (8, 8))
        tensor([0.])
    """
    t = _dense(tau, size)
    return _jacobian_spectral(t.float()).flatten(-2).amax(-1)


def _budget(name: str, value: float | None) -> float | None:
    return None if value is None else check_real(name, value)


def _feasible_factor(params: DeformationParams, size: Size, max_displacement: float | None,
                     max_gradient: float | None) -> torch.Tensor:
    """Largest s ≥ 0 (per example, possibly inf) with s·τ within both budgets."""
    t = displacement(params, size).float()
    out = torch.full((len(params),), float("inf"), device=t.device)
    for bound, norm in ((max_displacement, displacement_norm), (max_gradient, jacobian_norm)):
        if bound is not None:
            value = norm(t)
            out = torch.minimum(out, torch.where(value > 0, bound / value.clamp(min=1e-30),
                                                 torch.full_like(value, float("inf"))))
    return out


def project_params(params: DeformationParams, size: Size, max_displacement: float | None,
                   max_gradient: float | None) -> DeformationParams:
    """Rescale each example into the budget: τ ← min(1, a/‖τ‖∞, b/‖∇τ‖∞)·τ.

    Both norms are 1-homogeneous in the parameters (τ is linear in them), so the result satisfies
    ‖τ‖∞ ≤ a and ‖∇τ‖∞ ≤ b, and feasible parameters are returned unchanged. This is a radial
    rescaling, not the Euclidean projection (which has no closed form for these norms).

    Args:
        params: the deformations.
        size: (H, W) of the images.
        max_displacement: budget ``a`` on ‖τ‖∞ in pixels (``None``: unbounded).
        max_gradient: budget ``b`` on ‖∇τ‖∞ (``None``: unbounded).

    Example:
        >>> p = DeformationParams(torch.zeros(1, 2, 2, 2), torch.tensor([[3.0, 4.0]]))
        >>> project_params(p, (8, 8), 1.0, 0.1).translation
        tensor([[0.6000, 0.8000]])
    """
    a = _budget("max_displacement", max_displacement)
    b = _budget("max_gradient", max_gradient)
    with torch.no_grad():
        factor = _feasible_factor(params.detach(), size, a, b).clamp(max=1.0)
    if bool((factor >= 1).all()):
        return params
    return params.scale(factor)


def sample_params(n: int, size: Size, *, max_displacement: float, max_gradient: float, grid_size: int = 4,
                  translation: float = 0.0, generator: torch.Generator, random_magnitude: bool = True,
                  device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> DeformationParams:
    """Random smooth deformations within the budgets, drawn from ``generator`` (CPU) then moved.

    Each example: control displacements i.i.d. N(0, 1) on a ``grid_size²`` grid, scaled by
    ``u·s_max`` where ``s_max`` puts the field on the boundary of the budgets and u ~ U(0, 1)
    (u = 1 if ``random_magnitude=False``); plus a translation uniform in the disk of radius
    ``translation`` pixels; the sum is then rescaled by :func:`project_params` so that ‖τ‖∞ ≤
    ``max_displacement`` and ‖∇τ‖∞ ≤ ``max_gradient`` hold. The global RNG is never used.

    Args:
        n: number of deformations.
        size: (H, W) of the images they will be applied to.
        max_displacement: budget on ‖τ‖∞, pixels.
        max_gradient: budget on ‖∇τ‖∞ (pixels per pixel).
        grid_size: side of the control grid (low frequency: 3–5 for 28×28 digits).
        translation: largest translation in pixels (0: none).
        generator: a CPU ``torch.Generator``.
        random_magnitude: draw the field's magnitude uniformly up to the budget (default) or put it
            on the budget's boundary.
        device: where to put the result.
        dtype: floating dtype of the result.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> p = sample_params(2, (28, 28), max_displacement=2.0, max_gradient=0.3, generator=g)
        >>> bool((displacement_norm(p, (28, 28)) <= 2.0 + 1e-5).all())
        True
    """
    n = check_int("n", n, low=0)
    h, w = _size(size)
    a = check_real("max_displacement", max_displacement)
    b = check_real("max_gradient", max_gradient)
    g = check_int("grid_size", grid_size, low=1)
    r = check_real("translation", translation)
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise InputError(f"generator={generator!r} is not a CPU torch.Generator; pass "
                         "torch.Generator().manual_seed(seed).")
    field = torch.randn(n, 2, g, g, generator=generator)
    mag = torch.rand(n, generator=generator) if random_magnitude else torch.ones(n)
    angle = torch.rand(n, generator=generator) * (2 * torch.pi)
    radius = r * torch.rand(n, generator=generator).sqrt()
    shift = torch.stack([angle.cos(), angle.sin()], dim=1) * radius[:, None]
    params = DeformationParams(field, torch.zeros(n, 2))
    s_max = _feasible_factor(params, (h, w), a, b)
    s_max = torch.where(torch.isfinite(s_max), s_max, torch.zeros_like(s_max))  # g = 1 with b = 0 etc.
    params = DeformationParams(field * (mag * s_max)[:, None, None, None], shift)
    params = project_params(params, (h, w), a, b)
    return params.to(device=device, dtype=dtype)


def image_gradient(x: torch.Tensor, *, padding_mode: str = "border") -> torch.Tensor:
    """Spatial derivatives (N, C, 2, H, W) of the bicubic interpolant of ``x`` at the pixel centres.

    Channel 0 is ∂/∂u_x (along the width), 1 is ∂/∂u_y. The derivative of PyTorch's cubic
    convolution kernel (a = −0.75) at the nodes is −a·(x[p+1] − x[p−1]), i.e. 1.5 × the central
    difference: using it (rather than plain central differences) makes the first-order tangent
    vectors the exact derivative of :func:`deform` at τ = 0. ``padding_mode`` extends the image
    like :func:`deform` does (edge replication or zeros).
    """
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    pad = F.pad(x, (1, 1, 1, 1), mode="replicate") if padding_mode == "border" else F.pad(x, (1, 1, 1, 1))
    gx = -CUBIC_A * (pad[..., 1:-1, 2:] - pad[..., 1:-1, :-2])
    gy = -CUBIC_A * (pad[..., 2:, 1:-1] - pad[..., :-2, 1:-1])
    return torch.stack([gx, gy], dim=2)


def tangent_vectors(x: torch.Tensor, tau: Tau, *, method: str = "first_order", padding_mode: str = "border",
                    step: float = 1e-5) -> torch.Tensor:
    """Tangent vectors d/dh L_{hτ}x at h = 0: the first-order change of the images along τ.

    Args:
        x: images (N, C, H, W).
        tau: :class:`DeformationParams` of N examples, a dense displacement (N, 2, H, W), or D
            displacements per example (N, D, 2, H, W).
        method: ``"first_order"``: t = −∇x·τ with the derivative of the same bicubic interpolation
            as :func:`deform` (cheap: no resampling); ``"finite_difference"``: the central
            difference (L_{hτ}x − L_{−hτ}x)/(2h) of :func:`deform`, computed in float64
            (``torch.func.jvp`` does not support ``grid_sample``). Both agree to O(step).
        padding_mode: as in :func:`deform`.
        step: h for ``"finite_difference"``.

    Returns:
        (N, C, H, W), or (N, D, C, H, W) for D displacements per example, in x's dtype.

    Example:
        >>> x = torch.rand(2, 1, 8, 8)
        >>> shift = DeformationParams(torch.zeros(2, 2, 2, 2), torch.tensor([[1.0, 0.0]] * 2))
        >>> tangent_vectors(x, shift).shape
        torch.Size([2, 1, 8, 8])
    """
    check_choice("method", method, ("first_order", "finite_difference"))
    step = check_real("step", step, strict=True)
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        desc = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x has {desc}; tangent_vectors needs float images (N, C, H, W).")
    n, c, h, w = x.shape
    t = _dense(tau, (h, w))
    per_example = t.dim() == 5
    if t.shape[0] != n or t.shape[-2:] != (h, w) or t.dim() not in (4, 5):
        raise InputError(f"tau gives displacements of shape {tuple(t.shape)}; (N, 2, H, W) or (N, D, 2, H, W) "
                         f"with N={n}, H={h}, W={w} is needed.")
    t5 = t if per_example else t[:, None]
    if method == "first_order":
        dtype = _compute_dtype(x.dtype)
        grad = image_gradient(x.to(dtype), padding_mode=padding_mode)  # (N, C, 2, H, W)
        t5 = t5.to(dtype)
        out = -(grad[:, None, :, 0] * t5[:, :, None, 0] + grad[:, None, :, 1] * t5[:, :, None, 1])
    else:
        d = t5.shape[1]
        xr = x.double()[:, None].expand(n, d, c, h, w).reshape(n * d, c, h, w)
        tr = t5.double().reshape(n * d, 2, h, w)
        plus = deform(xr, tr * step, padding_mode=padding_mode)
        minus = deform(xr, tr * -step, padding_mode=padding_mode)
        out = ((plus - minus) / (2 * step)).view(n, d, c, h, w)
    out = out.to(x.dtype)
    return out if per_example else out[:, 0]
