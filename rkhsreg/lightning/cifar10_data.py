"""``CIFAR10Data``: CIFAR-10 as a ``LightningDataModule`` with the standard augmentation.

Training images get the standard augmentation (random 32×32 crop of the image padded by 4 pixels,
random horizontal flip) when ``augment=True``; test images are only converted to [0, 1] tensors.
There is no normalisation here: the models normalise inside ``forward`` (as the paper's networks
do), so every ε is in [0, 1] pixel units. Files are found by :mod:`rkhsreg.data.cifar10_files` (the
offline JPEG copy, extracted once into a cache, or torchvision's layout).

Subsets: ``train_examples=n`` keeps the first ``n`` of ``np.random.RandomState(42 + seed).permutation(50000)``
(the paper's convention); ``test_examples=m`` keeps the first ``m`` of a fixed permutation of the
test set (seed 0, the same for every run, so every class is represented).
"""

from __future__ import annotations

import os
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from rkhsreg._errors import ConfigurationError
from rkhsreg._params import Boolean, InstanceOf, Interval, Options, validates
from rkhsreg.data.cifar10_files import SOURCES, cifar10_datasets
from rkhsreg.data.splits import SPLIT_SEED, subset_indices
from rkhsreg.lightning._compat import pl

__all__ = ["CIFAR10Data", "cifar10_transforms", "test_subset_indices"]


def cifar10_transforms(augment: bool) -> tuple[Any, Any]:
    """``(train, test)`` torchvision transforms: crop 32 with padding 4 + horizontal flip when ``augment``."""
    from torchvision import transforms
    to_tensor = transforms.ToTensor()
    if not augment:
        return to_tensor, to_tensor
    return transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                               to_tensor]), to_tensor


def test_subset_indices(m: int, total: int) -> torch.Tensor:
    """The first ``m`` of the fixed test permutation ``np.random.RandomState(0).permutation(total)``."""
    if not 1 <= m <= total:
        raise ConfigurationError(f"test_examples={m!r} is out of range; it must be in [1, {total}].")
    return torch.from_numpy(np.random.RandomState(0).permutation(total)[:m].astype(np.int64))


class CIFAR10Data(pl.LightningDataModule):
    """CIFAR-10 training and test loaders (the test set also serves as validation set when asked).

    Args:
        data_dir: data root (default ``$RKHSREG_DATA``, else ``./data``).
        cache_dir: where the JPEG archive is extracted (default ``$RKHSREG_CACHE``, else ``~/.cache/rkhsreg``).
        source: ``"auto"``, ``"imagefolder"`` or ``"torchvision"``
            (see :func:`~rkhsreg.data.cifar10_files.find_cifar10`).
        download: let torchvision download CIFAR-10 (online only).
        train_examples: keep this many training images (the paper's seeded permutation), None: all 50,000.
        test_examples: keep this many test images (a fixed permutation), None: all 10,000.
        seed: seed of the training subset (``42 + seed``), of the shuffling and of the augmentation.
        batch_size: training batch size (paper: 128).
        eval_batch_size: test batch size.
        augment: random crop (padding 4) + horizontal flip of the training images.
        num_workers: ``DataLoader`` worker processes (JPEG decoding).
        validate_on_test: also return the test loader from ``val_dataloader`` (per-epoch monitoring;
            the paper reports test accuracy over training).

    Example:
        >>> dm = CIFAR10Data(data_dir="../shared/data", train_examples=2000, test_examples=200)  # doctest: +SKIP
        >>> dm.setup("fit"); x, y = next(iter(dm.train_dataloader()))                          # doctest: +SKIP
        >>> x.shape, float(x.min()) >= 0, float(x.max()) <= 1                                   # doctest: +SKIP
        (torch.Size([128, 3, 32, 32]), True, True)
    """

    #: Each option's allowed forms (rkhsreg._params), checked before ``__init__`` runs.
    parameters = {
        "data_dir": [None, InstanceOf(str, os.PathLike)],
        "cache_dir": [None, InstanceOf(str, os.PathLike)],
        "source": Options(SOURCES),
        "download": Boolean(),
        "train_examples": [None, Interval(Integral, 1, 50_000, closed="both", doc="of CIFAR-10's 50,000")],
        "test_examples": [None, Interval(Integral, 1, 10_000, closed="both", doc="of CIFAR-10's 10,000")],
        "seed": SPLIT_SEED,
        "batch_size": Interval(Integral, 1, None),
        "eval_batch_size": Interval(Integral, 1, None),
        "augment": Boolean(),
        "num_workers": Interval(Integral, 0, None),
        "validate_on_test": Boolean(),
    }

    @validates(parameters, owner="CIFAR10Data")
    def __init__(self, data_dir: str | None = None, cache_dir: str | None = None, source: str = "auto",
                 download: bool = False, train_examples: int | None = None, test_examples: int | None = None,
                 seed: int = 0, batch_size: int = 128, eval_batch_size: int = 500, augment: bool = True,
                 num_workers: int = 0, validate_on_test: bool = False) -> None:
        super().__init__()
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.source = source    # the options are checked against `parameters` before the body runs
        self.download = download
        self.train_examples = train_examples
        self.test_examples = test_examples
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.augment = augment
        self.num_workers = num_workers
        self.validate_on_test = validate_on_test
        self.save_hyperparameters()
        self.train_set: Any = None
        self.test_set: Any = None
        self._shuffle = torch.Generator().manual_seed(self.seed)

    def setup(self, stage: str | None = None) -> None:
        """Build the (subset) training and test sets; idempotent."""
        if self.train_set is not None:
            return
        train_t, test_t = cifar10_transforms(self.augment)
        train, test = cifar10_datasets(self.data_dir, cache_dir=self.cache_dir, source=self.source,
                                       download=self.download, train_transform=train_t, test_transform=test_t)
        if self.train_examples is not None:
            if self.train_examples > len(train):
                raise ConfigurationError(f"train_examples={self.train_examples} is out of range; the training set "
                                         f"has {len(train)} images.")
            indices, _ = subset_indices(self.train_examples, self.seed, total=len(train), val_size=0)
            train = Subset(train, indices.tolist())
        if self.test_examples is not None:
            test = Subset(test, test_subset_indices(self.test_examples, len(test)).tolist())
        self.train_set, self.test_set = train, test

    def _require(self, dataset: Any) -> Any:
        if dataset is None:
            raise ConfigurationError("call setup() before asking for a DataLoader.")
        return dataset

    def train_dataloader(self) -> DataLoader:
        """Shuffled (seeded) training batches, augmented when ``augment=True``.

        The augmentation draws from torch's global RNG in the main process (seed it, e.g. with
        ``seed_everything``) and from per-worker seeds derived from the shuffling generator in workers.
        """
        return DataLoader(self._require(self.train_set), batch_size=self.batch_size, shuffle=True,
                          generator=self._shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, drop_last=False)

    def val_dataloader(self) -> Any:
        """The test loader when ``validate_on_test``; otherwise no validation (an empty list)."""
        return self.test_dataloader() if self.validate_on_test else []

    def test_dataloader(self) -> DataLoader:
        """The (subset of the) test set, in a fixed order."""
        return DataLoader(self._require(self.test_set), batch_size=self.eval_batch_size,
                          num_workers=self.num_workers)

    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator, for an exact resume."""
        return {"shuffle": self._shuffle.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if "shuffle" in state_dict:
            self._shuffle.set_state(state_dict["shuffle"])
