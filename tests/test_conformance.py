"""Every registered plugin (built-in or third-party) must pass these checks.

Parametrised over the registry at collection time, like timm's model tests: a new plugin is
checked automatically.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import ConfigurationError, InputError
from tests.conftest import SmallCNN, assert_same_snapshot, snapshot

PENALTIES = rkhsreg.list_penalties()
CONSTRAINTS = rkhsreg.list_constraints()


def _model() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    with torch.no_grad():
        model(torch.randn(16, 1, 8, 8))  # non-trivial BatchNorm statistics
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g)


@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_contract(name: str) -> None:
    model, (x, y) = _model(), _batch()
    penalty = rkhsreg.create_penalty(name)
    assert isinstance(penalty, rkhsreg.Penalty)
    assert repr(penalty).startswith(type(penalty).__name__ + "(weight=")
    model(x).sum().backward()  # pre-existing .grad that the inner loops must not touch
    before = snapshot(model)
    value = penalty(model, x, y)
    assert_same_snapshot(before, snapshot(model))
    assert value.dim() == 0 and math.isfinite(value.item()) and value.item() >= 0
    model.zero_grad()
    value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), \
        f"{name}: the value does not depend on the parameters"
    assert penalty.last_passes.forward >= 0 and penalty.last_passes.backward >= 0


@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_weight_scales_value_and_state_resumes(name: str) -> None:
    model, (x, y) = _model(), _batch()
    one, two = rkhsreg.create_penalty(name, weight=1.0), rkhsreg.create_penalty(name, weight=2.0)
    two.load_state_dict(one.state_dict())
    torch.testing.assert_close(2 * one(model, x, y), two(model, x, y))
    # resuming from a state dict reproduces the next value exactly (random streams, warm starts)
    three = rkhsreg.create_penalty(name, weight=1.0)
    three.load_state_dict(one.state_dict())
    torch.testing.assert_close(one(model, x, y), three(model, x, y), rtol=0, atol=0)
    three.load_state_dict({})  # old or foreign checkpoints without the keys still load


@pytest.mark.parametrize("name", PENALTIES)
@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_penalty_rejects_bad_weight(name: str, weight: float) -> None:
    with pytest.raises(ConfigurationError, match="weight"):
        rkhsreg.create_penalty(name, weight=weight)


@pytest.mark.parametrize("name", PENALTIES)
def test_penalty_rejects_bad_inputs(name: str) -> None:
    model, (x, y) = _model(), _batch()
    penalty = rkhsreg.create_penalty(name)
    with pytest.raises(InputError, match="inputs"):
        penalty(model, (x * 255).to(torch.uint8), y)
    with pytest.raises(InputError, match="model"):
        penalty(nn.ReLU(), x, y)
    with pytest.raises(InputError, match="inputs"):
        penalty(model, x[0, 0, 0], y)  # rank 1: not a batch
    with pytest.raises(InputError, match="targets"):
        penalty(model, x, y[:, None])  # (N, 1) instead of (N,)
    with pytest.raises(InputError, match="targets"):
        penalty(model, x, y[:3])  # not matching the batch


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_constraint_contract(name: str) -> None:
    model, _ = _model(), _batch()
    constraint = rkhsreg.create_constraint(name)
    assert isinstance(constraint, rkhsreg.Constraint)
    rng = torch.get_rng_state()
    modes = [m.training for m in model.modules()]
    constraint(model)
    assert torch.equal(rng, torch.get_rng_state())
    assert modes == [m.training for m in model.modules()]
    assert all(p.grad is None for p in model.parameters())
    once = [p.detach().clone() for p in model.parameters()]
    constraint(model)  # a projection is idempotent up to round-off
    for a, p in zip(once, model.parameters()):
        torch.testing.assert_close(a, p.detach(), rtol=2e-3, atol=1e-6)
    other = rkhsreg.create_constraint(name)
    other.load_state_dict(constraint.state_dict())
    other.load_state_dict({})


@pytest.mark.parametrize("name", CONSTRAINTS)
@pytest.mark.parametrize("radius", [-1.0, 0.0, float("nan"), float("inf")])
def test_constraint_rejects_bad_radius(name: str, radius: float) -> None:
    with pytest.raises(ConfigurationError, match="radius"):
        rkhsreg.create_constraint(name, radius=radius)
