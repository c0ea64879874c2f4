"""Where MNIST lives: ``data_dir`` argument, else ``$RKHSREG_DATA``, else ``./data``; download as a last resort.

Loading gives float tensors in [0, 1] of shape (N, 1, 28, 28) and int64 labels, cached per process
(a runner that trains many small models reads the idx files once). No Lightning here.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import torch

from rkhsreg._atomic import atomic_write
from rkhsreg._errors import InputError, RKHSRegError
from rkhsreg._params import PATH, Boolean, validates

__all__ = ["DatasetNotFoundError", "ENV_VAR", "resolve_data_root", "mnist_files_present", "load_mnist"]

#: Environment variable naming the data root (the folder that contains ``MNIST/raw``).
ENV_VAR = "RKHSREG_DATA"
_RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CACHE: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}


class DatasetNotFoundError(RKHSRegError, FileNotFoundError):
    """The data set is not on disk and could not be downloaded."""


def resolve_data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$RKHSREG_DATA`` if set, else ``./data``.

    Example:
        >>> resolve_data_root("/datasets")
        PosixPath('/datasets')
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path("data")


def mnist_files_present(root: str | os.PathLike[str]) -> bool:
    """Whether ``root/MNIST/raw`` holds the four uncompressed idx files (torchvision's layout)."""
    raw = Path(root) / "MNIST" / "raw"
    return all((raw / name).is_file() for name in _RAW_FILES)


def _decompress_gz(root: Path) -> bool:
    """Decompress ``root/MNIST/raw/<file>.gz`` next to itself for every idx file missing uncompressed (MNIST is
    distributed gzip-compressed; torchvision reads the uncompressed files only). Returns whether it did.

    Raises:
        InputError: a ``.gz`` file is damaged, or the folder cannot be written (the message says how to decompress).
    """
    raw = root / "MNIST" / "raw"
    missing = [name for name in _RAW_FILES if not (raw / name).is_file()]
    if not missing or not all((raw / f"{name}.gz").is_file() for name in missing):
        return False
    for name in missing:
        packed = raw / f"{name}.gz"
        try:
            with gzip.open(packed, "rb") as handle:
                data = handle.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{str(packed)!r} could not be decompressed ({exc}): the file is damaged; copy it "
                             "again.") from exc
        try:
            atomic_write(raw / name, data)
        except OSError as exc:
            raise InputError(f"{str(raw)!r} holds MNIST's files gzip-compressed only ({', '.join(missing)} as .gz) "
                             f"and they could not be decompressed there ({exc.strerror or exc}); decompress them "
                             f"yourself (gunzip -k {raw}/*.gz) or point data_dir at a copy holding the uncompressed "
                             "files.") from exc
    return True


@validates({"root": [None, PATH], "train": Boolean(),
            "download": [None, Boolean()]})
def load_mnist(root: str | os.PathLike[str] | None = None, *, train: bool = True,
               download: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images as floats in [0, 1], shape (N, 1, 28, 28), and int64 labels (N,).

    Args:
        root: the data root (see :func:`resolve_data_root`; ``None`` resolves it).
        train: the 60k training set (True) or the official 10k test set (False).
        download: ``None`` (default) downloads only when the files are missing; ``False`` never does;
            ``True`` lets torchvision download (it skips files already there).

    A raw folder that holds the idx files gzip-compressed only (``t10k-images-idx3-ubyte.gz``, …, as MNIST is
    distributed) is decompressed in place first, as torchvision does after a download.

    Raises:
        DatasetNotFoundError: the files are missing and the download is off or failed (offline).
        InputError: a file is there but damaged, compressed, an HTML page, or of the other split (the message
            names it and what is wrong).

    Example:
        >>> x, y = load_mnist("../shared/data", train=False)  # doctest: +SKIP
        >>> x.shape, y.shape                                   # doctest: +SKIP
        (torch.Size([10000, 1, 28, 28]), torch.Size([10000]))
    """
    # the arguments are checked by their declarations (train="test" is not False)
    path = resolve_data_root(root)
    key = (str(path.resolve()), bool(train))
    if key in _CACHE:
        return _CACHE[key]
    try:
        from torchvision.datasets import MNIST
    except ImportError as exc:
        raise ImportError("rkhsreg.data.load_mnist reads MNIST with torchvision, which is not installed: "
                          "pip install 'rkhsreg[data]' (or pip install torchvision).") from exc

    present = mnist_files_present(path) or _decompress_gz(path)
    if not present and download is False:
        raise DatasetNotFoundError(
            f"MNIST is not under {str(path)!r} (looked for {path / 'MNIST' / 'raw'}/{{{','.join(_RAW_FILES)}}}) and "
            f"download=False. Pass data_dir=/--data-dir= a folder that contains MNIST/raw, set {ENV_VAR}, or allow "
            "the download.")
    if present:  # a damaged or misplaced file is named, never reported as a failed download
        from rkhsreg.data.mnist_files import check_mnist_files
        check_mnist_files(path, train=train)
    try:
        dataset = MNIST(str(path), train=train, download=not present)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError when offline
        if present:
            raise InputError(f"the MNIST files under {str(path / 'MNIST' / 'raw')!r} could not be read "
                             f"({type(exc).__name__}: {exc}); copy them again.") from exc
        raise DatasetNotFoundError(
            f"MNIST is not under {str(path)!r} (looked for {path / 'MNIST' / 'raw'}) and downloading it failed "
            f"({type(exc).__name__}: {exc}). Offline? Point data_dir=/--data-dir= or {ENV_VAR} at a folder that "
            "contains MNIST/raw (torchvision layout), e.g. RKHSREG_DATA=../shared/data.") from exc
    images = dataset.data.unsqueeze(1).float().div_(255.0)
    labels = dataset.targets.long()
    _CACHE[key] = (images, labels)
    return images, labels
