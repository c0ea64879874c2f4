"""Where CIFAR-10 lives, and reading it: an ImageFolder tree (the offline JPEG copy), its archive, or torchvision's.

Three layouts are found under the data root (``data_dir``, else ``$RKHSREG_DATA``, else ``./data``),
in this order:

1. an ImageFolder tree ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` at ``root/cifar10_jpeg``
   or at the root itself;
2. the archive of that tree, ``root/cifar10_jpeg/*.tar.gz`` (the offline JPEG copy of CIFAR-10): it
   is extracted **once** into a cache folder (``cache_dir``, else ``$RKHSREG_CACHE``, else
   ``$XDG_CACHE_HOME/rkhsreg``, else ``~/.cache/rkhsreg``), atomically — into a temporary folder beside the target, renamed when
   complete — so concurrent runs never see half a tree and the read-only data root is never
   written to. The cache folder's name carries the archive's name and size;
3. torchvision's ``root/cifar-10-batches-py`` (``torchvision.datasets.CIFAR10``), downloaded there
   only when ``download=True``.

The JPEG copy is a lossy re-encoding of CIFAR-10: a pipeline check, not a source of numbers
comparable with published ones. ImageFolder's class order (alphabetical) is CIFAR-10's label order.
No Lightning here.

Example:
    >>> train, test = cifar10_datasets("../shared/data")          # doctest: +SKIP
    >>> x, y = load_cifar10_tensors("../shared/data", limit=256)  # doctest: +SKIP
"""

from __future__ import annotations

import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import torch

from rkhsreg._errors import InputError
from rkhsreg._params import PATH, Boolean, Interval, IsCallable, Options, validates
from rkhsreg.data.root import DatasetNotFoundError, resolve_data_root
from rkhsreg.data.sniff import head_of, is_tar, starts_with, what_it_is

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CACHE_ENV_VAR", "SOURCES", "CIFAR10Location",
           "cifar10_imagefolder", "default_cache_dir", "extract_once", "find_cifar10", "cifar10_datasets", "load_cifar10_tensors"]

#: CIFAR-10's classes in label order (also the alphabetical order ImageFolder uses).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean and standard deviation used by the paper's reference code (normalisation inside the model).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: Environment variable naming the cache folder for extracted archives.
CACHE_ENV_VAR = "RKHSREG_CACHE"
#: Accepted values of ``source``.
SOURCES = ("auto", "imagefolder", "torchvision")
_JPEG_DIR = "cifar10_jpeg"
_COMPLETE = ".complete"


@dataclass(frozen=True)
class CIFAR10Location:
    """A CIFAR-10 on disk: ``kind`` is ``"imagefolder"`` (``path`` holds train/ and test/) or ``"torchvision"``."""

    kind: str
    path: Path


def default_cache_dir() -> Path:
    """``$RKHSREG_CACHE`` if set, else ``$XDG_CACHE_HOME/rkhsreg``, else ``~/.cache/rkhsreg``."""
    env = os.environ.get(CACHE_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rkhsreg"


def _read_cifar10_image(path: str | os.PathLike[str]) -> Any:
    """:func:`rkhsreg.data.images.read_rgb`, refusing an image that is not 32×32 (named, with its size)."""
    from rkhsreg.data.images import read_rgb

    image = read_rgb(path)
    if image.size != (32, 32):
        raise InputError(f"{os.fspath(path)!r} is {image.size[0]}×{image.size[1]} pixels; CIFAR-10 images are "
                         "32×32: replace or remove it.")
    return image


def cifar10_imagefolder(folder: str | os.PathLike[str], transform: Callable | None = None) -> Any:
    """One split folder of the CIFAR-10 JPEG copy (``<class>/<image>``) as a torchvision ``ImageFolder``.

    Its class folders must be exactly CIFAR-10's ten (:data:`CIFAR10_CLASSES`), so that a label is always the
    class's index in CIFAR-10's order (an ImageFolder numbers the folders it finds: a missing or extra folder
    would shift every label silently); every image must be 32×32.

    Raises:
        InputError: a class folder is missing or not a CIFAR-10 class (both named), the folder holds no images,
            or (when read) an image is not a readable 32×32 image (the file is named).
    """
    from torchvision import datasets, transforms

    folder = Path(folder)
    found = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    missing = [c for c in CIFAR10_CLASSES if c not in found]
    extra = [c for c in found if c not in CIFAR10_CLASSES]
    if folder.is_dir() and (missing or extra):
        problems = ([f"no class folder {', '.join(missing)}"] if missing else []) + (
            [f"class folders that are not CIFAR-10 classes: {', '.join(extra)}"] if extra else [])
        raise InputError(f"{str(folder)!r} has {' and '.join(problems)}; a CIFAR-10 split holds exactly the "
                         f"folders {', '.join(CIFAR10_CLASSES)} (labels are their indices in this order).")
    try:
        dataset = datasets.ImageFolder(str(folder), transform=transform or transforms.ToTensor(),
                                       loader=_read_cifar10_image)
    except (FileNotFoundError, RuntimeError) as exc:
        raise InputError(f"{str(folder)!r} is not an image folder ({str(exc).splitlines()[0]}); expected "
                         "<split>/<class>/<image> files.") from None
    if dataset.class_to_idx != {c: i for i, c in enumerate(CIFAR10_CLASSES)}:  # never the folders' own order
        raise InputError(f"{str(folder)!r}: classes {dataset.classes} are not CIFAR-10's {list(CIFAR10_CLASSES)}.")
    return dataset


def _is_imagefolder(path: Path) -> bool:
    return all((path / split).is_dir() and any(p.is_dir() for p in (path / split).iterdir())
               for split in ("train", "test"))


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Every member, refusing links and paths that leave the extraction folder."""
    members = tar.getmembers()
    for m in members:
        name = Path(m.name)
        if name.is_absolute() or ".." in name.parts or not (m.isfile() or m.isdir()):
            raise DatasetNotFoundError(f"{archive}: member {m.name!r} is not a plain file or folder inside the "
                                       "archive; refusing to extract it.")
    return members


def extract_once(archive: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Extract ``archive`` (a .tar.gz) into ``cache_dir`` unless an earlier call already did; return the folder.

    The tree is written to a temporary folder beside the target and renamed when complete (with a
    ``.complete`` marker), so an interrupted or concurrent extraction never leaves a partial tree
    where a reader looks.

    Args:
        archive: the archive file.
        cache_dir: where extracted trees live (default :func:`default_cache_dir`).

    Raises:
        DatasetNotFoundError: the archive does not exist.
        InputError: it is empty, truncated, an HTML page, neither compressed nor a tar archive (what it starts with
            is shown) or not a tar archive (named, nothing left in the cache).

    Example:
        >>> root = extract_once("../shared/data/cifar10_jpeg/CIFAR-10-images_jpeg.tar.gz")  # doctest: +SKIP
        >>> sorted(p.name for p in root.iterdir())                                          # doctest: +SKIP
        ['.complete', 'test', 'train']
    """
    archive = Path(archive)
    if not archive.is_file():
        raise DatasetNotFoundError(f"archive={str(archive)!r} does not exist.")
    head = head_of(archive)
    kind = what_it_is(head)
    if kind is not None and "compressed" not in kind:
        raise InputError(f"{str(archive)!r} is {kind}, not a tar archive; fetch the archive again.")
    if kind is None and not is_tar(head):
        raise InputError(f"{str(archive)!r} is not a gzip archive (it starts with {starts_with(head)}), nor a tar "
                         "archive; fetch the archive again.")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = archive.name.split(".")[0]
    target = cache / f"{stem}-{archive.stat().st_size}"
    if (target / _COMPLETE).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{stem}-extracting-"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _safe_members(tar, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python without extraction filters: members were checked above
                    tar.extractall(tmp, members=members)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
            reason = ("it ends before its last member (truncated: an interrupted copy or download?)"
                      if isinstance(exc, EOFError) or "truncated" in str(exc) or "unexpected end" in str(exc)
                      else f"it is not a readable tar archive ({str(exc).splitlines()[0]})")
            raise InputError(f"{str(archive)!r} could not be extracted: {reason}; fetch the archive again.") from None
        (tmp / _COMPLETE).write_text(f"extracted from {archive}\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; give it the permissions mkdir would
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first (or a stale incomplete target is in the way)
            if not (target / _COMPLETE).is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@validates({"data_dir": [None, PATH], "cache_dir": [None, PATH], "source": Options(SOURCES), "download": Boolean()})
def find_cifar10(data_dir: str | os.PathLike[str] | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
                 source: str = "auto", download: bool = False) -> CIFAR10Location:
    """Locate CIFAR-10 under the data root (see the module docstring for the order).

    Args:
        data_dir: the data root (default ``$RKHSREG_DATA``, else ``./data``).
        cache_dir: where an archive is extracted (default :func:`default_cache_dir`).
        source: ``"auto"``, ``"imagefolder"`` (only layouts 1–2) or ``"torchvision"`` (only layout 3).
        download: let torchvision download CIFAR-10 into the root when nothing is found.

    Raises:
        DatasetNotFoundError: nothing usable is there (the message lists where it looked).
    """
    root = resolve_data_root(data_dir)
    looked = []
    if source in ("auto", "imagefolder"):
        for candidate in (root / _JPEG_DIR, root):
            looked.append(f"{candidate}/{{train,test}}/<class>/")
            if candidate.is_dir() and _is_imagefolder(candidate):
                return CIFAR10Location("imagefolder", candidate)
        archives = sorted((root / _JPEG_DIR).glob("*.tar.gz")) if (root / _JPEG_DIR).is_dir() else []
        looked.append(f"{root / _JPEG_DIR}/*.tar.gz")
        if archives:
            extracted = extract_once(archives[0], cache_dir)
            if not _is_imagefolder(extracted):
                raise DatasetNotFoundError(f"{archives[0]} extracted to {extracted}, which has no train/<class>/ and "
                                           "test/<class>/ folders; it is not the CIFAR-10 ImageFolder archive.")
            return CIFAR10Location("imagefolder", extracted)
    if source in ("auto", "torchvision"):
        looked.append(f"{root / 'cifar-10-batches-py'}")
        if (root / "cifar-10-batches-py").is_dir() or download:
            return CIFAR10Location("torchvision", root)
    raise DatasetNotFoundError(
        f"CIFAR-10 not found (source={source!r}); looked for {'; '.join(looked)}. Point data_dir=/--data-dir= or "
        f"$RKHSREG_DATA at a folder holding cifar10_jpeg/ (the offline JPEG copy) or torchvision's "
        "cifar-10-batches-py, or pass download=True when online.")


@validates({"data_dir": [None, PATH], "cache_dir": [None, PATH], "source": Options(SOURCES), "download": Boolean(),
            "train_transform": [None, IsCallable()], "test_transform": [None, IsCallable()]})
def cifar10_datasets(data_dir: str | os.PathLike[str] | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
                     source: str = "auto", download: bool = False, train_transform: Callable | None = None,
                     test_transform: Callable | None = None) -> tuple[Any, Any]:
    """CIFAR-10's training and test sets as torchvision datasets of ``(image, label)`` pairs.

    Args:
        data_dir: the data root (see :func:`find_cifar10`).
        cache_dir: where an archive is extracted (see :func:`find_cifar10`).
        source: ``"auto"``, ``"imagefolder"`` or ``"torchvision"`` (see :func:`find_cifar10`).
        download: let torchvision download CIFAR-10 when nothing is found.
        train_transform: transform of the training images (default: ``ToTensor()``, [0, 1] floats).
        test_transform: transform of the test images (default: ``ToTensor()``).

    Returns:
        ``(train, test)``: 50,000 and 10,000 examples for the full data set.
    """
    try:
        from torchvision import datasets, transforms
    except ImportError as exc:
        raise ImportError("reading CIFAR-10 needs torchvision: pip install 'rkhsreg[data]'.") from exc
    to_tensor = transforms.ToTensor()
    where = find_cifar10(data_dir, cache_dir=cache_dir, source=source, download=download)
    train_t, test_t = train_transform or to_tensor, test_transform or to_tensor
    if where.kind == "imagefolder":
        return (cifar10_imagefolder(where.path / "train", train_t),
                cifar10_imagefolder(where.path / "test", test_t))
    try:
        return (datasets.CIFAR10(str(where.path), train=True, transform=train_t, download=download),
                datasets.CIFAR10(str(where.path), train=False, transform=test_t, download=download))
    except Exception as exc:  # torchvision raises RuntimeError / URLError when files are missing or offline
        raise DatasetNotFoundError(f"torchvision could not load CIFAR-10 from {where.path} ({type(exc).__name__}: "
                                   f"{exc}).") from exc


@validates({"data_dir": [None, PATH], "train": Boolean(), "limit": [None, Interval(Integral, 1, None)],
            "cache_dir": [None, PATH], "source": Options(SOURCES)})
def load_cifar10_tensors(data_dir: str | os.PathLike[str] | None = None, *, train: bool = True,
                         limit: int | None = None, cache_dir: str | os.PathLike[str] | None = None,
                         source: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` images of a fixed random order of one split as float tensors in [0, 1].

    The order is ``torch.randperm(n, generator=Generator().manual_seed(0))`` (an ImageFolder lists
    one class after another, so a plain prefix would hold one class).

    Args:
        data_dir: the data root (see :func:`find_cifar10`).
        train: the training split (True) or the test split.
        limit: keep this many images (None: all).
        cache_dir: where an archive is extracted.
        source: ``"auto"``, ``"imagefolder"`` or ``"torchvision"``.

    Returns:
        ``(images (N, 3, 32, 32), labels (N,))``.
    """
    train_set, test_set = cifar10_datasets(data_dir, cache_dir=cache_dir, source=source)
    dataset = train_set if train else test_set
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    if limit is not None:
        order = order[:limit]
    pairs = [dataset[int(i)] for i in order]
    return torch.stack([p[0] for p in pairs]), torch.tensor([int(p[1]) for p in pairs], dtype=torch.long)
