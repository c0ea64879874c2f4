"""The seed paper's protein CNN, with padding positions masked out of the input.

Input layout: ``(N, 21, L)`` floats, channels 0–19 the one-hot residues (alphabet
:data:`rkhsreg.data.protein.AMINO_ACIDS`), channel 20 the mask (1 at real residues, 0 at padding),
as :func:`rkhsreg.data.protein.encode_sequences` returns with ``mask_channel=True``.

Why the mask travels as a channel: the penalties perturb the whole input tensor and know nothing
of padding. :class:`MaskResidues` multiplies the 20 residue channels by the **binarised** mask
channel ``(x[:, 20] > 0.5)``, so f does not depend on the padding positions, and on the mask
channel only through a threshold: the input gradient is exactly zero at both, normalised-gradient
PGD (which starts from zero) never moves them, and a random start (joint ‖f‖²_δ, ℓ∞ PGD) changes
f only if it moves one mask entry by more than 0.5. Every ε-ball search, gradient penalty and
adversarial example is thus confined to the real residues of each sequence. Plain ``(N, 20, L)``
inputs are accepted too (no masking).
"""

from __future__ import annotations

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["MaskResidues", "protein_cnn"]

ALPHABET_SIZE = 20


class MaskResidues(nn.Module):
    """``x[:, :20] * (x[:, 20:21] > 0.5)`` for (N, 21, L) inputs; (N, 20, L) inputs pass unchanged.

    Example:
        >>> x = torch.zeros(1, 21, 3); x[0, 0] = 1.0; x[0, 20, :2] = 1.0
        >>> MaskResidues()(x)[0, 0].tolist()
        [1.0, 1.0, 0.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] not in (ALPHABET_SIZE, ALPHABET_SIZE + 1):
            raise InputError(f"inputs has shape {tuple(x.shape)}; the protein CNN needs (N, 20, L) one-hot "
                             "sequences or (N, 21, L) with the mask as the last channel "
                             "(rkhsreg.data.encode_sequences).")
        if x.shape[1] == ALPHABET_SIZE:
            return x
        return x[:, :ALPHABET_SIZE] * (x[:, ALPHABET_SIZE:].detach() > 0.5).to(x.dtype)


class _GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=-1)


def protein_cnn(num_classes: int = 2, width: int = 32, kernel_size: int = 5, bias: bool = True) -> nn.Sequential:
    """The paper's protein network: 3 conv1d (filter ``kernel_size``), max-pool after the 2nd, global max-pool, linear.

    ``MaskResidues`` → conv(20→w) → ReLU → conv(w→w) → ReLU → MaxPool1d(2) → conv(w→w) → ReLU →
    global max over positions → Linear(w→``num_classes``). Convs use "same" padding (k // 2), so any
    length L >= 2 works. The paper does not give the width; 32 is our CPU choice.

    Args:
        num_classes: outputs (2 for the binary tasks: score = logit₁ − logit₀).
        width: filters of each conv.
        kernel_size: filter size (odd; 5 in the paper).
        bias: whether convs and the linear layer have biases.

    Example:
        >>> net = protein_cnn()
        >>> net(torch.zeros(4, 21, 400)).shape
        torch.Size([4, 2])
    """
    for name, value in (("num_classes", num_classes), ("width", width), ("kernel_size", kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name}={value!r} is not allowed; pass an int >= 1.")
    if kernel_size % 2 == 0:
        raise ConfigurationError(f"kernel_size={kernel_size!r} is not allowed; pass an odd int (same padding).")
    pad = kernel_size // 2
    return nn.Sequential(
        MaskResidues(),
        nn.Conv1d(ALPHABET_SIZE, width, kernel_size, padding=pad, bias=bias), nn.ReLU(),
        nn.Conv1d(width, width, kernel_size, padding=pad, bias=bias), nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(width, width, kernel_size, padding=pad, bias=bias), nn.ReLU(),
        _GlobalMaxPool(),
        nn.Linear(width, num_classes, bias=bias),
    )
