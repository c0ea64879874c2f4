"""Reference networks of the seed paper, so recipes, benchmarks and tests share one definition."""

from __future__ import annotations

from torch import nn

from rkhsreg.normalize import Normalize

__all__ = ["mnist_vgg5"]


def mnist_vgg5(num_classes: int = 10, in_chans: int = 1, width: int = 64,
               mean: float = 0.1307, std: float = 0.3081) -> nn.Sequential:
    """The paper's MNIST network ``mnist_vgg5_stable``.

    conv3x3 64→128→256→512 with ReLU and 2x2 average pooling after each conv (28→14→7→3→1),
    then a linear layer 512→``num_classes``; no biases anywhere. Inputs are [0, 1] pixels; the
    normalisation is the first layer, so every ε is in pixel units.

    Args:
        num_classes: number of outputs.
        in_chans: input channels.
        width: channels of the first conv (doubled at each of the next three).
        mean: input mean subtracted by the first layer.
        std: input standard deviation divided by the first layer.

    Example:
        >>> net = mnist_vgg5()
        >>> net(torch.rand(2, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([2, 10])
    """
    layers: list[nn.Module] = [Normalize(mean, std)]
    channels = in_chans
    for i in range(4):
        out = width * 2 ** i
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2)]
        channels = out
    layers += [nn.Flatten(), nn.Linear(channels, num_classes, bias=False)]
    return nn.Sequential(*layers)
