"""Sanity checks of an evaluation: each one fires on the model built to fail it, and only there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("torchattacks")

from rkhsreg import InputError  # noqa: E402
from rkhsreg.evaluation import MaskedGradientWarning, evaluate_robustness  # noqa: E402
from rkhsreg.evaluation.sanity import curve_checks, gradient_health  # noqa: E402
from rkhsreg.evaluation.settings import AttackSettings  # noqa: E402
from tests._evaluation_helpers import linear_problem  # noqa: E402


def test_curve_checks():
    ok = curve_checks(0.9, [0.0, 0.5, 1.0], [0.9, 0.6, 0.2])
    assert ok["clean_at_zero"]["passed"] and ok["monotone"]["passed"]
    bad = curve_checks(0.9, [0.0, 0.5, 1.0], [0.8, 0.6, 0.7])
    assert not bad["clean_at_zero"]["passed"] and not bad["monotone"]["passed"]
    assert "(0.5, 1.0)" in bad["monotone"]["detail"]


def test_gradient_health_counts_and_refuses_detached_models():
    model, x, y, _ = linear_problem(n=8)
    assert gradient_health(model, x, y) == (0, 8)

    class Detached(nn.Module):
        def forward(self, z):
            return model(z.detach()).detach()

    with pytest.raises(InputError, match="does not depend differentiably on its input"):
        gradient_health(Detached(), x, y)


def test_constant_model_fails_the_unbounded_check():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

        def forward(self, z):
            return self.bias.expand(z.shape[0], 2) + 0 * z.flatten(1).sum(1, keepdim=True)

    _, x, y, _ = linear_problem(n=12)
    with pytest.warns(MaskedGradientWarning, match="stay correctly classified under an attack of unbounded size"):
        result = evaluate_robustness(Constant(), (x, y), epsilons=[0.1], attack=AttackSettings(steps=3))
    assert not result.sanity["checks"]["unbounded"]["passed"]


def test_healthy_model_passes_every_check():
    model, x, y, _ = linear_problem(n=20)
    result = evaluate_robustness(model, (x, y), epsilons=[0.0, 0.2, 0.4], attack=AttackSettings(steps=10))
    checks = result.sanity["checks"]
    assert set(checks) == {"deterministic", "gradients", "gradient_free", "ce_agreement", "unbounded",
                           "clean_at_zero", "monotone"}
    assert all(c["passed"] for c in checks.values()) and result.sanity["warnings"] == []
