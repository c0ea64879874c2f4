"""The protein CNN with its mask channel, and the penalties/constraints on 1-D sequence inputs (N, 21, L)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rkhsreg import create_constraint, create_penalty
from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.data.protein import encode_sequences
from rkhsreg.functional.pgd import pgd_maximize
from rkhsreg.functional.spectral import layer_spectral_norms
from rkhsreg.protein_models import protein_cnn

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQ", "MADEEKLPPGWEKRMSRSSGRVYYFNHITNASQWERPSG", "PEPTIDE"]
LENGTH = 32


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return protein_cnn(width=8), encode_sequences(SEQS, length=LENGTH), torch.tensor([1, 0, 1, 0])


def _padding(x):
    """Where a perturbation must have no effect: padding positions of the residue channels, and the mask channel."""
    out = torch.zeros_like(x, dtype=torch.bool)
    out[:, :20] = (x[:, 20:] == 0).expand(-1, 20, -1)
    out[:, 20] = True
    return out


def test_shapes_and_plain_one_hot(batch):
    net, x, _ = batch
    assert net(x).shape == (4, 2)
    assert net(x[:, :20]).shape == (4, 2)
    with pytest.raises(InputError, match=r"\(N, 20, L\)"):
        net(torch.zeros(2, 1, 28, 28))


@pytest.mark.parametrize("kwargs, match", [({"width": 0}, "width=0"), ({"kernel_size": 4}, "kernel_size=4")])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        protein_cnn(**kwargs)


def test_padding_content_and_small_mask_changes_do_not_matter(batch):
    net, x, _ = batch
    noisy = x + torch.randn_like(x).clamp(-0.45, 0.45) * _padding(x)
    assert torch.allclose(net(noisy), net(x), atol=1e-6)
    flipped = x.clone()
    flipped[0, 20, -1] = 1.0          # un-masking a padding position is a different input
    flipped[0, 0, -1] = 1.0
    assert not torch.allclose(net(flipped), net(x))
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    assert float(grad[_padding(x)].abs().max()) == 0.0
    assert float(grad[:, :20][~_padding(x)[:, :20]].abs().max()) > 0


def test_pgd_perturbation_stays_on_real_residues(batch):
    net, x, _ = batch
    delta = pgd_maximize(lambda z: net(z)[:, 1], x, epsilon=1.0, steps=5, step_size=0.3)
    assert float(delta[_padding(x)].abs().max()) == 0.0
    norms = delta.flatten(1).norm(dim=1)
    assert bool((norms > 0.5).all()) and bool((norms <= 1.0 + 1e-5).all())


@pytest.mark.parametrize("name, kwargs", [
    ("adversarial_perturbation", {"epsilon": 1.0}),
    ("adversarial_perturbation", {"epsilon": 1.0, "mode": "joint"}),
    ("gradient_norm", {"weight": 0.1}),
    ("loss_gradient", {"weight": 0.1}),
    ("adversarial_training", {"epsilon": 1.0}),
    ("spectral_norm", {"weight": 0.01}),
])
def test_penalties_on_sequences_are_finite_differentiable_and_ignore_padding(batch, name, kwargs):
    net, x, y = batch
    penalty = create_penalty(name, **kwargs)
    value = penalty(net, x, y)
    assert value.dim() == 0 and torch.isfinite(value)
    grads = torch.autograd.grad(value, [p for p in net.parameters()], allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    # the same value when the padding (and the mask channel's perturbable copy) holds noise
    noisy = x + torch.randn_like(x) * _padding(x)
    noisy[:, 20] = x[:, 20]
    again = create_penalty(name, **kwargs)(net, noisy, y)
    assert float(again.detach()) == pytest.approx(float(value.detach()), rel=1e-4, abs=1e-7)


def test_spectral_norm_projection_of_conv1d_layers(batch):
    net, x, y = batch
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    create_constraint("spectral_norm_projection", radius=0.5, projection="clip")(net)
    reshaped = layer_spectral_norms(net)
    assert len(reshaped) == 4 and max(reshaped.values()) <= 0.5 + 1e-4
    create_constraint("spectral_norm_projection", radius=0.5, method="operator", input_shape=(21, LENGTH))(net)
    operator = layer_spectral_norms(net, method="operator", input_shape=(21, LENGTH))
    assert max(operator.values()) <= 0.5 * (1 + 1e-3)
    assert torch.isfinite(F.cross_entropy(net(x), y))
