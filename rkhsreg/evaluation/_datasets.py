"""Evaluation data sets by name: ``mnist``, ``cifar10`` (the JPEG copy, ImageFolder) and ``imagefolder:<path>``.

Images are returned as float tensors in [0, 1] (``ToTensor``) with no normalisation: it belongs
inside the model, so every ε is in pixel units.

The CIFAR-10 JPEG copy is a ``.tar.gz`` with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.
``cifar10`` accepts an already extracted folder (one holding ``test/``), or the folder holding the
archive; then the requested split is extracted once, atomically, into a cache: ``$RKHSREG_CACHE``
if set, else next to the archive when that folder is writable, else the user cache folder
(``$XDG_CACHE_HOME/rkhsreg`` or ``~/.cache/rkhsreg``). Never into the working tree.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import torch

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["load_dataset", "cifar10_folder", "subset", "DATASETS"]

#: Data set names (``imagefolder`` takes a path: ``imagefolder:<path>``).
DATASETS = ("mnist", "cifar10", "imagefolder:<path>")
_ARCHIVE = "CIFAR-10-images_jpeg.tar.gz"


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


def _cache_base(archive: Path) -> Path:
    forced = os.environ.get("RKHSREG_CACHE")
    if forced:
        return Path(forced).expanduser() / "cifar10_jpeg"
    if os.access(archive.parent, os.W_OK):
        return archive.parent / "cifar10_jpeg_extracted"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rkhsreg" / "cifar10_jpeg"


def _extract(archive: Path, split: str) -> Path:
    """Extract ``split/`` of the archive once; return the split folder."""
    base = _cache_base(archive)
    final = base / split
    if final.is_dir() and (final / ".complete").exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=base))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.name.lstrip("./").startswith(f"{split}/")]
            if not members:
                raise InputError(f"{str(archive)!r} has no '{split}/' folder; it is not the CIFAR-10 JPEG archive.")
            tar.extractall(tmp, members=members, filter="data")
        (tmp / split / ".complete").touch()
        try:
            os.replace(tmp / split, final)
        except OSError:  # another process finished first
            if not (final / ".complete").exists():
                raise
    except tarfile.TarError as exc:
        raise InputError(f"{str(archive)!r} is not a readable tar archive ({exc}).") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def cifar10_folder(data_dir: str | os.PathLike | None, split: str = "test") -> Path:
    """The ImageFolder root of a CIFAR-10 JPEG split, extracting the archive once if needed.

    Example:
        >>> cifar10_folder("/data", "test")  # doctest: +SKIP
        PosixPath('/data/cifar10_jpeg/cifar10_jpeg_extracted/test')
    """
    root = _root(data_dir)
    for folder in (root, root / "cifar10_jpeg", root / "CIFAR-10-images", root / "cifar10_jpeg" / "CIFAR-10-images",
                   root / "cifar10_jpeg" / "cifar10_jpeg_extracted"):
        if (folder / split).is_dir() and any((folder / split).iterdir()):
            return folder / split
    for folder in (root, root / "cifar10_jpeg"):
        archive = folder / _ARCHIVE
        if archive.is_file():
            return _extract(archive, split)
    raise InputError(f"no CIFAR-10 JPEG data under {str(root)!r}: expected a folder with '{split}/<class>/*.jpg' or "
                     f"the archive {_ARCHIVE} (in it or in its 'cifar10_jpeg/' subfolder).")


def _image_folder(path: Path) -> Any:
    tv = _torchvision()
    try:
        return tv.datasets.ImageFolder(str(path), transform=tv.transforms.ToTensor())
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
    if name == "cifar10":
        return _image_folder(cifar10_folder(data_dir, split))
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
    """
    if n_examples is None or n_examples >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n_examples]
    return torch.utils.data.Subset(dataset, order.sort().values.tolist())
