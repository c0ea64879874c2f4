"""rkhsreg.training: the plain-PyTorch helpers (no Lightning), and the core's independence from Lightning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rkhsreg import ConfigurationError, InputError, create_constraint, create_penalty
from rkhsreg.training import (apply_constraints, build_constraints, build_penalties, evaluate_penalties,
                              gather_batch, regularized_loss)
from tests.conftest import SmallCNN



class _Count(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.lin(x.flatten(1)[:, :4])


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g)


def test_regularized_loss_is_the_clean_loss_plus_weighted_penalties(batch) -> None:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    specs = {"gradient_norm": {"weight": 0.1}, "loss_gradient": {"weight": 0.2}}
    total, parts = regularized_loss(loss, model, x, y, build_penalties(specs))
    expected = loss + create_penalty("gradient_norm", weight=0.1)(model, x, y) + \
        create_penalty("loss_gradient", weight=0.2)(model, x, y)
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"gradient_norm", "loss_gradient"} and not parts["gradient_norm"].requires_grad
    total.backward()  # one backward through clean loss and penalties
    assert all(p.grad is not None for p in model.parameters())


def test_zero_weight_penalties_cost_nothing(batch) -> None:
    model = _Count()
    x, y = batch
    terms = evaluate_penalties(model, x, y, build_penalties({"loss_gradient": {"weight": 0.0}}))
    assert model.calls == 0 and terms.added is None and terms.values == {}
    assert terms.combine(torch.tensor(1.5)) == 1.5


def test_replacing_penalty_replaces_the_clean_loss(batch) -> None:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, y = batch
    penalties = build_penalties([create_penalty("adversarial_training", epsilon=0.0, steps=1),
                                 create_penalty("loss_gradient", weight=0.5)])
    terms = evaluate_penalties(model, x, y, penalties)
    total = terms.combine(torch.tensor(100.0))  # the clean loss is dropped
    torch.testing.assert_close(total.detach(), terms.weighted["adversarial_training"] + terms.weighted["loss_gradient"])
    assert terms.passes.forward > 0 and terms.passes.backward > 0


def test_apply_constraints_projects_in_order() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    with torch.no_grad():
        model.head.weight.mul_(50)
    apply_constraints(model, {"spectral_norm_projection": {"radius": 0.5}})
    assert torch.linalg.matrix_norm(model.head.weight, ord=2) <= 0.5 * 1.01
    assert list(build_constraints([create_constraint("spectral_norm_projection")])) == ["spectral_norm_projection"]


def test_gather_batch_without_process_group_is_identity(batch) -> None:
    x, _ = batch
    assert gather_batch(x) is x and gather_batch(None) is None


def test_penalties_under_inference_mode_explain_the_trainer_fix(batch) -> None:
    x, y = batch
    with torch.inference_mode(), pytest.raises(ConfigurationError, match=r"Trainer\(inference_mode=False\)"):
        evaluate_penalties(SmallCNN(), x, y, build_penalties({"gradient_norm": {}}))


@pytest.mark.parametrize("spec, match", [
    (3, r"penalties=3 is not allowed"),
    ([torch.nn.Linear(2, 2)], r"penalties contains Linear.*not an rkhsreg.Penalty"),
    ({"": {}}, r"penalty label '' is not allowed"),
])
def test_bad_penalty_specs(spec, match) -> None:
    with pytest.raises(ConfigurationError, match=match):
        build_penalties(spec)


def test_non_tensor_inputs_are_refused() -> None:
    with pytest.raises(InputError, match=r"inputs=list is not a tensor"):
        evaluate_penalties(SmallCNN(), [1, 2], None, build_penalties({"gradient_norm": {}}))
