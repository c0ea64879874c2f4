"""Results files of resumable runners: one CSV line appended per finished run, tables written atomically.

Private helpers for the recipes (``recipes/*/run.py``): a runner appends each finished run at
once, so a killed process loses at most the run in progress, and skips finished cells on restart.

Example:
    >>> append_line(Path("runs.csv"), {"row": "wd", "auroc": 0.7}, ["row", "auroc", "finished_at"])  # doctest: +SKIP
    >>> read_runs(Path("runs.csv"))                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["append_line", "read_runs", "write_atomic", "git_commit", "machine"]


def append_line(path: Path, record: Mapping[str, Any], columns: Sequence[str]) -> None:
    """Append one CSV line (header first if the file is new) in one write: open/append/flush/fsync.

    A last line torn by a killed writer (no final newline) is ended first, so this record stays whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    new = not path.exists() or path.stat().st_size == 0
    if new:
        writer.writeheader()
    writer.writerow({k: record.get(k, "") for k in columns})
    text = buf.getvalue()
    if not new:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                text = "\n" + text
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_runs(path: Path, complete: str = "finished_at") -> list[dict[str, str]]:
    """Every complete line of a runs file (lines without a ``complete`` value, e.g. torn ones, are ignored)."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get(complete)]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def git_commit(cwd: Path) -> str:
    """``HEAD``'s short hash, ``+dirty`` when tracked files changed (read-only git calls), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    """A one-line description of the machine (OS, CPU, CPU count, torch version)."""
    import torch

    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}"
