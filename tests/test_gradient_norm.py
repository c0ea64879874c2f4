"""‖∇f‖²: closed forms on models whose input gradients are known, and the side-effect contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rkhsreg import ConfigurationError
from rkhsreg.penalties.gradient_norm import GradientNorm
from tests.conftest import assert_same_snapshot, snapshot


class HalfSquare(nn.Module):
    """f(x) = W (x ⊙ x) / 2, so ∇_x f_k(x) = W_k ⊙ x: the gradient depends on the example."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) ** 2 / 2) @ self.w.t()


def _problem():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 8, generator=g), torch.randn(5, 2, 4, generator=g)


def test_per_class_equals_max_row_closed_form() -> None:
    w, x = _problem()
    grads = w[None] * x.flatten(1)[:, None]              # (n, K, d): ∇f_k(x_i)
    expected = grads.pow(2).sum(2).max(0).values.sum()   # Σ_k max_i ‖∇f_k(x_i)‖²
    torch.testing.assert_close(GradientNorm(weight=1.0)(HalfSquare(w), x), expected, rtol=1e-5, atol=0)


def test_joint_equals_worst_jacobian_frobenius() -> None:
    w, x = _problem()
    grads = w[None] * x.flatten(1)[:, None]
    expected = grads.pow(2).sum((1, 2)).max()
    torch.testing.assert_close(GradientNorm(weight=1.0, mode="joint")(HalfSquare(w), x), expected, rtol=1e-5, atol=0)


def test_linear_model_is_frobenius_norm() -> None:
    w = torch.randn(4, 6)
    model = nn.Linear(6, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    torch.testing.assert_close(GradientNorm(weight=1.0)(model, torch.randn(3, 6)), w.pow(2).sum(), rtol=1e-5, atol=0)


def test_double_backprop_matches_finite_differences() -> None:
    w, x = _problem()
    model = HalfSquare(w)
    penalty = GradientNorm(weight=0.1)
    penalty(model, x).backward()
    h, (k, j) = 1e-3, (1, 5)
    plus, minus = HalfSquare(w), HalfSquare(w)
    with torch.no_grad():
        plus.w[k, j] += h
        minus.w[k, j] -= h
    fd = (penalty(plus, x) - penalty(minus, x)) / (2 * h)
    torch.testing.assert_close(model.w.grad[k, j], fd, rtol=1e-3, atol=1e-5)


def test_classes_subset_with_all_others_equals_all(small_cnn, image_batch) -> None:
    x, y = image_batch
    torch.testing.assert_close(GradientNorm(classes=3)(small_cnn, x, y), GradientNorm()(small_cnn, x, y))


@pytest.mark.parametrize("kwargs", [{}, {"mode": "joint"}, {"eval_mode": False}])
def test_no_side_effects(small_cnn, image_batch, kwargs) -> None:
    x, y = image_batch
    small_cnn(x).sum().backward()
    before = snapshot(small_cnn)
    value = GradientNorm(**kwargs)(small_cnn, x, y)
    assert_same_snapshot(before, snapshot(small_cnn))
    value.backward()
    assert small_cnn.head.weight.grad is not None


def test_bad_mode() -> None:
    with pytest.raises(ConfigurationError, match="mode"):
        GradientNorm(mode="frobenius")
