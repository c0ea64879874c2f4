"""TangentPropagation (‖D_τ f‖²): closed form on linear models, brute force on a CNN, gradients, contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import ConfigurationError, InputError
from rkhsreg.functional.deformation import image_gradient
from rkhsreg.penalties.tangent_propagation import TangentPropagation
from tests.conftest import assert_bfloat16_close, assert_same_snapshot, directional_difference, snapshot

KW = dict(num_examples=5, num_tangents=6, grid_size=3, seed=4)


def _linear(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3, bias=False)).to(dtype)


def _batch(dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(7, 2, 8, 8, generator=g).to(dtype), torch.randint(0, 3, (7,), generator=g)


def _replay(state, inputs, **kw):
    replay = TangentPropagation(**{**KW, **kw})
    replay.load_state_dict(state)
    return replay.sample_tangents(inputs)


@pytest.mark.parametrize("mode", ["per_class", "joint"])
def test_linear_model_closed_form(mode):
    """f(x) = Wx: ∇f_k = W_k, so the value is λ Σ_k max_i Σ_d (W_k·t_{i,d})² (joint: λ max_i Σ_k Σ_d ...)."""
    model, (x, _) = _linear(), _batch()
    penalty = TangentPropagation(weight=0.1, mode=mode, **KW)
    state = penalty.state_dict()
    value = penalty(model, x)
    rows, tangents = _replay(state, x)
    assert rows.numel() == 5 and tangents.shape == (5, 6, 2, 8, 8)
    dots = torch.einsum("kf,idf->kid", model[1].weight.detach(), tangents.flatten(2)) ** 2
    expected = dots.sum(-1).max(1).values.sum() if mode == "per_class" else dots.sum((0, 2)).max()
    torch.testing.assert_close(value, 0.1 * expected, rtol=1e-5, atol=0)


def test_linear_model_class_subset():
    model, (x, y) = _linear(), _batch()
    penalty = TangentPropagation(weight=1.0, classes=0, **KW)  # only the true class of each example
    state = penalty.state_dict()
    value = penalty(model, x, y)
    rows, tangents = _replay(state, x)
    dots = (torch.einsum("kf,idf->kid", model[1].weight.detach(), tangents.flatten(2)) ** 2).sum(-1)  # (k, i)
    own = dots.masked_fill(y[rows][None, :] != torch.arange(3)[:, None], float("-inf")).max(1).values
    torch.testing.assert_close(value, own[own > float("-inf")].sum(), rtol=1e-5, atol=0)


def test_gradient_matches_closed_form_and_finite_differences():
    model, (x, _) = _linear(torch.float64), _batch(torch.float64)
    penalty = TangentPropagation(weight=0.1, **KW)
    state = penalty.state_dict()
    penalty(model, x).backward()
    weight = model[1].weight
    rows, tangents = _replay(state, x)
    t = tangents.flatten(2)
    dots = torch.einsum("kf,idf->kid", weight.detach(), t)
    best = (dots ** 2).sum(-1).argmax(1)  # i_k
    closed = torch.stack([2 * 0.1 * (dots[k, best[k], :, None] * t[best[k]]).sum(0) for k in range(3)])
    torch.testing.assert_close(weight.grad, closed)
    direction = torch.randn(weight.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fd = directional_difference(penalty, state, model, x, weight, direction, 1e-4)
    assert fd == pytest.approx((weight.grad * direction).sum().item(), rel=1e-6)


def test_nonlinear_model_brute_force_and_double_backprop():
    """On a smooth CNN: the value equals the brute-force per-class max, and its parameter gradient is right."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 64, 3)).double()
    x, _ = _batch(torch.float64)
    penalty = TangentPropagation(weight=1.0, **KW)
    state = penalty.state_dict()
    value = penalty(model, x)
    rows, tangents = _replay(state, x)
    grads = torch.stack([torch.autograd.functional.jacobian(lambda z: model(z[None])[0], x[i]) for i in rows])
    dots = torch.einsum("ikchw,idchw->kid", grads, tangents) ** 2  # (class, example, tangent)
    torch.testing.assert_close(value, dots.sum(-1).max(1).values.sum(), rtol=1e-9, atol=0)
    value.backward()
    conv = model[0].weight
    direction = torch.randn(conv.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fd = directional_difference(penalty, state, model, x, conv, direction, 1e-6)
    assert fd == pytest.approx((conv.grad * direction).sum().item(), rel=1e-5)


def test_tangents_are_translations_then_random_fields_on_the_budget():
    x, _ = _batch()
    penalty = TangentPropagation(max_displacement=1.5, **KW)
    rows, tangents = penalty.sample_tangents(x)
    grad = image_gradient(x[rows])  # (m, C, 2, H, W)
    torch.testing.assert_close(tangents[:, 0], -1.5 * grad[:, :, 0])
    torch.testing.assert_close(tangents[:, 1], -1.5 * grad[:, :, 1])
    assert not torch.allclose(tangents[0, 2], tangents[1, 2])  # random fields differ per example
    fd = TangentPropagation(max_displacement=1.5, method="finite_difference", **KW)
    _, tangents_fd = fd.sample_tangents(x)
    inner = (..., slice(2, -2), slice(2, -2))
    torch.testing.assert_close(tangents_fd[inner], tangents[inner], rtol=0, atol=1e-3)
    no_shift = TangentPropagation(translations=False, **KW)
    assert no_shift.sample_tangents(x)[1].shape == (5, 6, 2, 8, 8)


def test_passes(small_cnn, image_batch):
    x, y = image_batch
    penalty = TangentPropagation(num_examples=4, num_tangents=5)
    penalty(small_cnn, x, y)
    k = 4
    # selection: 4 rows forward, 4·K input-backward; value: K rows forward, 3K (graph + double backward)
    assert penalty.last_passes.forward == pytest.approx((4 + k) / 6)
    assert penalty.last_passes.backward == pytest.approx((4 * k + 3 * k) / 6)


@pytest.mark.parametrize("mode", ["per_class", "joint"])
@pytest.mark.parametrize("eval_mode", [True, False])
def test_no_side_effects(small_cnn, image_batch, mode, eval_mode):
    x, y = image_batch
    small_cnn.head.weight.grad = torch.ones_like(small_cnn.head.weight)
    before = snapshot(small_cnn)
    value = TangentPropagation(mode=mode, eval_mode=eval_mode, num_tangents=4, classes=1)(small_cnn, x, y)
    assert torch.isfinite(value)
    assert_same_snapshot(before, snapshot(small_cnn))


def test_state_dict_registry_and_repr(small_cnn, image_batch):
    x, y = image_batch
    a = rkhsreg.create_penalty("tangent_propagation", seed=1)
    assert isinstance(a, TangentPropagation) and a.weight == 0.1 and "num_tangents=30" in repr(a)
    state = a.state_dict()
    first = a(small_cnn, x, y)
    b = TangentPropagation(seed=2)
    b.load_state_dict(state)
    torch.testing.assert_close(b(small_cnn, x, y), first)


def test_bfloat16_close_to_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3))
    x, _ = _batch()
    assert_bfloat16_close(lambda: TangentPropagation(**KW), model, x, rel=0.05)


def test_bad_input(small_cnn, image_batch):
    x, y = image_batch
    penalty = TangentPropagation()
    with pytest.raises(InputError, match=r"rank 3\); this plugin needs rank 4"):
        penalty(small_cnn, x[:, 0], y)
    with pytest.raises(InputError, match="dtype torch.int64"):
        penalty(small_cnn, x.long(), y)
    with pytest.raises(InputError, match=r"targets has shape \(5,\)"):
        penalty(small_cnn, x, y[:5])
    with pytest.raises(InputError, match="targets=None"):
        TangentPropagation(classes=2)(small_cnn, x)
    with pytest.raises(ConfigurationError, match="num_tangents=1 is out of range; with translations=True"):
        TangentPropagation(num_tangents=1)
    with pytest.raises(ConfigurationError, match=r"max_displacement=-1.0 is out of range"):
        TangentPropagation(max_displacement=-1.0)
    with pytest.raises(ConfigurationError, match="max_gradient=nan is not finite"):
        TangentPropagation(max_gradient=float("nan"))
    with pytest.raises(ConfigurationError, match="weight=inf is not finite"):
        TangentPropagation(weight=float("inf"))
    with pytest.raises(ConfigurationError, match="method='jvp' is not allowed"):
        TangentPropagation(method="jvp")
    with pytest.raises(ConfigurationError, match="num_examples='some' is not allowed"):
        TangentPropagation(num_examples="some")
