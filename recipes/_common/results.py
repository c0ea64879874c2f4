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
import re
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rkhsreg.evaluation.result import atomic_write

__all__ = ["append_line", "csv_text", "read_runs", "atomic_write", "write_atomic", "embed_table", "git_commit",
           "machine", "published_table"]


def append_line(path: Path, record: Mapping[str, Any], columns: Sequence[str]) -> None:
    """Append one CSV line (header first if the file is new) in one write: open/append/flush/fsync.

    A last line torn by a killed writer (no final newline) is cut off first, with a warning, so it is
    neither merged with this record nor read back as a finished run with a truncated value.
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
        _cut_torn_line(path)
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _cut_torn_line(path: Path) -> None:
    """Truncate ``path`` after its last newline when its last line has none (a write killed midway)."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":  # the usual case: one byte read
            return
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(f"{path}: removed a torn last line ({len(data) - keep} bytes, a run killed while writing it): "
                  f"{data[keep:keep + 80].decode('utf-8', 'replace')!r}", RuntimeWarning, stacklevel=3)


def csv_text(header: Sequence[str], records: Sequence[Mapping[str, Any]]) -> str:
    """A CSV table (header line, then one line per record; ``None`` written as an empty field)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in header})
    return buf.getvalue()


def read_runs(path: Path, complete: str = "finished_at") -> list[dict[str, str]]:
    """Every complete line of a runs file: a torn last line (no final newline) and lines without a
    ``complete`` value are ignored."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [r for r in csv.DictReader(io.StringIO(text, newline="")) if r.get(complete)]


write_atomic = atomic_write  # the runners' name for it


def embed_table(page: str | os.PathLike[str], source: str, text: str) -> Path:
    """Replace, in the Markdown ``page``, the block between ``<!-- table:start (source) -->`` and the next
    ``<!-- table:end -->`` by ``text`` (atomically), so a docs page shows exactly a runner's summary.

    Raises:
        ValueError: the page has no such block (the markers name the summary file they hold).
    """
    page = Path(page)
    content = page.read_text(encoding="utf-8")
    start = f"<!-- table:start ({source}) -->\n"
    begin = content.find(start)
    end = content.find("<!-- table:end -->", begin + len(start)) if begin >= 0 else -1
    if begin < 0 or end < 0:
        raise ValueError(f"{page}: no '{start.strip()}' ... '<!-- table:end -->' block to write the table into.")
    return atomic_write(page, content[:begin + len(start)] + text.strip() + "\n" + content[end:])


def embed_images(page: str | os.PathLike[str], source: str, data: bytes) -> list[Path]:
    """Write ``data`` (the file ``source`` names, e.g. a runner's plot) over every image that the Markdown
    ``page`` shows right after an ``<!-- image: source -->`` marker (``![alt](path relative to the page)`` on the
    next line), atomically, so a docs page shows exactly a runner's latest plot. Returns the files written (none
    when the page has no such marker: a page need not show every plot).

    Raises:
        ValueError: an image after the marker is not a relative path (an absolute path or a URL).
    """
    page = Path(page)
    marker = re.compile(rf"^<!-- image: {re.escape(source)} -->\n!\[[^\]]*\]\(([^)\s]+)\)", re.MULTILINE)
    targets = [match.group(1) for match in marker.finditer(page.read_text(encoding="utf-8"))]
    for target in targets:
        if Path(target).is_absolute() or "://" in target:
            raise ValueError(f"{page}: the image {target!r} after '<!-- image: {source} -->' must be a path "
                             "relative to the page.")
    return [atomic_write(page.parent / target, data) for target in targets]


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


def machine(device: Any = "cpu") -> str:
    """A one-line description of the machine (OS, CPU, CPU count, torch version), and of the accelerator when
    ``device`` is not the CPU."""
    import torch

    cpu = platform.processor() or platform.machine()
    text = f"{platform.system()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{text}, {torch.cuda.get_device_name(device)}"
    return text if device.type == "cpu" else f"{text}, {device}"


def published_table(published: Path, results: Path) -> str:
    """The published table to print after a user's run, beside theirs (empty when ``results`` is the published folder).

    Example:
        >>> print(published_table(HERE / "published", Path("results/mnist_small_data")))  # doctest: +SKIP
    """
    table = published / "table.md"
    if not table.exists() or results.resolve() == published.resolve():
        return ""
    try:
        where = table.relative_to(Path(__file__).resolve().parents[2])
    except ValueError:
        where = table
    return f"\nThe published table ({where}), to compare with yours above:\n\n{table.read_text()}"
