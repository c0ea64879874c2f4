"""Evaluation data sets by name: ``mnist``, ``cifar10`` (the JPEG copy, ImageFolder) and ``imagefolder:<path>``.

Images are returned as float tensors in [0, 1] (``ToTensor``) with no normalisation: it belongs
inside the model, so every ε is in pixel units.

The CIFAR-10 JPEG copy is found, and its archive extracted once into the one cache the recipes use
too, by :mod:`rkhsreg.data.cifar10_files`: never into the data folder or the working tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["load_dataset", "cifar10_folder", "subset", "DATASETS"]

#: Data set names (``imagefolder`` takes a path: ``imagefolder:<path>``).
DATASETS = ("mnist", "cifar10", "imagefolder:<path>")


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError:
        raise ConfigurationError("data sets need torchvision: pip install 'rkhsreg[models]'.") from None
    return torchvision


def _root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get("RKHSREG_DATA")
    if not data_dir:
        raise ConfigurationError("data_dir is not set; pass --data-dir or set RKHSREG_DATA to the data root.")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise InputError(f"data_dir={str(root)!r} is not a folder.")
    return root


def cifar10_folder(data_dir: str | os.PathLike | None, split: str = "test") -> Path:
    """The ImageFolder root of a CIFAR-10 JPEG split, the archive extracted once into the shared cache if needed.

    The same lookup and cache as the recipes' loader (:func:`rkhsreg.data.cifar10_files.find_cifar10`):
    an archive is unpacked once into ``$RKHSREG_CACHE`` (else ``$XDG_CACHE_HOME/rkhsreg``, else
    ``~/.cache/rkhsreg``), never into the data folder.

    Example:
        >>> cifar10_folder("/data", "test")  # doctest: +SKIP
        PosixPath('/root/.cache/rkhsreg/CIFAR-10-images_jpeg-19765597/test')
    """
    from rkhsreg.data.cifar10_files import find_cifar10
    from rkhsreg.data.root import DatasetNotFoundError

    root = _root(data_dir)
    try:
        where = find_cifar10(root, source="imagefolder")
    except DatasetNotFoundError as exc:
        raise InputError(str(exc)) from None
    return where.path / split


def _image_folder(path: Path) -> Any:
    from rkhsreg.data.images import read_rgb

    tv = _torchvision()
    try:
        return tv.datasets.ImageFolder(str(path), transform=tv.transforms.ToTensor(), loader=read_rgb)
    except (FileNotFoundError, RuntimeError) as exc:
        raise InputError(f"{str(path)!r} is not an image folder ({str(exc).splitlines()[0]}); expected "
                         "<path>/<class>/<image> files.") from None


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, split: str = "test") -> Any:
    """A dataset of ``(image in [0, 1], label)`` pairs.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"imagefolder:<path>"``.
        data_dir: the data root (default ``$RKHSREG_DATA``); unused by ``imagefolder``.
        split: ``"test"`` or ``"train"``.

    Example:
        >>> ds = load_dataset("mnist", "/work/shared/data")  # doctest: +SKIP
        >>> ds[0][0].shape
        torch.Size([1, 28, 28])
    """
    if split not in ("test", "train"):
        raise ConfigurationError(f"split={split!r} is not allowed; choose 'test' or 'train'.")
    if not isinstance(name, str):
        raise ConfigurationError(f"data={name!r} is not allowed; choose one of {', '.join(DATASETS)}.")
    if name.startswith("imagefolder:"):
        path = Path(name[len("imagefolder:"):]).expanduser()
        if not path.is_dir():
            raise InputError(f"data={name!r}: {str(path)!r} is not a folder.")
        return _image_folder(path)
    if name == "cifar10":  # the very dataset rkhsreg.data.load_cifar10 reads
        from rkhsreg.data.cifar10_examples import cifar10_split
        from rkhsreg.data.root import DatasetNotFoundError

        try:
            return cifar10_split(_root(data_dir), split=split)
        except DatasetNotFoundError as exc:
            raise InputError(str(exc)) from None
    if name == "mnist":
        from rkhsreg.data import load_mnist

        root = None if data_dir is None or str(data_dir) == "" else Path(data_dir).expanduser()
        if root is not None and root.name == "MNIST" and (root / "raw").is_dir():
            root = root.parent  # the MNIST folder itself was given
        images, labels = load_mnist(root, train=split == "train", download=False)
        return torch.utils.data.TensorDataset(images, labels)
    raise ConfigurationError(f"data={name!r} is not allowed; choose one of {', '.join(DATASETS)}.")


def subset(dataset: Any, n_examples: int | None, seed: int = 0) -> Any:
    """``n_examples`` examples drawn without replacement by a seeded permutation (all, in order, if None).

    A permutation rather than the first n: ImageFolder sorts by class, so its first examples are one class.
    The rule is :func:`rkhsreg.data.select_indices`, which the Python loaders share.
    """
    from rkhsreg.data.examples import select_indices

    if n_examples is None or n_examples >= len(dataset):
        return dataset
    return torch.utils.data.Subset(dataset, select_indices(len(dataset), n_examples=n_examples, seed=seed))
