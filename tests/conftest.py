"""Shared fixtures: small models with and without BatchNorm/Dropout, and snapshot helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; several threads on a loaded 2-core machine thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SmallCNN(nn.Module):
    """A CNN with BatchNorm and Dropout: every side effect an attack could have shows up here."""

    def __init__(self, num_classes: int = 4, in_chans: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@pytest.fixture
def small_cnn() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    model.train()
    # non-trivial running statistics so a restore bug is visible
    with torch.no_grad():
        model(torch.randn(16, 1, 8, 8))
    return model


@pytest.fixture
def image_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 1, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g)


def snapshot(model: nn.Module) -> dict:
    """Everything an inner maximisation must leave untouched."""
    return {
        "modes": [m.training for m in model.modules()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        "params": [p.detach().clone() for p in model.parameters()],
        "rng": torch.get_rng_state(),
    }


def assert_same_snapshot(before: dict, after: dict) -> None:
    assert before["modes"] == after["modes"], "a submodule's training flag changed"
    for a, b in zip(before["buffers"], after["buffers"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg="a buffer (BatchNorm statistics) changed")
    for a, b in zip(before["grads"], after["grads"]):
        assert (a is None) == (b is None), "a parameter's .grad was created or removed"
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg="a parameter's .grad changed")
    for a, b in zip(before["params"], after["params"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg="a parameter changed")
    assert torch.equal(before["rng"], after["rng"]), "the global RNG state changed"


def directional_difference(penalty, state: dict, model: nn.Module, x: torch.Tensor, param: torch.Tensor,
                           direction: torch.Tensor, h: float) -> float:
    """Central difference of a seeded penalty along ``direction`` in ``param``, replaying the same samples
    (``state``) at both points, to compare with ``(param.grad * direction).sum()``."""
    def at(s: float) -> float:
        penalty.load_state_dict(state)
        with torch.no_grad():
            param.add_(s * direction)
            out = penalty(model, x).item()
            param.sub_(s * direction)
        return out

    return (at(h) - at(-h)) / (2 * h)


def assert_bfloat16_close(make_penalty, model: nn.Module, x: torch.Tensor, rel: float) -> None:
    """A penalty on a bfloat16 model and input is finite, reported in float32, differentiable, and within ``rel``
    of the float32 value (``make_penalty()`` builds a fresh, identically seeded penalty for each precision)."""
    ref = make_penalty()(model, x)
    low = make_penalty()(model.to(torch.bfloat16), x.bfloat16())
    low.backward()
    assert torch.isfinite(low) and low.dtype == torch.float32
    assert low.item() == pytest.approx(ref.item(), rel=rel)
