"""grad-ℓ2 / grad-ℓ1 against finite differences of the per-example loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg import ConfigurationError, InputError
from rkhsreg.penalties.loss_gradient import LossGradient
from tests.conftest import assert_same_snapshot, snapshot


def _fd_input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    x = x.double()
    grads = torch.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x[i].numel()):
            e = torch.zeros_like(x[i]).flatten()
            e[j] = h
            e = e.view_as(x[i])
            lp = F.cross_entropy(model(x[i:i + 1] + e), y[i:i + 1])
            lm = F.cross_entropy(model(x[i:i + 1] - e), y[i:i + 1])
            grads[i].view(-1)[j] = (lp - lm) / (2 * h)
    return grads


@pytest.mark.parametrize("p", [1, 2])
def test_matches_finite_differences(p) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 2, 1, 2])
    g = _fd_input_gradient(model, x, y)
    expected = g.pow(2).sum(1).mean() if p == 2 else g.abs().sum(1).mean()
    torch.testing.assert_close(LossGradient(weight=1.0, p=p)(model, x, y).double(), expected, rtol=1e-4, atol=1e-8)


def test_parameter_gradient_matches_finite_differences() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 2, (5,))
    penalty = LossGradient(weight=1.0)
    penalty(model, x, y).backward()
    w = model[0].weight
    analytic = w.grad[1, 2].item()
    with torch.no_grad():
        w[1, 2] += 1e-5
        up = penalty(model, x, y).item()
        w[1, 2] -= 2e-5
        down = penalty(model, x, y).item()
    assert analytic == pytest.approx((up - down) / 2e-5, rel=1e-4)


def test_no_side_effects(small_cnn, image_batch) -> None:
    x, y = image_batch
    small_cnn(x).sum().backward()
    before = snapshot(small_cnn)
    LossGradient()(small_cnn, x, y)
    assert_same_snapshot(before, snapshot(small_cnn))


def test_needs_targets_and_valid_p(small_cnn, image_batch) -> None:
    with pytest.raises(InputError, match="targets"):
        LossGradient()(small_cnn, image_batch[0], None)
    with pytest.raises(InputError, match="targets"):
        LossGradient()(small_cnn, image_batch[0], image_batch[1][:, None])
    with pytest.raises(ConfigurationError, match="p=3"):
        LossGradient(p=3)
