"""FASTA files and ASTRAL/SCOP headers, read and written without third-party packages.

Example:
    >>> records = parse_fasta(">d1tph1_ c.1.1.1 (1:) Triosephosphate isomerase {Chicken}\\nRKFFVG\\nGNWK\\n")
    >>> records[0].id, records[0].sequence
    ('d1tph1_', 'RKFFVGGNWK')
    >>> parse_astral_header(records[0].description).sccs
    'c.1.1.1'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rkhsreg._atomic import atomic_write
from rkhsreg._errors import InputError
from rkhsreg._params import PATH, validates
from rkhsreg.data.sniff import utf8_text, what_it_is

__all__ = ["FastaRecord", "AstralHeader", "parse_fasta", "read_fasta", "format_fasta", "write_fasta",
           "parse_astral_header"]


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA entry.

    Attributes:
        id: the header's first word (without ``>``).
        description: the whole header line (without ``>``), id included.
        sequence: the residues, lines joined, whitespace removed, case kept.
    """

    id: str
    description: str
    sequence: str


@dataclass(frozen=True)
class AstralHeader:
    """The fields of an ASTRAL/SCOP header ``>d1tph1_ c.1.1.1 (1:) Triosephosphate isomerase {Chicken ...}``.

    Attributes:
        sid: the SCOP domain identifier (``d1tph1_``).
        sccs: the SCOP concise classification string ``class.fold.superfamily.family`` (``c.1.1.1``).
        region: the chain/residue region (``1:``), without parentheses.
        name: the protein name.
        species: the text in braces (organism, taxonomy id), or ``""``.
    """

    sid: str
    sccs: str
    region: str
    name: str
    species: str

    @property
    def superfamily(self) -> str:
        """``class.fold.superfamily`` (``c.1.1``): the level of the SCOP 1.67 superfamily tasks."""
        return ".".join(self.sccs.split(".")[:3])


_SUFFIXES = (".fa", ".fasta", ".faa", ".fas")


def _looks_like_path(text: str) -> bool:
    """One line that names an existing file or folder, holds a path separator or ends with a FASTA suffix:
    a path given where the text was meant (no FASTA text is a single such line: it starts with '>')."""
    line = text.strip()
    if not line or "\n" in line or line.startswith(">"):
        return False
    try:
        exists = Path(line).expanduser().exists()
    except (OSError, ValueError):   # too long a name, a NUL byte: not a path
        exists = False
    return exists or "/" in line or "\\" in line or line.lower().endswith(_SUFFIXES)


def _path_kind(text: str | os.PathLike[str]) -> str:
    path = Path(os.fspath(text).strip()).expanduser()
    try:
        kind = "the path of a file" if path.is_file() else "the path of a folder" if path.is_dir() else None
    except (OSError, ValueError):
        kind = None
    return kind or ("a path" if isinstance(text, os.PathLike) else "what looks like a path, not FASTA text")


def parse_fasta(text: str | Iterable[str], *, source: str = "<text>") -> list[FastaRecord]:
    """Parse FASTA text (a string or an iterable of lines).

    Blank lines are ignored; ``;`` comment lines are skipped; a leading byte-order mark is dropped. Sequence lines are joined with their
    whitespace removed.

    Args:
        text: the FASTA content.
        source: a name for error messages (the file path).

    Raises:
        InputError: sequence lines before the first header, an empty header, or an entry with no residues; a path
            given instead of text (a ``Path``, or a one-line string naming a file) is said to be one.
    """
    if isinstance(text, os.PathLike) or (isinstance(text, str) and source == "<text>" and _looks_like_path(text)):
        raise InputError(f"parse_fasta(text={os.fspath(text) if isinstance(text, os.PathLike) else text!r}) was "
                         f"given {_path_kind(text)}: parse_fasta takes FASTA text; to read a file use "
                         "read_fasta(path).")
    lines = text.splitlines() if isinstance(text, str) else text
    records: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []
    header_line = 0

    def close() -> None:
        if header is None:
            return
        sequence = "".join(chunks)
        if not sequence:
            raise InputError(f"{source}:{header_line}: entry {header!r} has no sequence lines; every FASTA "
                             "header must be followed by at least one residue.")
        records.append(FastaRecord(header.split()[0], header, sequence))

    for number, raw in enumerate(lines, start=1):
        line = (raw.lstrip("\ufeff") if number == 1 else raw).strip()  # a byte-order mark (Windows editors)
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            close()
            header, chunks, header_line = line[1:].strip(), [], number
            if not header:
                raise InputError(f"{source}:{number}: empty FASTA header '>'; a header needs an identifier.")
        else:
            if header is None:
                hint = ("parse_fasta takes FASTA text ('>id description' header lines, each followed by its "
                        "residues); to read a file use read_fasta(path)." if source == "<text>" else
                        "is this a FASTA file?")
                raise InputError(f"{source}:{number}: sequence line before the first '>' header; {hint}")
            chunks.append("".join(line.split()))
    close()
    return records


@validates({"path": PATH})
def read_fasta(path: str | os.PathLike[str]) -> list[FastaRecord]:
    """Read every entry of a FASTA file (UTF-8 or ASCII text).

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        IsADirectoryError: the path is a folder (the message lists the FASTA files in it).
        InputError: the file is empty or holds no entry, is compressed under a ``.fasta`` name, an HTML page,
            not UTF-8 text (the line of the first bad byte is named), or its content is not FASTA (see
            :func:`parse_fasta`).

    Example:
        >>> read_fasta("pos-test.c.1.1.fasta")[0].id  # doctest: +SKIP
        'd1tph1_'
    """
    path = Path(path)
    if path.is_dir():
        listed = sorted(p.name for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
        inside = (f"; FASTA files in it: {', '.join(listed[:5])}{', …' if len(listed) > 5 else ''}" if listed else
                  "; it holds no .fa/.fasta file")
        raise IsADirectoryError(f"FASTA file {str(path)!r} is a folder, not a file{inside}. Pass one file's path "
                                "(read_fasta(folder / name)).")
    if not path.is_file():
        raise FileNotFoundError(f"FASTA file {str(path)!r} does not exist.")
    data = path.read_bytes()
    kind = what_it_is(data[:512])
    if kind is not None:
        hint = (f" (decompress it, e.g. gunzip, or name it {path.name}.gz and decompress that)" if kind.startswith(
            "gzip") else "")
        raise InputError(f"FASTA file {str(path)!r} is {kind}{hint}, not FASTA text.")
    text = utf8_text(data, f"FASTA file {str(path)!r}", " (a Latin-1 or Windows-1252 file?); save it as UTF-8 or ASCII.")
    records = parse_fasta(text, source=str(path))
    if not records:
        raise InputError(f"FASTA file {str(path)!r} holds no entry (no '>' header line); a FASTA file lists "
                         "'>id description' lines, each followed by its residues.")
    return records


def format_fasta(records: Iterable[FastaRecord], width: int = 60) -> str:
    """FASTA text of ``records``: the description as header, residues wrapped at ``width`` (0: one line)."""
    out = []
    for record in records:
        out.append(f">{record.description}\n")
        seq = record.sequence
        step = width if width > 0 else max(len(seq), 1)
        out.extend(seq[i:i + step] + "\n" for i in range(0, len(seq), step))
    return "".join(out)


def write_fasta(records: Iterable[FastaRecord], path: str | os.PathLike[str], width: int = 60, *,
                overwrite: bool = False) -> None:
    """Write ``records`` to ``path`` atomically (see :func:`format_fasta`); an existing ``path`` is refused
    (:class:`~rkhsreg.OutputExistsError`) unless ``overwrite``, as every rkhsreg writer."""
    atomic_write(path, format_fasta(records, width), overwrite=overwrite)


_ASTRAL = re.compile(r"^(?P<sid>\S+)\s+(?P<sccs>[a-z]\.\d+\.\d+\.\d+)\s+\((?P<region>[^)]*)\)\s*(?P<rest>.*)$")


def parse_astral_header(description: str) -> AstralHeader:
    """Split an ASTRAL header into its fields (see :class:`AstralHeader`).

    Raises:
        InputError: the header does not have the ASTRAL layout ``sid sccs (region) name {species}``.

    Example:
        >>> h = parse_astral_header("d1dv0a_ a.5.2.1 (A:) DNA repair protein Hhr23a {Human (Homo sapiens)}")
        >>> h.sid, h.superfamily, h.region, h.species
        ('d1dv0a_', 'a.5.2', 'A:', 'Human (Homo sapiens)')
    """
    match = _ASTRAL.match(description.lstrip(">").strip())
    if match is None:
        raise InputError(f"header {description!r} is not an ASTRAL header; expected "
                         "'sid class.fold.superfamily.family (region) name {species}', e.g. "
                         "'d1tph1_ c.1.1.1 (1:) Triosephosphate isomerase {Chicken}'.")
    rest = match["rest"].strip()
    species = ""
    if rest.endswith("}") and "{" in rest:
        brace = rest.index("{")
        rest, species = rest[:brace].strip(), rest[brace + 1:-1].strip()
    return AstralHeader(match["sid"], match["sccs"], match["region"], rest, species)
