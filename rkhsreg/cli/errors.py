"""The command line's user errors: one line on stderr and exit status 2 (``EXIT_USAGE``)."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["EXIT_USAGE", "UserError", "Parser"]

EXIT_USAGE = 2


class UserError(Exception):
    """An error to report in one line."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")
