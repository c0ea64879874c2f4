"""MNIST's idx files checked before torchvision reads them: each file named with what is wrong with it.

torchvision's reader fails on a damaged file with ``AssertionError``, a reshape ``RuntimeError`` or a
``ValueError`` from deep inside, and reads a labels file of the other split without complaint. Here every
file's header is checked (magic number, element type, dimensions), its size against the header, and the
labels' count against the images'.

Example:
    >>> check_mnist_files("../shared/data", train=False)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from rkhsreg._errors import InputError
from rkhsreg.data.sniff import head_of, what_it_is

__all__ = ["check_mnist_files", "idx_shape"]

_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_SIZES = {"train": 60_000, "test": 10_000}  # MNIST's split sizes: which file of a mismatched pair is the other split's


def idx_shape(path: str | os.PathLike[str], ndim: int) -> tuple[int, ...]:
    """The dimensions an unsigned-byte idx file declares, checked against the file's size.

    Raises:
        InputError: the file is empty, compressed, an HTML page, not an idx file of unsigned bytes, of another
            number of dimensions (images and labels swapped?), or shorter or longer than its header says.
    """
    path = Path(path)
    head = head_of(path, 4 + 4 * 4)
    kind = what_it_is(head)
    if kind is not None:
        hint = " (decompress it: the raw folder holds uncompressed files)" if "compressed" in kind else ""
        raise InputError(f"{str(path)!r} is {kind}{hint}, not an MNIST idx file.")
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08:
        raise InputError(f"{str(path)!r} is not an MNIST idx file of unsigned bytes (its first bytes are "
                         f"{head[:4].hex(' ')}, expected 00 00 08 0{ndim}).")
    found = head[3]
    if found != ndim:
        what = {1: "labels", 3: "images"}.get(found, f"{found}-d data")
        want = {1: "labels", 3: "images"}[ndim]
        raise InputError(f"{str(path)!r} holds {what} (idx with {found} dimension{'s' if found != 1 else ''}) "
                         f"where {want} (idx with {ndim} dimension{'s' if ndim != 1 else ''}) are expected: are the "
                         "images and labels files swapped?")
    if len(head) < 4 + 4 * ndim:
        raise InputError(f"{str(path)!r} is truncated: it ends inside its header.")
    dims = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(dims)
    size = path.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "longer than its header says"
        raise InputError(f"{str(path)!r} is {state}: its header declares {'×'.join(map(str, dims))} bytes of data "
                         f"({expected} bytes in all) but the file has {size} bytes; copy it again.")
    return dims


def check_mnist_files(root: str | os.PathLike[str], *, train: bool) -> None:
    """Check the images and labels files of one split under ``root/MNIST/raw`` (see :func:`idx_shape`).

    Raises:
        InputError: a damaged file (named), or a labels file whose count is not the images' (a file of the
            other split? The one whose count is the other split's size is named).
    """
    raw = Path(root) / "MNIST" / "raw"
    images_name, labels_name = _FILES[bool(train)]
    images = idx_shape(raw / images_name, 3)
    labels = idx_shape(raw / labels_name, 1)
    if images[1:] != (28, 28):
        raise InputError(f"{str(raw / images_name)!r} holds images of {images[1]}×{images[2]}; MNIST's are 28×28.")
    split, other = ("train", "test") if train else ("test", "train")
    if labels[0] != images[0] and images[0] == _SIZES[other] and labels[0] == _SIZES[split]:
        raise InputError(f"{str(raw / images_name)!r} holds {images[0]} images, the size of MNIST's {other} split, "
                         f"where the {split} split has {_SIZES[split]} (as {labels_name} has): an images file of the "
                         f"{other} split? Copy the {split} images file again.")
    if labels[0] != images[0]:
        raise InputError(f"{str(raw / labels_name)!r} holds {labels[0]} labels for the {images[0]} images of "
                         f"{images_name}: a labels file of the other split? (train: 60000, test: 10000)")
    with open(raw / labels_name, "rb") as f:
        f.seek(8)
        values = f.read()
    top = max(values) if values else 0
    if top > 9:
        raise InputError(f"{str(raw / labels_name)!r} holds the label {top}; MNIST's labels are 0 to 9.")
