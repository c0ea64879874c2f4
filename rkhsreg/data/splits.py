"""The paper's small-data splits: first n of a seeded permutation, validation = its last 10k.

Pure NumPy/PyTorch (no Lightning, no torchvision), so plain-PyTorch code and tests use it directly.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch

from rkhsreg._errors import ConfigurationError
from rkhsreg._params import Interval, validates

__all__ = ["MNIST_TRAIN_SIZE", "VALIDATION_SIZE", "SPLIT_SEED", "subset_indices", "check_subset_size"]

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


#: The seed of the paper's permutation, ``RandomState(42 + seed)``: numpy takes seeds below 2**32.
SPLIT_SEED = Interval(Integral, 0, 2 ** 32 - 43, closed="both", doc="the permutation is RandomState(42 + seed)")


@validates({"n": Interval(Integral, 1, None, doc="training examples, in [1, total - val_size]: [1, 50000] for MNIST"),
            "seed": SPLIT_SEED, "total": Interval(Integral, 2, None),
            "val_size": Interval(Integral, 0, None, doc="at most total - 1")})
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
    if val_size >= total:    # each argument is checked by its declaration first
        raise ConfigurationError(f"val_size={val_size!r} is out of range; pass an int in [0, {total - 1}].")
    n = check_subset_size(n, total, val_size)
    perm = torch.from_numpy(np.random.RandomState(42 + int(seed)).permutation(total).astype(np.int64))
    return perm[:n].clone(), perm[total - val_size:].clone()
