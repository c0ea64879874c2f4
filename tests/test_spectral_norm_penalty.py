"""spectral_norm penalty: value Σ σ², gradients, persistent vectors, errors."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rkhsreg
from rkhsreg import ConfigurationError, InputError
from rkhsreg.penalties.spectral_norm import SpectralNormPenalty



def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Identity(),
                         nn.Conv2d(3, 2, 3, stride=2), nn.Flatten(), nn.Linear(8, 4))


def svd_sum(model: nn.Module) -> float:
    return sum(float(torch.linalg.svdvals(m.weight.detach().reshape(m.weight.shape[0], -1))[0]) ** 2
               for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)))


def dense_operator_sum(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Σ σ² with σ the operator norm of each conv at its input shape (dense matrix), or matrix norm for Linear."""
    total, shape = 0.0, input_shape
    for m in model:
        if isinstance(m, nn.Conv2d):
            n = math.prod(shape)
            basis = torch.eye(n).reshape(n, *shape)
            out = F.conv2d(basis, m.weight.detach(), None, m.stride, m.padding)
            total += float(torch.linalg.svdvals(out.reshape(n, -1).T.double())[0]) ** 2
            shape = tuple(out.shape[1:])
        elif isinstance(m, nn.Linear):
            total += float(torch.linalg.svdvals(m.weight.detach())[0]) ** 2
        elif isinstance(m, nn.Flatten):
            shape = (math.prod(shape),)
    return total


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 6, 6, generator=g), torch.randint(0, 4, (3,), generator=g)


def test_registered_with_paper_defaults():
    penalty = rkhsreg.create_penalty("spectral_norm")
    assert isinstance(penalty, SpectralNormPenalty)
    assert (penalty.weight, penalty.method, penalty.iterations, penalty.exact) == (0.01, "reshape", 2, False)


def test_exact_value_is_sum_of_squared_svd_norms_times_weight(batch):
    model = small_net()
    penalty = SpectralNormPenalty(weight=0.5, exact=True)
    value = penalty(model, *batch)
    assert value.item() == pytest.approx(0.5 * svd_sum(model), rel=1e-6)
    assert penalty.last_passes == rkhsreg.PassCount(0.0, 0.0)


@pytest.mark.parametrize("exact", [True, False])
def test_value_keeps_float32_precision_inside_a_bfloat16_autocast_step(batch, exact):
    """A mixed-precision step: the bound is still computed from the float32 weights in float32."""
    model = small_net()
    plain = SpectralNormPenalty(weight=1.0, exact=exact, seed=0)(model, *batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = SpectralNormPenalty(weight=1.0, exact=exact, seed=0)(model, *batch)
    assert mixed.dtype == torch.float32
    # bf16 matmuls would be off by ~2^-8 relative; float32 agrees to float32 rounding
    assert mixed.item() == pytest.approx(plain.item(), rel=16 * torch.finfo(torch.float32).eps)


def test_power_iteration_value_converges_over_calls(batch):
    model = small_net()
    penalty = SpectralNormPenalty(weight=1.0)
    rng = torch.get_rng_state()
    values = [penalty(model, *batch).item() for _ in range(60)]
    assert torch.equal(rng, torch.get_rng_state()), "the random start used the global RNG"
    assert values[-1] == pytest.approx(svd_sum(model), rel=1e-4)
    assert values[0] <= values[-1] * (1 + 1e-6)  # power iteration approaches from below
    assert penalty.last_passes == rkhsreg.PassCount(0.0, 0.0)


def test_operator_value_converges_to_dense_operator_norms(batch):
    model = small_net()
    penalty = SpectralNormPenalty(weight=1.0, method="operator", input_shape=(1, 6, 6), iterations=20)
    for _ in range(100):
        value = penalty(model, *batch).item()
    assert value == pytest.approx(dense_operator_sum(model, (1, 6, 6)), rel=1e-3)
    assert value > svd_sum(model)  # the operator norms of these convs exceed the reshaped ones


@pytest.mark.parametrize("kwargs", [{}, {"exact": True}, {"method": "operator", "input_shape": (1, 6, 6)}])
def test_gradient_reaches_every_weight(batch, kwargs):
    model = small_net()
    penalty = SpectralNormPenalty(weight=1.0, **kwargs)
    for _ in range(30):
        value = penalty(model, *batch)
    value.backward()
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
            assert m.bias.grad is None  # the bias plays no part


def test_exact_gradient_is_two_sigma_u_v(batch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4, bias=False))
    SpectralNormPenalty(weight=1.0, exact=True)(model, *batch).backward()
    u, s, vh = torch.linalg.svd(model[0].weight.detach())
    torch.testing.assert_close(model[0].weight.grad, 2 * s[0] * torch.outer(u[:, 0], vh[0]), rtol=1e-4, atol=1e-6)


def test_state_dict_round_trip_gives_identical_next_value(batch):
    model = small_net()
    first = SpectralNormPenalty(weight=1.0, method="operator", input_shape=(1, 6, 6))
    for _ in range(3):
        first(model, *batch)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = SpectralNormPenalty(weight=1.0, method="operator", input_shape=(1, 6, 6), seed=7)
    second.load_state_dict(torch.load(buffer))
    assert set(first.state_dict()["vectors"]) == {"0.weight", "3.weight", "5.weight"}
    assert second(model, *batch).item() == first(model, *batch).item()
    fresh = SpectralNormPenalty(weight=1.0, method="operator", input_shape=(1, 6, 6), seed=7)
    assert fresh(model, *batch).item() != first(model, *batch).item()  # the state mattered


def test_state_dict_restores_the_generator_for_layers_met_later(batch):
    first = SpectralNormPenalty(weight=1.0)
    first(nn.Linear(3, 2), *batch)  # draws a random start
    second = SpectralNormPenalty(weight=1.0, seed=5)
    second.load_state_dict(first.state_dict())
    model = small_net()  # new layers: random starts from the restored generator
    assert second(model, *batch).item() == first(model, *batch).item()


def test_missing_and_mismatched_state_is_tolerated(batch):
    model = small_net()
    reference = SpectralNormPenalty(weight=1.0)(model, *batch).item()
    for state in ({}, {"vectors": {}}, {"unknown": 1}, {"vectors": {"0.weight": {"u": torch.ones(7)}}}):
        penalty = SpectralNormPenalty(weight=1.0)
        penalty.load_state_dict(state)
        assert penalty(model, *batch).item() == reference


def test_bfloat16_weights(batch):
    model = small_net().to(torch.bfloat16)
    value = SpectralNormPenalty(weight=1.0, iterations=30)(model, batch[0].bfloat16(), batch[1])
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(svd_sum(model.float()), rel=2e-2)
    value.backward()
    assert model[0].weight.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("kwargs, match", [
    ({"weight": -1.0}, "weight=-1.0 is out of range"),
    ({"weight": float("nan")}, "weight=nan is not finite"),
    ({"weight": float("inf")}, "weight=inf is not finite"),
    ({"method": "svd"}, "method='svd' is not allowed"),
    ({"method": "operator"}, "input_shape=None is not allowed with method='operator'"),
    ({"input_shape": (1, -3)}, "input_shape=.* is not allowed"),
    ({"iterations": 0}, "iterations=0 is out of range"),
    ({"exact": "yes"}, "exact='yes' is not allowed"),
    ({"exact": True, "method": "operator", "input_shape": (1, 6, 6)}, "exact=True is not allowed"),
    ({"seed": -1}, "seed=-1 is out of range"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        SpectralNormPenalty(**kwargs)


def test_bad_models(batch):
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        SpectralNormPenalty()(lambda x: x, *batch)
    with pytest.raises(InputError, match="no nn.Linear"):
        SpectralNormPenalty()(nn.Sequential(nn.BatchNorm2d(1)), *batch)
    with pytest.raises(InputError, match="inputs has dtype torch.uint8"):
        SpectralNormPenalty()(small_net(), batch[0].to(torch.uint8), batch[1])
    with pytest.raises(InputError, match="targets has shape"):
        SpectralNormPenalty()(small_net(), batch[0], batch[1][:2])
