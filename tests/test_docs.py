"""The documentation names what exists: API reference targets import, the CLI options table matches the parser.

The strict MkDocs build (``make docs``) checks the same references, but only where the docs extra is
installed; these checks run with the test suite and take a second.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from rkhsreg.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_DIRECTIVE = re.compile(r"^:::\s+(rkhsreg[\w.]*)\s*$", re.MULTILINE)
_OPTION_ROW = re.compile(r"^\| `(--[\w-]+)` \|", re.MULTILINE)


def _reference_targets() -> list[str]:
    return sorted({name for page in (DOCS / "reference").glob("*.md") for name in _DIRECTIVE.findall(page.read_text())})


def _resolve(path: str) -> object:
    """Import the longest importable module prefix of ``path`` and get the rest as attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("rkhsreg"):
                pytest.skip(f"{path} needs {exc.name}, which is not installed")
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def test_reference_pages_exist_and_name_objects() -> None:
    assert len(_reference_targets()) >= 50, "the API reference lost most of its ::: directives"


@pytest.mark.parametrize("path", _reference_targets())
def test_reference_target_imports(path: str) -> None:
    obj = _resolve(path)
    assert obj.__doc__, f"{path} has no docstring to render"


def _evaluate_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {opt for action in sub.choices["evaluate"]._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"}


def test_cli_options_table_matches_the_parser() -> None:
    documented = set(_OPTION_ROW.findall((DOCS / "howto" / "evaluate-checkpoint.md").read_text()))
    options = _evaluate_options()
    assert documented - options == set(), "documented options that `rkhsreg evaluate` does not have"
    assert options - documented == set(), "options of `rkhsreg evaluate` missing from the docs' table"


def test_embedded_result_tables_equal_their_summary_files():
    """A docs block ``<!-- table:start (path) --> … <!-- table:end -->`` holds exactly that summary's table."""
    blocks = 0
    for page in (ROOT / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"<!-- table:start \(([^)]+)\) -->\n(.*?)<!-- table:end -->", text, re.S):
            source = (ROOT / match.group(1)).read_text(encoding="utf-8")
            assert match.group(2).strip(), f"{page.name}: the block of {match.group(1)} is empty"
            assert source.strip().endswith(match.group(2).strip()), \
                f"{page.name}: the block of {match.group(1)} is stale; rerun the runner with --summary --docs"
            blocks += 1
    assert blocks >= 2                                    # the MNIST and protein tables


def test_embedded_images_equal_their_sources():
    """An image after ``<!-- image: path -->`` is byte for byte that file (a runner's plot)."""
    images = 0
    for page in (ROOT / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^<!-- image: (\S+) -->\n!\[[^\]]*\]\(([^)\s]+)\)", text, re.MULTILINE):
            shown = (page.parent / match.group(2)).read_bytes()
            assert shown == (ROOT / match.group(1)).read_bytes(), \
                f"{page.name}: {match.group(2)} is not {match.group(1)}; rerun the runner with --summary --docs"
            images += 1
    assert images >= 1                                    # the MNIST accuracy-vs-n plot


def test_embed_images_copies_over_each_marked_image_only(tmp_path):
    from recipes._common.results import embed_images

    page = tmp_path / "page.md"
    page.write_text("<!-- image: a/plot.png -->\n![a](img/a.png)\n![other](img/b.png)\n"
                    "<!-- image: c/plot.png -->\n![c](img/c.png)\n<!-- image: a/plot.png -->\n![a again](a2.png)\n")
    assert embed_images(page, "a/plot.png", b"PNG-A") == [tmp_path / "img" / "a.png", tmp_path / "a2.png"]
    assert (tmp_path / "img" / "a.png").read_bytes() == (tmp_path / "a2.png").read_bytes() == b"PNG-A"
    assert not (tmp_path / "img" / "b.png").exists() and not (tmp_path / "img" / "c.png").exists()
    assert embed_images(page, "missing/plot.png", b"x") == []          # no marker: nothing written
    page.write_text("<!-- image: a/plot.png -->\n![a](https://example.org/a.png)\n")
    with pytest.raises(ValueError, match="'https://example.org/a.png' .* must be a path relative to the page"):
        embed_images(page, "a/plot.png", b"x")


def test_embed_table_replaces_only_its_block(tmp_path):
    from recipes._common.results import embed_table

    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- table:start (a/table.md) -->\nold\n<!-- table:end -->\noutro\n")
    embed_table(page, "a/table.md", "| new |\n\nfootnote\n")
    assert page.read_text() == "intro\n<!-- table:start (a/table.md) -->\n| new |\n\nfootnote\n<!-- table:end -->\noutro\n"
    with pytest.raises(ValueError, match="b/table.md"):
        embed_table(page, "b/table.md", "x")


def test_the_settings_examples_run_as_written() -> None:
    """The typed settings' docstring example (what a bad value prints) is executed, not only shown."""
    import doctest

    import rkhsreg.evaluation.settings as settings

    result = doctest.testmod(settings, report=False)
    assert result.attempted >= 4 and result.failed == 0


def test_every_generated_table_is_what_its_results_render() -> None:
    """A measured table or cost line in the docs is rendered from the benchmark results JSON, never retyped: every
    generated block of README.md and docs/ equals what ``benchmarks/docs_tables.py`` renders from its results."""
    from benchmarks import docs_tables

    assert docs_tables.stale_blocks() == []


def test_every_quoted_cost_was_measured_with_the_current_defaults() -> None:
    """The results behind the docs' tables recorded the library's defaults when they were measured; a default
    changed since (a budget, a step count, a radius) makes them stale until rerun."""
    from benchmarks import docs_tables

    assert docs_tables.stale_defaults() == []


def test_a_default_resolved_from_a_module_constant_is_recorded(monkeypatch) -> None:
    """``budget=None`` means :data:`DEFAULT_BUDGET` without a target: the recorded defaults hold the budget it
    resolves to, so changing the constant (under an unchanged signature) makes the results stale."""
    from benchmarks import _timing
    from rkhsreg.penalties import adversarial_perturbation as module

    before = _timing.library_defaults()["penalties"]["adversarial_perturbation"]
    assert before["budget"] == module.DEFAULT_BUDGET
    monkeypatch.setattr(module, "DEFAULT_BUDGET", module.DEFAULT_BUDGET - 1)
    after = _timing.library_defaults()["penalties"]["adversarial_perturbation"]
    assert after["budget"] == before["budget"] - 1


def test_a_changed_default_or_table_is_caught(monkeypatch, tmp_path) -> None:
    """The two checks above can fail: a default other than the one measured, a table edited by hand."""
    from benchmarks import _timing, docs_tables

    now = _timing.library_defaults()
    changed = {**now, "penalties": {**now["penalties"], "adversarial_perturbation": {
        **now["penalties"]["adversarial_perturbation"], "steps": 7}}}
    monkeypatch.setattr(docs_tables, "library_defaults", lambda: changed)
    assert any("'adversarial_perturbation' (steps)" in p for p in docs_tables.stale_defaults())
    page = tmp_path / "page.md"
    page.write_text("<!-- generated: delta_search -->\n| hand | typed |\n<!-- end generated: delta_search -->\n")
    monkeypatch.setattr(docs_tables, "ROOT", tmp_path)
    block = docs_tables.BLOCKS["delta_search"]
    monkeypatch.setattr(docs_tables, "BLOCKS", {"delta_search": docs_tables.Block("page.md", block.render,
                                                                                  block.source)})
    monkeypatch.setattr(docs_tables, "RESULTS", ROOT / "benchmarks" / "results")
    assert docs_tables.stale_blocks() == ["page.md: block 'delta_search' differs from cpu-x86_64-2cores.json#"
                                          "delta_search (python -m benchmarks.docs_tables rewrites it)"]
