"""Data augmentation by random smooth deformations: the paper's "(∗)" setting.

In the paper, "(∗)" replaces each training example, at each epoch, by a random InfiMNIST
transform of it. :class:`RandomDeformation` does the same with the smooth deformations of
:mod:`rkhsreg.functional.deformation`, for any image size and channel count, as a module that fits
a torchvision pipeline (after ``ToTensor``) or runs on a whole batch on the GPU.
"""

from __future__ import annotations

import secrets
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_choice, check_int, check_real, check_seed
from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.functional.deformation import PADDING_MODES, deform, sample_params

__all__ = ["RandomDeformation"]


class RandomDeformation(nn.Module):
    """Deform each image by a random smooth field within a budget, with probability ``p``.

    Randomness comes from the module's own ``torch.Generator`` (never the global RNG); its state is
    part of ``state_dict()`` (as extra state) and of :meth:`get_state`, so a run resumes with the same
    deformations. In ``DataLoader`` workers each worker re-seeds its copy from ``seed`` and the
    worker's seed (``torch.utils.data.get_worker_info().seed``, which the loader derives from its own
    generator each epoch): workers do not repeat each other's deformations, and a loader with a
    seeded ``generator`` reproduces them.

    Args:
        max_displacement: budget on ‖τ‖∞, in pixels.
        max_gradient: budget on ‖∇τ‖∞ (spectral norm of the Jacobian, pixels per pixel).
        grid_size: side of the control grid of the smooth field (low frequency).
        translation: largest random translation, in pixels (0: none); the total stays within
            ``max_displacement``.
        p: probability of deforming each image (otherwise it is returned unchanged).
        padding_mode: ``"border"`` or ``"zeros"`` for samples falling outside the image.
        seed: seed of the generator (``None``: fresh entropy from the OS).
        generator: a CPU generator to use instead of seeding a new one (shared, not copied).

    Example:
        >>> aug = RandomDeformation(max_displacement=2.0, max_gradient=0.3, seed=0)
        >>> aug(torch.rand(1, 28, 28)).shape          # one image (C, H, W)
        torch.Size([1, 28, 28])
        >>> aug(torch.rand(8, 1, 28, 28)).shape       # a batch (N, C, H, W)
        torch.Size([8, 1, 28, 28])
    """

    def __init__(self, max_displacement: float = 2.0, max_gradient: float = 0.3, grid_size: int = 4,
                 translation: float = 1.0, p: float = 1.0, padding_mode: str = "border", seed: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.max_displacement = check_real("max_displacement", max_displacement)
        self.max_gradient = check_real("max_gradient", max_gradient)
        self.grid_size = check_int("grid_size", grid_size, low=1)
        self.translation = check_real("translation", translation)
        self.p = check_real("p", p, high=1.0)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        if generator is not None:
            if seed is not None:
                raise ConfigurationError(f"seed={seed!r} and generator were both given; pass one of them.")
            if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
                raise ConfigurationError(f"generator={generator!r} is not a CPU torch.Generator; pass "
                                         "torch.Generator().manual_seed(seed) or use seed=.")
            self.seed = None
            self.generator = generator
        else:
            self.seed = secrets.randbits(63) if seed is None else check_seed("seed", seed)
            self.generator = torch.Generator().manual_seed(self.seed)
        self._worker_seed: int | None = None

    def extra_repr(self) -> str:
        return (f"max_displacement={self.max_displacement}, max_gradient={self.max_gradient}, "
                f"grid_size={self.grid_size}, translation={self.translation}, p={self.p}, "
                f"padding_mode={self.padding_mode!r}")

    def get_state(self) -> torch.Tensor:
        """The generator's state (a uint8 tensor), to save and :meth:`set_state` later."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a state returned by :meth:`get_state`."""
        self.generator.set_state(state)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def _reseed_in_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            base = self.seed if self.seed is not None else int(self.generator.initial_seed())
            self.generator.manual_seed((base * 1_000_003 + info.seed) % (2 ** 63))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Deform a (C, H, W) image or each image of a (N, C, H, W) batch.

        Integer images (uint8 from ``read_image``) are deformed in float and rounded back.
        """
        if not isinstance(img, torch.Tensor):
            raise InputError(f"img={type(img).__name__} is not a tensor; put RandomDeformation after "
                             "ToTensor()/PILToTensor() in the pipeline.")
        if img.dim() not in (3, 4):
            raise InputError(f"img has shape {tuple(img.shape)}; RandomDeformation needs (C, H, W) or (N, C, H, W).")
        self._reseed_in_worker()
        batch = img if img.dim() == 4 else img[None]
        n, _, h, w = batch.shape
        params = sample_params(n, (h, w), max_displacement=self.max_displacement, max_gradient=self.max_gradient,
                               grid_size=self.grid_size, translation=self.translation, generator=self.generator,
                               device=batch.device)
        apply = torch.rand(n, generator=self.generator) < self.p
        x = batch if batch.is_floating_point() else batch.float()
        out = deform(x, params, padding_mode=self.padding_mode)
        out = torch.where(apply.to(batch.device)[:, None, None, None], out, x)
        if not batch.is_floating_point():
            info = torch.iinfo(batch.dtype)
            out = out.round().clamp(info.min, info.max).to(batch.dtype)
        return out if img.dim() == 4 else out[0]
