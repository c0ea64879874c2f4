"""Small models with known answers for the evaluation tests."""

from __future__ import annotations

import torch
from torch import nn

from tests.conftest import SmallCNN


class BinaryLinear(nn.Module):
    """Logits (−v/2, v/2) with v = w·x + b: the minimal ℓ2 adversarial distance is |v| / ‖w‖."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(float(b)))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.score(x)
        return torch.stack([-v / 2, v / 2], dim=1)


def linear_problem(n: int = 40, side: int = 8, seed: int = 0):
    """A BinaryLinear model and inputs in [0, 1] whose closest boundary points stay inside the box.

    Returns ``(model, x, y, true_distance)``; the first 3 labels are wrong (distance 0).
    """
    g = torch.Generator().manual_seed(seed)
    d = side * side
    w = torch.randn(d, generator=g)
    unit = w / w.norm()
    b = -0.5 * float(w.sum())  # x = 0.5 everywhere lies on the boundary
    s = (torch.rand(n, generator=g) * 2 - 1) * 0.6  # signed offset along w: |s| <= 0.6
    noise = (torch.rand(n, d, generator=g) - 0.5) * 0.1
    noise = noise - (noise @ unit)[:, None] * unit  # orthogonal to w: the distance is |s|
    x = (0.5 + s[:, None] * unit + noise).reshape(n, 1, side, side)
    model = BinaryLinear(w, b)
    with torch.no_grad():
        v = model.score(x)
    y = (v > 0).long()
    y[:3] = 1 - y[:3]
    true = (v.abs() / w.norm()).double()
    true[:3] = 0.0
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    return model, x, y, true


class ZeroGradient(torch.autograd.Function):
    """Identity forward, zero backward: gradients masked on purpose."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.zeros_like(grad)


class Masked(nn.Module):
    """``inner`` behind a zero-gradient identity."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.inner(ZeroGradient.apply(x))


def quadrant_data(n: int, seed: int = 0, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """4 classes: which quadrant of a noisy 8x8 image is bright. Pixels in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 1, side, side, generator=g) * 0.4
    h = side // 2
    for i, c in enumerate(y.tolist()):
        r, col = divmod(c, 2)
        x[i, 0, r * h:(r + 1) * h, col * h:(col + 1) * h] += 0.5
    return x.clamp(0, 1), y


def trained_cnn(steps: int = 60, seed: int = 0) -> SmallCNN:
    """SmallCNN (BatchNorm + Dropout) trained briefly on quadrant data; returned in train mode.

    Trained on one thread, so the weights do not depend on the machine's core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(steps: int, seed: int) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x, y = quadrant_data(256, seed=seed + 100)
    model.train()
    for i in range(steps):
        rows = slice((i * 32) % 256, (i * 32) % 256 + 32)
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


def tiny_cnn(in_chans: int = 3, num_classes: int = 4) -> nn.Sequential:
    """A small chain CNN for CLI tests (``tests._evaluation_helpers:tiny_cnn``)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(in_chans, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, num_classes))


def write_image_folder(root, classes: int = 4, per_class: int = 3, size: int = 8, seed: int = 0) -> None:
    """PNG images ``root/<class>/<i>.png`` (RGB, ``size``²) for ImageFolder tests."""
    from pathlib import Path

    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for c in range(classes):
        folder = Path(root) / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / f"{i}.png")


def quadrant_net(in_chans: int = 3) -> nn.Sequential:
    """A fixed chain network that classifies images by their brightest quadrant (``class<k>`` of
    :func:`write_quadrant_folder`): logit k = sum over channels of the mean of quadrant k. For CLI tests
    (``tests._evaluation_helpers:quadrant_net``), no weights file needed."""
    head = nn.Linear(in_chans * 4, 4)
    with torch.no_grad():
        head.weight.copy_(torch.eye(4).repeat(1, in_chans))  # feature c*4 + q -> class q
        head.bias.zero_()
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), head)


def write_quadrant_folder(root, per_class: int = 3, size: int = 8, seed: int = 0) -> None:
    """RGB PNG images ``root/class<k>/<i>.png`` whose quadrant k (row-major) is bright, with noise."""
    from pathlib import Path

    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    half = size // 2
    for c in range(4):
        folder = Path(root) / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        r, col = divmod(c, 2)
        for i in range(per_class):
            pixels = torch.rand(size, size, 3, generator=g) * 0.6
            pixels[r * half:(r + 1) * half, col * half:(col + 1) * half] += 0.35
            Image.fromarray((pixels.clamp(0, 1) * 255).to(torch.uint8).numpy()).save(folder / f"{i}.png")


class Normalized(nn.Module):
    """A user's model factory's usual shape: normalisation buffers next to the network (``net.mean``…)."""

    def __init__(self, model: nn.Module, channels: int = 3) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, channels, 1, 1), 0.25))
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def normalized_tiny_cnn() -> Normalized:
    """:func:`tiny_cnn` behind a normalisation (``tests._evaluation_helpers:normalized_tiny_cnn``)."""
    return Normalized(tiny_cnn())


def fixed_size_net(size: int = 32) -> nn.Sequential:
    """A chain network that takes 3 channels of exactly ``size``×``size`` (a flatten before its linear layer)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * size * size, 4))


class Residual(nn.Module):
    """Not a chain (a skip connection): the certificate cannot bound it (``tests._evaluation_helpers:residual_cnn``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x + torch.relu(self.conv(x)))


def residual_cnn() -> Residual:
    torch.manual_seed(0)
    return Residual()
