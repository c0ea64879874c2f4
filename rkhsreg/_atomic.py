"""Write a file atomically: a temporary file in the destination folder, fsync, ``os.replace``.

Nothing in the standard library does this in one call; every result file rkhsreg writes goes through it,
so a reader never sees half a file and an interrupted write leaves the old one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``).

    The temporary file is created with ``os.open(..., 0o666)``, so it gets the permissions ``open()``
    would give (the umask applies) without touching the process-wide umask. On any failure the old
    file is left as it was and the temporary file is removed.

    Example:
        >>> atomic_write(Path("results") / "table.md", "| a |\n")  # doctest: +SKIP
    """
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
