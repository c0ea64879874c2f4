"""What a data file really is, from its first bytes: the reason a loader gives when a file is not what its name says.

A download that saved an error page, a file left compressed under an uncompressed name, an empty or UTF-16 file:
each gets one sentence naming it, instead of the parser's own error (``UnicodeDecodeError``, ``EOFError``,
``AssertionError``) several layers down.

Example:
    >>> what_it_is(b"<!DOCTYPE html><html>")
    'an HTML page (a download that saved an error or login page?)'
    >>> what_it_is(b"\\x1f\\x8b\\x08\\x00") , what_it_is(b">d1 a.1.1.1\\nACD")
    ('gzip-compressed data', None)
"""

from __future__ import annotations

import os
from pathlib import Path

from rkhsreg._errors import InputError

__all__ = ["what_it_is", "head_of", "utf8_text", "starts_with", "is_tar", "is_torch_file", "GZIP_MAGIC",
           "ZIP_MAGIC", "UTF8_BOM"]

_HTML = (b"<!doctype html", b"<html", b"<head", b"<?xml", b"<body")
#: The first bytes of a gzip stream, of a zip archive (``torch.save``'s format) and of UTF-8 text with a byte-order mark.
GZIP_MAGIC, ZIP_MAGIC, UTF8_BOM = b"\x1f\x8b", b"PK\x03\x04", b"\xef\xbb\xbf"


def head_of(path: str | os.PathLike[str], size: int = 512) -> bytes:
    """The first ``size`` bytes of the file."""
    with open(Path(path), "rb") as f:
        return f.read(size)


def what_it_is(head: bytes) -> str | None:
    """A description of ``head`` when it is a known kind of file a loader never wants, else ``None``."""
    if not head:
        return "empty (0 bytes)"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"BZh"):
        return "bzip2-compressed data"
    if head.startswith(b"\xfd7zXZ"):
        return "xz-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (save it as UTF-8)"
    if head.lstrip()[:14].lower().startswith(_HTML):
        return "an HTML page (a download that saved an error or login page?)"
    return None


def starts_with(head: bytes, size: int = 24) -> str:
    """What ``head`` starts with, for a message: ``"text 'hello'"`` or ``"the bytes 00 01 …"``.

    Example:
        >>> starts_with(b"hello\\n"), starts_with(b"\\x00\\x01")
        ("text 'hello\\\\n'", 'the bytes 00 01')
    """
    text = head[:size].decode("utf-8", "replace")
    if head and "\ufffd" not in text[:-1] and all(c.isprintable() or c in "\t\r\n" for c in text[:-1]):
        return f"text {text.rstrip(chr(0xfffd))!r}" + ("…" if len(head) > size else "")
    return "the bytes " + head[:8].hex(" ") + (" …" if len(head) > 8 else "")


def is_tar(head: bytes) -> bool:
    """Whether ``head`` (at least 262 bytes) is the start of an uncompressed POSIX/GNU tar archive."""
    return head[257:262] == b"ustar"


def is_torch_file(head: bytes) -> bool:
    """Whether ``head`` starts like a ``torch.save`` file: a zip archive (the default format since torch 1.6) or a
    pickle (the legacy format, protocol 2 to 5)."""
    return head.startswith(ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def utf8_text(data: bytes, described: str, fix: str) -> str:
    """``data`` decoded as UTF-8 (without a leading byte-order mark, which Windows editors write), or an
    :class:`InputError` naming the file (``described``), the first byte that is not UTF-8 and its line, and
    ``fix`` (what to do)."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{described} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}{fix}") from None
