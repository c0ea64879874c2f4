"""FASTA parsing/writing and ASTRAL headers, on the real SCOP 1.67 sample files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rkhsreg._errors import InputError
from rkhsreg.data.fasta import FastaRecord, format_fasta, parse_astral_header, parse_fasta, read_fasta, write_fasta

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "protein" / "scop167_sample"
needs_sample = pytest.mark.skipif(not (SAMPLE / "pos-test.c.1.1.fasta").is_file(), reason="SCOP sample not present")


def test_parse_joins_lines_and_skips_blank_and_comment_lines():
    text = "; a comment\n>seq1 first protein\nACD\n  EFG \n\n>seq2\nW Y\n"
    records = parse_fasta(text)
    assert records == [FastaRecord("seq1", "seq1 first protein", "ACDEFG"), FastaRecord("seq2", "seq2", "WY")]


def test_parse_accepts_an_iterable_of_lines():
    assert parse_fasta([">a\n", "MK\n"])[0].sequence == "MK"


@pytest.mark.parametrize("text, match", [
    ("ACD\n>a\nAC\n", "before the first '>'"),
    (">\nACD\n", "empty FASTA header"),
    (">a\n>b\nAC\n", "entry 'a' has no sequence"),
    (">a\nAC\n>b\n", "entry 'b' has no sequence"),
])
def test_parse_errors_name_the_line(text, match):
    with pytest.raises(InputError, match=match):
        parse_fasta(text, source="x.fasta")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fasta"):
        read_fasta(tmp_path / "nope.fasta")


@needs_sample
def test_real_sample_files_counts_and_round_trip(tmp_path):
    pos = read_fasta(SAMPLE / "pos-test.c.1.1.fasta")
    neg = read_fasta(SAMPLE / "neg-test.c.1.1.fasta")
    assert (len(pos), len(neg)) == (15, 255)   # SOURCES.md
    assert pos[0].id == "d1tph1_" and pos[0].sequence.startswith("RKFFVGGNWKMNG")
    for width in (60, 0):
        out = tmp_path / f"round_{width}.fasta"
        write_fasta(pos + neg, out, width=width)
        assert read_fasta(out) == pos + neg
    # residues only (letters), every record non-empty
    assert all(r.sequence.isalpha() for r in pos + neg)


@needs_sample
def test_real_headers_parse_and_split_positives_from_negatives():
    pos = [parse_astral_header(r.description) for r in read_fasta(SAMPLE / "pos-test.c.1.1.fasta")]
    neg = [parse_astral_header(r.description) for r in read_fasta(SAMPLE / "neg-test.c.1.1.fasta")]
    assert {h.superfamily for h in pos} == {"c.1.1"}
    assert "c.1.1" not in {h.superfamily for h in neg}
    first = pos[0]
    assert (first.sid, first.sccs, first.region, first.name) == ("d1tph1_", "c.1.1.1", "1:", "Triosephosphate isomerase")
    assert first.species == "Chicken (Gallus gallus) [TaxId: 9031]"


def test_astral_header_with_nested_parentheses_and_no_species():
    h = parse_astral_header(">d1abca1 b.2.3.4 (A:1-120) Some protein (fragment)")
    assert (h.sid, h.sccs, h.region, h.name, h.species) == ("d1abca1", "b.2.3.4", "A:1-120", "Some protein (fragment)", "")


def test_non_astral_header_is_refused():
    with pytest.raises(InputError, match="not an ASTRAL header"):
        parse_astral_header("sp|P12345|SOME_HUMAN some protein")


def test_format_wraps_at_width():
    assert format_fasta([FastaRecord("a", "a x", "ABCDE")], width=2) == ">a x\nAB\nCD\nE\n"


def test_write_fasta_refuses_an_existing_file_unless_overwrite(tmp_path):
    from rkhsreg import OutputExistsError

    out = tmp_path / "keep.fasta"
    out.write_text("precious")
    records = parse_fasta(">a one\nACD\n")
    with pytest.raises(OutputExistsError, match=r"keep\.fasta already exists; pass another path, or overwrite=True"):
        write_fasta(records, out)
    assert out.read_text() == "precious"
    write_fasta(records, out, overwrite=True)
    assert read_fasta(out) == records
