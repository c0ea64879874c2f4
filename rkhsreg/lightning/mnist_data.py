"""``MNISTSubset``: the paper's small-data MNIST splits as a ``LightningDataModule``.

Training = the first ``n`` of ``np.random.RandomState(42 + seed).permutation(60000)``, validation =
the last 10,000 of that permutation, test = the official 10,000 test images. With ``augment=True``
(the paper's "(∗)" rows) every training example is replaced, each time it is drawn, by a random
smooth deformation of it (:class:`rkhsreg.transforms.RandomDeformation`, applied to whole training
batches with its own seeded generator); validation and test images are never deformed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from rkhsreg._errors import ConfigurationError
from rkhsreg._params import SEED, Boolean, InstanceOf, Interval, OnlyWhen, Tuple, validates
from rkhsreg.data.root import load_mnist, resolve_data_root
from rkhsreg.data.splits import MNIST_TRAIN_SIZE, SPLIT_SEED, VALIDATION_SIZE, check_subset_size, subset_indices
from rkhsreg.lightning._compat import pl
from rkhsreg.transforms import RandomDeformation

__all__ = ["MNISTSubset", "BatchTransformCollate"]


class BatchTransformCollate:
    """Collate ``(image, label)`` pairs into a batch, then apply ``transform`` to the image batch.

    Deforming a whole (N, C, H, W) batch in one call is much cheaper than one call per image.

    Args:
        transform: maps an image batch (N, C, H, W) to a batch of the same shape.
        clamp: ``(low, high)`` range the transformed images are clipped to (bicubic resampling
            overshoots the [0, 1] pixel range by up to ~0.3), or None to keep them as they are.
    """

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor],
                 clamp: tuple[float, float] | None = (0.0, 1.0)) -> None:
        self.transform = transform
        self.clamp = clamp

    def __call__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([item[0] for item in items])
        labels = torch.stack([item[1] for item in items])
        images = self.transform(images)
        if self.clamp is not None:
            images = images.clamp(*self.clamp)
        return images, labels


class MNISTSubset(pl.LightningDataModule):
    """MNIST with ``n`` training examples drawn as in the paper (Bietti et al., 2019, Table 2).

    Args:
        n: training examples, in [1, 50000].
        seed: run seed: the permutation is ``RandomState(42 + seed)``; also seeds the shuffling and,
            unless ``augment_seed`` is given, the deformation generator (``1000 + seed``).
        data_dir: data root containing ``MNIST/raw`` (default: ``$RKHSREG_DATA``, else ``./data``).
        download: ``None`` downloads only if the files are missing; ``False`` never.
        batch_size: training batch size (paper: 128).
        eval_batch_size: batch size of the validation and test loaders.
        augment: the "(∗)" setting: deform every training batch with :class:`RandomDeformation`.
        augment_kwargs: keyword arguments of :class:`RandomDeformation` (budgets, grid size...).
        augment_seed: seed of the deformation generator (default ``1000 + seed``).
        val_size: validation examples at the end of the permutation (paper: 10,000), at least 1: an empty
            validation set would make Lightning skip validation silently and leave every ``val_*`` metric that a
            checkpoint or early-stopping callback waits for unset (to skip validation on purpose, pass
            ``limit_val_batches=0`` to the Trainer).
        num_workers: ``DataLoader`` workers (0: in the main process; tensors are in memory).
        augment_clamp: range deformed images are clipped to (default [0, 1], the pixel range), or None.

    Example:
        >>> dm = MNISTSubset(n=300, seed=0, data_dir="../shared/data", augment=True)  # doctest: +SKIP
        >>> dm.setup("fit"); x, y = next(iter(dm.train_dataloader()))             # doctest: +SKIP
        >>> x.shape                                                                 # doctest: +SKIP
        torch.Size([128, 1, 28, 28])
    """

    #: Each option's allowed forms (rkhsreg._params), checked before ``__init__`` runs.
    parameters = {
        # the upper end, 60000 - val_size, depends on val_size: check_subset_size names it ([1, 50000] by default)
        "n": Interval(Integral, 1, None, doc="training examples, at most 60000 - val_size"),
        "seed": SPLIT_SEED,
        "data_dir": [None, InstanceOf(str, os.PathLike)],
        "download": [None, Boolean()],
        "batch_size": Interval(Integral, 1, None),
        "eval_batch_size": Interval(Integral, 1, None),
        "augment": Boolean(),
        "augment_kwargs": OnlyWhen("augment", True, [None, InstanceOf(dict)],
                                   text="augment=True (the (∗) deformation augmentation)"),
        "augment_seed": OnlyWhen("augment", True, [None, SEED], text="augment=True (the (∗) deformation augmentation)"),
        "val_size": Interval(Integral, 1, MNIST_TRAIN_SIZE - 1, closed="both",
                             doc="validation examples; 0 would leave validation empty"),
        "num_workers": Interval(Integral, 0, None),
        "augment_clamp": OnlyWhen("augment", True, [None, Tuple(
            Interval(Real, None, None), length=2, where=lambda b: b[0] < b[1], where_doc="low < high",
            text="a (low, high) pair with low < high")], text="augment=True (the (∗) deformation augmentation)"),
    }

    @validates(parameters, owner="MNISTSubset")
    def __init__(self, n: int = 300, seed: int = 0, data_dir: str | None = None, download: bool | None = None,
                 batch_size: int = 128, eval_batch_size: int = 1000, augment: bool = False,
                 augment_kwargs: dict[str, Any] | None = None, augment_seed: int | None = None,
                 val_size: int = VALIDATION_SIZE, num_workers: int = 0,
                 augment_clamp: tuple[float, float] | None = (0.0, 1.0)) -> None:
        super().__init__()
        self.n = check_subset_size(n, val_size=val_size)
        self.seed = seed        # the options are checked against `parameters` before the body runs
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.download = download
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.num_workers = num_workers
        self.augment = augment
        self.augment_kwargs = dict(augment_kwargs or {})
        self.augment_seed = (1000 + self.seed) if augment_seed is None else augment_seed
        self.augment_clamp = augment_clamp
        self.deformation: RandomDeformation | None = None
        if self.augment:
            if "seed" in self.augment_kwargs or "generator" in self.augment_kwargs:
                raise ConfigurationError("augment_kwargs may not hold 'seed' or 'generator'; use augment_seed=.")
            self.deformation = RandomDeformation(seed=self.augment_seed, **self.augment_kwargs)
        self.save_hyperparameters()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None
        self._shuffle = torch.Generator().manual_seed(self.seed)

    @property
    def root(self) -> str:
        """The resolved data root."""
        return str(resolve_data_root(self.data_dir))

    def prepare_data(self) -> None:
        """Make sure the files are there (downloads them if allowed and missing)."""
        load_mnist(self.root, train=True, download=self.download)
        load_mnist(self.root, train=False, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        """Build the training/validation subsets (``fit``/``validate``) and the test set (``test``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = load_mnist(self.root, train=True, download=self.download)
            train, val = subset_indices(self.n, self.seed, total=images.shape[0], val_size=self.val_size)
            self.train_indices, self.val_indices = train, val
            self.train_set = TensorDataset(images[train], labels[train])
            self.val_set = TensorDataset(images[val], labels[val])
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = TensorDataset(*load_mnist(self.root, train=False, download=self.download))

    def _require(self, dataset: TensorDataset | None, stage: str) -> TensorDataset:
        if dataset is None:
            raise ConfigurationError(f"call setup({stage!r}) before asking for its DataLoader.")
        return dataset

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (seeded); deformed when ``augment=True``."""
        collate = BatchTransformCollate(self.deformation, self.augment_clamp) if self.deformation is not None else None
        return DataLoader(self._require(self.train_set, "fit"), batch_size=self.batch_size, shuffle=True,
                          generator=self._shuffle, collate_fn=collate, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        """The validation split (last ``val_size`` of the permutation), never deformed."""
        return DataLoader(self._require(self.val_set, "fit"), batch_size=self.eval_batch_size,
                          num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        """The official test set, never deformed."""
        return DataLoader(self._require(self.test_set, "test"), batch_size=self.eval_batch_size,
                          num_workers=self.num_workers)

    def state_dict(self) -> dict[str, Any]:
        """Generators of the shuffling and of the deformations, for an exact resume."""
        state: dict[str, Any] = {"shuffle": self._shuffle.get_state()}
        if self.deformation is not None:
            state["deformation"] = self.deformation.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if "shuffle" in state_dict:
            self._shuffle.set_state(state_dict["shuffle"])
        if self.deformation is not None and "deformation" in state_dict:
            self.deformation.set_state(state_dict["deformation"])
