"""Certified accuracy: exact on a linear model, never above the empirical curve, refused when L is unknown."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rkhsreg import InputError
from rkhsreg.evaluation import certified_accuracy, certified_radii, evaluate_robustness
from rkhsreg.evaluation.settings import AttackSettings
from tests._evaluation_helpers import linear_problem, quadrant_data, trained_cnn


def _as_sequential(binary) -> nn.Sequential:
    """The BinaryLinear model as Flatten + Linear with rows (−w/2, w/2): L = ‖w‖/√2."""
    w, b = binary.w.detach(), float(binary.b.detach())
    linear = nn.Linear(w.numel(), 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([-w / 2, w / 2]))
        linear.bias.copy_(torch.tensor([-b / 2, b / 2]))
    return nn.Sequential(nn.Flatten(), linear)


def test_linear_certified_radius_is_the_exact_distance():
    binary, x, y, true = linear_problem(n=30)
    model = _as_sequential(binary)
    radii = certified_radii(model, x, y)
    correct = true > 0
    assert torch.all(radii[~correct] == 0)
    torch.testing.assert_close(radii[correct], true[correct] / (1 + 1e-3), rtol=1e-5, atol=0)
    eps = [0.0, 0.1, 0.3]
    expected = [float((correct & (true >= e * (1 + 1e-3))).double().mean()) for e in eps]
    assert certified_accuracy(model, (x, y), epsilons=eps) == pytest.approx(expected)


def test_certified_never_exceeds_empirical_linear():
    binary, x, y, _ = linear_problem(n=30)
    result = evaluate_robustness(_as_sequential(binary), (x, y), epsilons=[0.0, 0.1, 0.2, 0.3, 0.5],
                                 attack=AttackSettings(steps=10),
                                 certify=True, sanity=False)
    assert result.certified_accuracy is not None and result.lipschitz_constant > 0
    for cert, emp in zip(result.certified_accuracy, result.robust_accuracy):
        assert cert <= emp
    assert torch.all(result.certified_radii <= result.distances)
    assert result.sanity["checks"]["certified_below_empirical"]["passed"]


def test_certified_never_exceeds_empirical_cnn():
    model = trained_cnn()  # conv, BatchNorm (folded), ReLU, average pooling, dropout, linear: a chain
    x, y = quadrant_data(32, seed=8)
    eps = [0.0, 0.02, 0.05, 0.1, 0.2, 0.5]
    result = evaluate_robustness(model, (x, y), epsilons=eps, attack=AttackSettings(steps=10), certify=True,
                                 sanity=False)
    assert result.certified_accuracy[0] == pytest.approx(result.clean_accuracy)
    for cert, emp in zip(result.certified_accuracy, result.robust_accuracy):
        assert cert <= emp
    assert torch.all(result.certified_radii[result.correct] <= result.distances[result.correct])
    assert result.to_dict()["certified_acc"]["0.1"] == result.certified_accuracy[3]


def test_linf_radius_is_l2_radius_over_sqrt_dimension():
    binary, x, y, _ = linear_problem(n=10)
    model = _as_sequential(binary)
    l2 = certified_radii(model, x, y, norm="l2")
    linf = certified_radii(model, x, y, norm="linf")
    torch.testing.assert_close(linf, l2 / 8.0)


def test_unknown_lipschitz_constant_is_refused():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(64, 64)
            self.b = nn.Linear(64, 2)

        def forward(self, x):
            x = x.flatten(1)
            return self.b(x + self.a(x))

    binary, x, y, _ = linear_problem(n=10)
    with pytest.raises(InputError, match="no certified accuracy for this model: .*not a chain"):
        certified_accuracy(Residual(), (x, y), epsilons=[0.1])
    with pytest.raises(InputError, match="no certified accuracy for this model"):
        evaluate_robustness(binary, (x, y), epsilons=[0.1], attack=AttackSettings(steps=2), certify=True, sanity=False)
    # a given constant bypasses the computation
    assert certified_accuracy(Residual(), (x, y), epsilons=[0.0], lipschitz=10.0)[0] >= 0.0


def test_certified_accuracy_returns_one_value_per_epsilon_in_the_order_given():
    """A bare list: zip(epsilons, values) must pair each radius with its own value (unsorted radii were sorted)."""
    _, x, y, _ = linear_problem(n=10)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    ascending = certified_accuracy(model, (x, y), epsilons=[0.0, 0.1, 1.0])
    assert certified_accuracy(model, (x, y), epsilons=[1.0, 0.1, 0.0]) == ascending[::-1]
    assert certified_accuracy(model, (x, y), epsilons=[0.1, 0.1]) == [ascending[1]] * 2
