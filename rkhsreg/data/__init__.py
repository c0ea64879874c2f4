"""Data sets of the paper's experiments.

The pure parts (split indices, data-root resolution, tensor loading) import no Lightning;
:class:`MNISTSubset` (a ``LightningDataModule``) is imported on first use only.

Example:
    >>> from rkhsreg.data import subset_indices
    >>> train, val = subset_indices(300, seed=0)
    >>> from rkhsreg.data import MNISTSubset          # imports Lightning here  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from rkhsreg.data.root import ENV_VAR, DatasetNotFoundError, load_mnist, mnist_files_present, resolve_data_root
from rkhsreg.data.splits import MNIST_TRAIN_SIZE, VALIDATION_SIZE, check_subset_size, subset_indices

__all__ = ["MNISTSubset", "DatasetNotFoundError", "ENV_VAR", "MNIST_TRAIN_SIZE", "VALIDATION_SIZE",
           "check_subset_size", "load_mnist", "mnist_files_present", "resolve_data_root", "subset_indices"]


def __getattr__(name: str) -> Any:
    if name == "MNISTSubset":
        from rkhsreg.data.mnist import MNISTSubset
        return MNISTSubset
    raise AttributeError(f"module 'rkhsreg.data' has no attribute {name!r}")
