"""The evaluation's progress on stderr: a tqdm bar per stage, or a line per stage without tqdm."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """tqdm bars (one per stage) when tqdm is installed, else a line on stderr per stage end."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label: str | None = None
        self.bar: Any = None
        self.started = time.perf_counter()
        try:
            import tqdm
            self._tqdm = tqdm.tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if label != self.label:
            self.close()
            self.label = label
            if self._tqdm is not None:
                self.bar = self._tqdm(total=total, desc=label, unit="ex", leave=False, file=sys.stderr)
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()
        elif done >= total:
            sys.stderr.write(f"[{time.perf_counter() - self.started:7.1f}s] {label}: {total} examples\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
