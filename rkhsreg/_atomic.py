"""Write a file atomically: a temporary file in the destination folder, fsync, ``os.replace``.

Nothing in the standard library does this in one call; every result file rkhsreg writes goes through it,
so a reader never sees half a file and an interrupted write leaves the old one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from rkhsreg._errors import OutputExistsError

__all__ = ["atomic_write", "refuse_existing"]


def refuse_existing(paths: Iterable[str | os.PathLike[str]], *, overwrite: bool, instead: str = "another path") -> None:
    """The one overwrite policy of rkhsreg's writers: unless ``overwrite``, refuse (before writing anything) when
    any of ``paths`` exists, naming all of them.

    Raises:
        OutputExistsError: (a ``FileExistsError``) a file exists and ``overwrite`` is False.

    Example:
        >>> refuse_existing([Path("results/eval.json")], overwrite=False)  # doctest: +SKIP
    """
    if overwrite:
        return
    existing = [os.fspath(p) for p in paths if Path(p).exists()]
    if existing:
        verb = "already exists" if len(existing) == 1 else "already exist"
        them = "it" if len(existing) == 1 else "them"
        raise OutputExistsError(f"{', '.join(existing)} {verb}; pass {instead}, or overwrite=True to replace {them}.")


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``).

    The temporary file is created with ``os.open(..., 0o666)``, so it gets the permissions ``open()``
    would give (the umask applies) without touching the process-wide umask. On any failure the old
    file is left as it was and the temporary file is removed. ``overwrite=False``: an existing ``path`` is
    refused (:func:`refuse_existing`), as every user-facing writer does by default.

    Example:
        >>> atomic_write(Path("results") / "table.md", "| a |\n")  # doctest: +SKIP
    """
    refuse_existing([path], overwrite=overwrite)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
