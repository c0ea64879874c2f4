"""Every penalty and the projection on the timm families users bring, with the side-effect contract.

One net per kind of layer the library must cope with: BatchNorm (ResNet), LayerNorm and depthwise convs
(ConvNeXt), attention through ``F.scaled_dot_product_attention`` (ViT), hard-sigmoid gates without a second
derivative (MobileNetV3). Random init, CIFAR-size inputs, tiny settings: the properties, not the values.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import InputError
from rkhsreg.functional.second_order import FIRST_ORDER_PENALTIES
from tests._lightning_helpers import small_kwargs

timm = pytest.importorskip("timm")

MODELS = {"resnet10t": {}, "convnext_atto": {}, "vit_tiny_patch16_224": {"img_size": 32},
          "mobilenetv3_small_050": {}}
#: (model, penalty) pairs PyTorch cannot differentiate twice: an InputError at the call, by design
NO_SECOND_DERIVATIVE = {"mobilenetv3_small_050"}


@pytest.fixture(scope="module", params=list(MODELS))
def net(request) -> tuple[str, nn.Module]:
    torch.manual_seed(0)
    model = timm.create_model(request.param, pretrained=False, num_classes=10, **MODELS[request.param])
    with torch.no_grad():  # BatchNorm statistics away from their initial values
        model.train()(torch.rand(8, 3, 32, 32))
    return request.param, model


def _state(model: nn.Module) -> tuple[list[bool], dict[str, torch.Tensor]]:
    return [m.training for m in model.modules()], {k: b.clone() for k, b in model.named_buffers()}


@pytest.mark.parametrize("name", rkhsreg.list_penalties())
def test_every_penalty_keeps_the_contract(net, name):
    model_name, model = net
    x, y = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 3, 5, 9])
    model.train()
    model.zero_grad(set_to_none=True)
    modes, buffers = _state(model)
    penalty = rkhsreg.create_penalty(name, **small_kwargs(name))
    if model_name in NO_SECOND_DERIVATIVE and name not in (*FIRST_ORDER_PENALTIES, "logit_squeezing"):
        with pytest.raises(InputError, match=f"^{name}: .*aten::hardsigmoid_backward"):
            penalty(model, x, y)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the δ search's calibration notes
        value = penalty(model, x, y)
    after_modes, after_buffers = _state(model)
    assert after_modes == modes, "a module's train/eval mode changed"
    assert after_buffers.keys() == buffers.keys()
    assert all(torch.equal(after_buffers[k], buffers[k]) for k in buffers), "a buffer (BN statistics) changed"
    assert all(p.grad is None for p in model.parameters()), "the inner passes wrote parameters' .grad"
    assert value.dim() == 0 and torch.isfinite(value) and value >= 0
    value.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_the_projection_bounds_every_layer(net):
    model_name, model = net
    radius, documented = 0.5, 1e-4     # the class docstring: σ ≤ radius·(1 + 1e-4) for the reshaped norm
    rkhsreg.create_constraint("spectral_norm_projection", radius=radius)(model)
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers
    for layer in layers:
        sigma = torch.linalg.svdvals(layer.weight.detach().reshape(layer.weight.shape[0], -1).double())[0]
        assert sigma <= radius * (1 + documented), f"{model_name}: {layer}"
