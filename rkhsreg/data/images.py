"""Image files read for an ``ImageFolder``: a file that is not an image is named, with what it is instead.

torchvision's default loader raises PIL's ``UnidentifiedImageError`` or ``OSError: image file is truncated``
from a worker, at the first batch that holds the file; this loader gives the same pixels (RGB) and an
``InputError`` that names the file.

Example:
    >>> datasets.ImageFolder("data/test", loader=read_rgb)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from rkhsreg._errors import InputError
from rkhsreg.data.sniff import head_of, what_it_is

__all__ = ["read_rgb"]


def read_rgb(path: str | os.PathLike[str]) -> Any:
    """The image at ``path`` as an RGB ``PIL.Image`` (what ``ImageFolder``'s default loader returns).

    Raises:
        InputError: the file is empty, truncated, an HTML page or otherwise not an image (the message names it).
    """
    from PIL import Image

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        kind = what_it_is(head_of(path))
        if kind is not None:
            reason = f"is {kind}, not an image"
        elif "truncated" in str(exc).lower():
            reason = "is truncated (an interrupted copy?)"
        else:
            reason = f"is not a readable image ({type(exc).__name__}: {exc})"
        raise InputError(f"{os.fspath(path)!r} {reason}; replace or remove it.") from None
