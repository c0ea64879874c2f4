"""The penalties on ∇_x f on models PyTorch differentiates twice only with help: fused attention, and ops
without a second derivative (a clear error at the penalty's call, not a RuntimeError in the user's backward)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rkhsreg
from rkhsreg import InputError
from rkhsreg.functional.second_order import FIRST_ORDER_PENALTIES

SECOND_ORDER = {"gradient_norm": {}, "loss_gradient": {},
                "tangent_propagation": {"num_examples": 4, "num_tangents": 2, "seed": 0}}


class TinyAttention(nn.Module):
    """4×4 patches of an 8×8 image → 4 tokens, one self-attention layer, mean pool, linear head.

    ``fused=True`` calls ``F.scaled_dot_product_attention`` (a fused kernel without double backward on CPU);
    ``fused=False`` writes softmax(QKᵀ/√d)V out: the same function, in differentiable ops.
    """

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        self.embed = nn.Conv2d(1, 8, kernel_size=4, stride=4)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)             # (n, 4, 8)
        q, k, v = self.qkv(tokens).unsqueeze(1).chunk(3, dim=-1)      # (n, 1, 4, 8) each: one head
        if self.fused:
            mixed = F.scaled_dot_product_attention(q, k, v)
        else:
            mixed = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1) @ v
        return self.head(torch.tanh(mixed.squeeze(1)).mean(1))


def _grads(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    value = rkhsreg.create_penalty(name, weight=1.0, **SECOND_ORDER[name])(model, x, y)
    value.backward()
    return value.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_fused_attention_is_differentiated_twice_exactly(name):
    torch.manual_seed(0)
    fused, written = TinyAttention(fused=True), TinyAttention(fused=False)
    written.load_state_dict(fused.state_dict())
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    value, grads = _grads(fused, name, x, y)          # without the math kernel: RuntimeError in backward()
    ref_value, ref_grads = _grads(written, name, x, y)
    tol = dict(rtol=1e-4, atol=1e-4 * float(ref_value.abs()) + 10 * torch.finfo(torch.float32).eps)
    torch.testing.assert_close(value, ref_value, **tol)
    for got, want in zip(grads, ref_grads):
        assert got.abs().sum() > 0 or want.abs().sum() == 0
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()) + 1e-7)


def _hard_gated() -> nn.Module:
    """A conv net with a hard-sigmoid gate (as timm's MobileNetV3 squeeze-excite): no second derivative."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Hardsigmoid(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_an_op_without_second_derivative_is_named_at_the_call(name):
    model = _hard_gated()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with pytest.raises(InputError) as info:
        rkhsreg.create_penalty(name, **SECOND_ORDER[name])(model, x, y)
    message = str(info.value)
    assert message.startswith(f"{name}:")
    assert "aten::hardsigmoid_backward" in message and "nn.Hardsigmoid" in message
    assert all(first in message for first in FIRST_ORDER_PENALTIES)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", FIRST_ORDER_PENALTIES)
def test_the_first_order_penalties_the_message_offers_work_on_it(name):
    model = _hard_gated()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    kwargs = {"adversarial_deformation": {"num_examples": 4, "num_deformations": 2},
              "adversarial_perturbation": {"epsilon": 0.5, "steps": 2, "candidates": "all"},
              "adversarial_training": {"epsilon": 0.5, "steps": 2}}.get(name, {})
    value = rkhsreg.create_penalty(name, **kwargs)(model, x, y)
    value.backward()
    assert torch.isfinite(value) and any(p.grad is not None for p in model.parameters())
