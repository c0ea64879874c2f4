"""Penalties on a ``torch.compile``d model: run on the eager module behind it, same value, same gradients.

Compiled graphs free their backward buffers (no ``retain_graph``) and have no double backward, which ‖f‖²_δ's
ranking, ‖∇f‖², grad-ℓ2 and ‖D_τ f‖² need; before penalties ran the eager module these raised a RuntimeError.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import rkhsreg
from rkhsreg._checks import eager
from rkhsreg.models import mnist_vgg5
from tests._lightning_helpers import small_kwargs


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    plain = mnist_vgg5(width=4)
    return plain, torch.compile(plain, backend="aot_eager")  # no C compiler needed; same autograd limits


@pytest.mark.parametrize("name", rkhsreg.list_penalties())
def test_a_compiled_model_gets_the_eager_value_and_gradients(models, name):
    plain, compiled = models
    assert eager(compiled) is plain and eager(plain) is plain
    x, y = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 10
    results = []
    for model in (compiled, plain):
        model.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # the δ search's calibration notes
            value = rkhsreg.create_penalty(name, **small_kwargs(name))(model, x, y)
        value.backward()
        results.append((value.detach(), [p.grad.clone() for p in plain.parameters() if p.grad is not None]))
    (value, grads), (ref, ref_grads) = results
    assert torch.equal(value, ref) and len(grads) == len(ref_grads)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))


def test_the_projection_of_a_compiled_model_keeps_the_eager_layer_names(models):
    """Its state (power-iteration vectors by layer) resumes on the same model compiled or not."""
    plain, compiled = models
    states = []
    for model in (compiled, plain):
        project = rkhsreg.create_constraint("spectral_norm_projection", radius=10.0, seed=0)
        project(model)
        states.append(project.state_dict()["vectors"])
    assert states[0].keys() == states[1].keys() and all(not k.startswith("_orig_mod") for k in states[0])


def test_layer_norms_of_a_compiled_model_carry_the_eager_names(models):
    from rkhsreg.functional.spectral import layer_spectral_norms

    plain, compiled = models
    assert layer_spectral_norms(compiled) == layer_spectral_norms(plain)
