"""CIFAR-10 networks of the seed paper's robustness experiment, normalisation inside so ε is in pixel units.

* :func:`cifar_vgg11` — VGG-11 without BatchNorm as in the paper's reference code: 3×3 convs
  64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M (M = 2×2 max-pooling) with biases and ReLU, then
  a classifier 512→512→512→``num_classes`` with ReLU; convs initialised from N(0, 2/(3·3·out)), biases 0.
* :func:`cifar_resnet18` — timm's ``resnet18`` (never pretrained) with the usual CIFAR stem: a 3×3
  stride-1 first conv and no max-pooling, so 32×32 inputs keep 32×32 features in the first stage.
  It keeps timm's BatchNorm (the paper's reference ResNet has none; its penalties are computed with
  BatchNorm in eval mode, see each penalty's ``eval_mode``).

Both take images in [0, 1] and subtract/divide the per-channel CIFAR-10 mean/std first.

Example:
    >>> net = cifar_vgg11()
    >>> net(torch.rand(2, 3, 32, 32)).shape  # doctest: +SKIP
    torch.Size([2, 10])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from rkhsreg._checks import check_choice, check_int
from rkhsreg.data.cifar10_files import CIFAR10_MEAN, CIFAR10_STD
from rkhsreg.normalize import Normalize

__all__ = ["ChannelNormalize", "cifar_vgg11", "cifar_resnet18"]

_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class ChannelNormalize(Normalize):
    """:class:`rkhsreg.Normalize` with the CIFAR-10 per-channel statistics as defaults."""

    def __init__(self, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD) -> None:
        super().__init__(mean, std)


def cifar_vgg11(num_classes: int = 10, width: int = 64, pool: str = "max", bias: bool = True,
                mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD) -> nn.Sequential:
    """VGG-11 without BatchNorm for 32×32 RGB images in [0, 1].

    Args:
        num_classes: outputs.
        width: channels of the first conv (64 in the paper); every layer scales with it, the
            classifier's hidden layers too (512·width/64). Smaller widths are for CPU smoke runs.
        pool: ``"max"`` (the reference code) or ``"avg"``.
        bias: biases in the convs and linear layers (the reference code has them).
        mean: per-channel mean subtracted first.
        std: per-channel standard deviation divided first.

    Example:
        >>> cifar_vgg11(width=16)(torch.rand(1, 3, 32, 32)).shape  # doctest: +SKIP
        torch.Size([1, 10])
    """
    check_int("num_classes", num_classes, low=2)
    check_int("width", width, low=1)
    check_choice("pool", pool, ("max", "avg"))
    scale = width / 64
    layers: list[nn.Module] = [ChannelNormalize(mean, std)]
    channels = len(mean)
    for item in _VGG11:
        if item == "M":
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
            continue
        out = max(1, round(int(item) * scale))
        conv = nn.Conv2d(channels, out, 3, padding=1, bias=bias)
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (3 * 3 * out)))
        if bias:
            nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU()]
        channels = out
    hidden = max(1, round(512 * scale))
    layers += [nn.Flatten(), nn.Linear(channels, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, hidden, bias=bias),
               nn.ReLU(), nn.Linear(hidden, num_classes, bias=bias)]
    return nn.Sequential(*layers)


def cifar_resnet18(num_classes: int = 10, mean: Sequence[float] = CIFAR10_MEAN,
                   std: Sequence[float] = CIFAR10_STD) -> nn.Sequential:
    """timm ``resnet18`` (random initialisation) with a CIFAR stem, behind a normalisation layer.

    Example:
        >>> cifar_resnet18()(torch.rand(2, 3, 32, 32)).shape  # doctest: +SKIP
        torch.Size([2, 10])
    """
    try:
        import timm
    except ImportError as exc:
        raise ImportError("cifar_resnet18 needs timm: pip install 'rkhsreg[models]'.") from exc
    net = timm.create_model("resnet18", pretrained=False, num_classes=check_int("num_classes", num_classes, low=2))
    net.conv1 = nn.Conv2d(len(mean), net.conv1.out_channels, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return nn.Sequential(ChannelNormalize(mean, std), net)
