"""recipes._common.scripts.load_script: a recipe file executed as a module."""

from __future__ import annotations

import sys

import pytest

from recipes._common.scripts import load_script


def test_load_script_registers_the_module_and_runs_the_file(tmp_path):
    path = tmp_path / "runner.py"
    path.write_text("from dataclasses import dataclass\n@dataclass\nclass Cell:\n    n: int\nVALUE = Cell(3)\n")
    try:
        module = load_script("rkhsreg_test_runner", path)
        assert module.VALUE.n == 3 and sys.modules["rkhsreg_test_runner"] is module   # dataclasses need the entry
    finally:
        sys.modules.pop("rkhsreg_test_runner", None)


def test_load_script_names_a_missing_file_and_unregisters_a_failing_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_script("rkhsreg_test_missing", tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        load_script("rkhsreg_test_bad", bad)
    assert "rkhsreg_test_bad" not in sys.modules
