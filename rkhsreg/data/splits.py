"""The paper's small-data splits: first n of a seeded permutation, validation = its last 10k.

Pure NumPy/PyTorch (no Lightning, no torchvision), so plain-PyTorch code and tests use it directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rkhsreg._errors import ConfigurationError

__all__ = ["MNIST_TRAIN_SIZE", "VALIDATION_SIZE", "subset_indices", "check_subset_size"]

#: Images in the official MNIST training set.
MNIST_TRAIN_SIZE = 60_000
#: Validation examples: the last ones of the permutation (paper: 10,000).
VALIDATION_SIZE = 10_000


def check_subset_size(n: Any, total: int = MNIST_TRAIN_SIZE, val_size: int = VALIDATION_SIZE) -> int:
    """Return ``n`` after checking it is an int in ``[1, total − val_size]``.

    Raises:
        ConfigurationError: ``n`` is not an integer or is out of range (the message gives the range).
    """
    high = total - val_size
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ConfigurationError(f"n={n!r} is not an integer; pass the number of training examples, an int in "
                                 f"[1, {high}] (the last {val_size} of the permutation are the validation set).")
    if not 1 <= int(n) <= high:
        raise ConfigurationError(f"n={n!r} is out of range; it must be in [1, {high}]: the {total} training images "
                                 f"minus the {val_size} validation images at the end of the permutation.")
    return int(n)


def subset_indices(n: int, seed: int = 0, *, total: int = MNIST_TRAIN_SIZE,
                   val_size: int = VALIDATION_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices of the paper's protocol.

    The permutation is ``np.random.RandomState(42 + seed).permutation(total)``; training is its first
    ``n`` entries, validation its last ``val_size``. The two never overlap, and the training subset
    for a larger ``n`` extends the one for a smaller ``n`` (same seed).

    Args:
        n: training examples, in ``[1, total − val_size]``.
        seed: the run's seed (the permutation uses ``42 + seed``, as the reference code does).
        total: size of the full training set.
        val_size: validation examples taken from the end of the permutation.

    Returns:
        ``(train, val)``: int64 tensors of indices into the training set.

    Raises:
        ConfigurationError: ``n``, ``seed``, ``total`` or ``val_size`` is out of range.

    Example:
        >>> train, val = subset_indices(300, seed=0)
        >>> train.shape, val.shape
        (torch.Size([300]), torch.Size([10000]))
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigurationError(f"seed={seed!r} is not allowed; pass an int >= 0.")
    if isinstance(total, bool) or not isinstance(total, int) or total < 2:
        raise ConfigurationError(f"total={total!r} is not allowed; pass an int >= 2.")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < total:
        raise ConfigurationError(f"val_size={val_size!r} is out of range; pass an int in [0, {total - 1}].")
    n = check_subset_size(n, total, val_size)
    perm = torch.from_numpy(np.random.RandomState(42 + int(seed)).permutation(total).astype(np.int64))
    return perm[:n].clone(), perm[total - val_size:].clone()
