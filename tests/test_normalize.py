"""rkhsreg.Normalize: the input normalisation as a layer, and the certificate of a network behind it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import ConfigurationError, InputError, Normalize
from rkhsreg.cifar_models import ChannelNormalize
from rkhsreg.evaluation import certified_radii
from rkhsreg.functional.lipschitz import lipschitz_upper_bound

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _chain_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


class _Wrapped(nn.Module):
    """A user's model factory: normalisation and network as attributes, forward calls one after the other."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.normalize, self.net = Normalize(MEAN, STD), net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class _InlineNormalisation(nn.Module):
    """The same computation with the normalisation written in forward: not a chain of layers."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def test_normalize_computes_per_channel_or_scalar_and_declares_one_over_min_std() -> None:
    x = torch.rand(2, 3, 5, 5)
    norm = Normalize(MEAN, STD)
    expected = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), expected)
    assert norm.lipschitz_constant() == pytest.approx(1 / min(STD), rel=1e-15)
    assert Normalize(0.5, 0.25)(torch.ones(1, 1, 2, 2)).eq(2.0).all() and Normalize(0.5, 0.25).lipschitz_constant() == 4
    torch.testing.assert_close(Normalize(0.0, STD)(x), x / torch.tensor(STD).view(1, 3, 1, 1))  # one mean, 3 stds
    assert norm(x.double()).dtype == torch.float64 and norm(x).dtype == torch.float32
    assert not list(norm.parameters()) and norm.state_dict() == {}  # checkpoints are unchanged by it
    assert rkhsreg.Normalize is Normalize and issubclass(ChannelNormalize, Normalize)  # one owner


@pytest.mark.parametrize("kwargs, match", [
    ({"mean": 0.5, "std": 0.0}, r"std=0.0 holds 0.0; each entry must be a number > 0"),
    ({"mean": 0.5, "std": (0.2, -1.0)}, r"std=\(0.2, -1.0\) holds -1.0"),
    ({"mean": float("nan"), "std": 1.0}, r"mean=nan holds nan; each entry must be a finite number"),
    ({"mean": (0.1, 0.2), "std": (0.1, 0.2, 0.3)}, r"mean has 2 entries and std 3"),
    ({"mean": "0.5", "std": 1.0}, r"mean='0.5' is not allowed; pass a finite number or one per channel"),
    ({"mean": [], "std": 1.0}, r"mean=\[\] is not allowed"),
])
def test_normalize_refuses_bad_statistics(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Normalize(**kwargs)


@pytest.mark.parametrize("wrap", [lambda net: nn.Sequential(Normalize(MEAN, STD), net), _Wrapped],
                         ids=["sequential", "attributes"])
def test_a_chain_behind_normalize_is_certified_with_the_product_bound(wrap) -> None:
    net = _chain_cnn()
    model = wrap(net)
    bound, inner = lipschitz_upper_bound(model, (3, 8, 8)), lipschitz_upper_bound(net, (3, 8, 8))
    assert bound == pytest.approx(inner / min(STD), rel=1e-9)
    x, y = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(1)), torch.randint(0, 4, (64,))
    radii = certified_radii(model, x, y)
    assert radii.shape == (64,) and torch.isfinite(radii).all()
    with torch.no_grad():  # it is a bound: no pair of inputs moves the logits by more than bound × their distance
        z = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
        ratio = (model(z) - model(x)).flatten(1).norm(dim=1) / (z - x).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= bound


def test_normalisation_written_in_forward_is_refused_with_the_layer_to_use() -> None:
    with pytest.raises(InputError, match=r"nn.Sequential\(rkhsreg.Normalize\(mean, std\), net\)"):
        lipschitz_upper_bound(_InlineNormalisation(_chain_cnn()), (3, 8, 8))
