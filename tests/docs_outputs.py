"""Printed outputs shown in the documentation, checked against what their code block really prints.

A page marks the output of the ```python block above it with an HTML comment (invisible on the site) right
before a fenced block::

    ```python
    print(rkhsreg.list_penalties())
    ```

    <!-- output -->
    ```text
    ['adversarial_deformation', ...]
    ```

``make test`` runs the python block (pytest-markdown-docs), captures what it prints and compares it with the
fenced block (``conftest.py``): the text must be the same, and so must every number, unless the comment
allows a tolerance for numbers that depend on the machine (``<!-- output: atol=5 -->``: each number within
5 of the page's; ``rtol=0.1``: within 10 %), which the page then states in words, and may name lines that
appear on some machines only (``skip=warning:``: lines starting with ``warning:`` are left out on both sides,
e.g. a sanity warning near its threshold). A number changed on the page beyond that fails the test, so a page
cannot show an output its code does not print.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

__all__ = ["expected_output", "compare_output", "OutputSpec"]

_FENCE = re.compile(r"^(`{3,})(.*)$")
_MARK = re.compile(r"^<!--\s*output(?::\s*(?P<opts>[^>]*?))?\s*-->\s*$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\binf\b|\bnan\b")


class OutputSpec:
    """The output a page shows for one python block: its text and the tolerances allowed for its numbers."""

    def __init__(self, text: str, atol: float = 0.0, rtol: float = 0.0, line: int = 0,
                 skip: tuple[str, ...] = ()) -> None:
        self.text, self.atol, self.rtol, self.line, self.skip = text, atol, rtol, line, skip


def _fences(lines: list[str]) -> list[tuple[int, int, str]]:
    """``(first line, last line, info string)`` of every fenced block, 1-based, the fence lines included."""
    out, start, info, ticks = [], None, "", ""
    for i, line in enumerate(lines, 1):
        m = _FENCE.match(line)
        if not m:
            continue
        if start is None:
            start, ticks, info = i, m.group(1), m.group(2).strip()
        elif m.group(1) == ticks and not m.group(2).strip():
            out.append((start, i, info))
            start = None
    return out


def _options(text: str | None, page: Path, line: int) -> dict[str, object]:
    out: dict[str, object] = {"atol": 0.0, "rtol": 0.0, "skip": ()}
    for item in (text or "").split():
        key, _, value = item.partition("=")
        if key not in out or not value:
            raise ValueError(f"{page}:{line}: output option {item!r} is not allowed; use atol=<number>, "
                             "rtol=<number> or skip=<line prefix>")
        out[key] = (*out["skip"], value) if key == "skip" else float(value)
    return out


def expected_output(page: Path, block_line: int) -> OutputSpec | None:
    """The output the page shows for the python block whose opening fence is on ``block_line`` (1-based), or
    None: an ``<!-- output -->`` comment between that block and the next fenced block, followed by that block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    fences = _fences(lines)
    after = [f for f in fences if f[0] > block_line]
    current = next((f for f in fences if f[0] == block_line), None)
    if current is None or not after:
        return None
    nxt = after[0]
    for i in range(current[1] + 1, nxt[0]):
        m = _MARK.match(lines[i - 1].strip())
        if m:
            return OutputSpec("\n".join(lines[nxt[0]:nxt[1] - 1]), line=nxt[0], **_options(m.group("opts"), page, i))
    return None


def _split(text: str, skip: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The text around the numbers (whitespace runs collapsed, line ends stripped, lines starting with a
    ``skip`` prefix left out) and the numbers."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines() if not line.startswith(skip)]
    joined = "\n".join(lines)
    numbers = _NUMBER.findall(joined)
    words = [re.sub(r"[ \t]+", " ", part) for part in _NUMBER.split(joined)]
    return words, numbers


def compare_output(expected: OutputSpec, actual: str) -> str | None:
    """None when ``actual`` (what the block printed) matches the page's output, else what differs."""
    want_words, want_numbers = _split(expected.text, expected.skip)
    got_words, got_numbers = _split(actual, expected.skip)
    if want_words != got_words or len(want_numbers) != len(got_numbers):
        return (f"the block printed text that differs from the page's output (line {expected.line}):\n"
                f"--- page\n{expected.text}\n--- printed\n{actual.rstrip()}")
    for want, got in zip(want_numbers, got_numbers):
        w, g = float(want), float(got)
        if math.isnan(w) or math.isnan(g) or math.isinf(w) or math.isinf(g):
            same = want == got
        else:
            same = abs(g - w) <= expected.atol + expected.rtol * abs(w)
        if not same:
            tol = f"atol={expected.atol:g}, rtol={expected.rtol:g}"
            return (f"the block printed {got} where the page shows {want} (line {expected.line}; allowed: {tol}):\n"
                    f"--- page\n{expected.text}\n--- printed\n{actual.rstrip()}")
    return None
