"""PGD adversarial training: the inner attack is optimal on a linear model and replaces the clean loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg.penalties.adversarial_training import AdversarialTraining
from tests.conftest import assert_same_snapshot, snapshot


def test_linear_binary_attack_reaches_closed_form() -> None:
    """For two classes and f(x) = Wx the worst ℓ2 perturbation moves along W_other − W_true by ε."""
    w = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    model = nn.Linear(6, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 0, 1, 1])
    eps = 0.4
    sign = torch.where(y == 0, 1.0, -1.0)[:, None]                     # direction of W_1 − W_0 for class 0
    direction = sign * (w[1] - w[0]) / (w[1] - w[0]).norm()
    expected = F.cross_entropy(model(x + eps * direction), y)
    value = AdversarialTraining(epsilon=eps)(model, x, y)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_linf_attack_never_leaves_the_box_and_increases_loss(small_cnn, image_batch) -> None:
    x, y = image_batch
    small_cnn.eval()
    clean = F.cross_entropy(small_cnn(x), y)
    adv = AdversarialTraining(epsilon=0.1, norm="linf", steps=10)(small_cnn, x, y)
    assert adv > clean


def test_replaces_loss_flag() -> None:
    assert AdversarialTraining().replaces_loss is True
    assert AdversarialTraining(replace=False).replaces_loss is False


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_no_side_effects(small_cnn, image_batch, norm) -> None:
    x, y = image_batch
    small_cnn(x).sum().backward()
    before = snapshot(small_cnn)
    AdversarialTraining(norm=norm, epsilon=0.1)(small_cnn, x, y)
    assert_same_snapshot(before, snapshot(small_cnn))
