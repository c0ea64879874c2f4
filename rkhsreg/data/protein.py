"""Protein sequences as tensors: residue indices, one-hot encoding with padding/truncation and a mask.

Conventions (one place for all of them):

* alphabet :data:`AMINO_ACIDS` = the 20 standard residues in alphabetical one-letter order;
* letters are case-insensitive; a sequence longer than ``length`` keeps its first ``length``
  residues (the paper cuts at 400), a shorter one is padded at the end;
* index tensors ``(N, L)`` hold 0–19 for residues, :data:`UNKNOWN` (20) for non-standard letters
  (X, B, Z, U, O, J; policy ``unknown="zero"``) and :data:`PAD` (−1) after the end;
* one-hot tensors ``(N, 20, L)``, plus a 21st mask channel (1 at residues, unknown ones included;
  0 at padding) when ``mask_channel=True``: the input layout of :func:`rkhsreg.protein_models.protein_cnn`.
  Unknown residues and padding are all-zero columns; the mask tells them apart.

Example:
    >>> x = encode_sequences(["ACDX", "W"], length=5)
    >>> x.shape
    torch.Size([2, 21, 5])
    >>> x[0, 20].tolist(), x[0, :20, 3].sum().item()
    ([1.0, 1.0, 1.0, 1.0, 0.0], 0.0)
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral

import torch

from rkhsreg._errors import InputError, SequenceDataWarning
from rkhsreg._params import Boolean, Interval, Options, validates

__all__ = ["AMINO_ACIDS", "NUCLEOTIDES", "UNKNOWN", "PAD", "UNKNOWN_POLICIES", "SequenceTask", "sequence_indices",
           "one_hot_indices", "encode_sequences", "check_alphabet", "drop_conflicting_labels"]

#: The 20 standard amino acids, alphabetical by one-letter code; position = channel of the one-hot encoding.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Index of a non-standard residue letter (unknown="zero").
UNKNOWN = 20
#: Index of a padding position.
PAD = -1
#: What to do with a letter outside the 20: "zero" (all-zero column, still a residue of the mask) or "error".
UNKNOWN_POLICIES = ("zero", "error")

#: The letters of nucleotide sequences (DNA, RNA, N for any base): sequences using only these are not proteins.
NUCLEOTIDES = "ACGNTU"
_MIN_NUCLEOTIDE_RESIDUES = 10  # fewer letters in all (a toy peptide "GAG") are not called nucleotides

_LOOKUP = {letter: i for i, letter in enumerate(AMINO_ACIDS)}


def _user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside rkhsreg (past ``@validates``)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def check_alphabet(sequences: Sequence[str], source: str, *, min_standard_letters: int | None = None) -> None:
    """The one check that ``sequences`` are written in the amino-acid alphabet, for every reader and encoder.

    Sequences that use only :data:`NUCLEOTIDES` (10 letters or more in all) look like nucleotides: A, C, G and T
    are amino-acid letters too, so they would encode without error as a meaningless protein. With
    ``min_standard_letters`` (a whole data set, where every residue type occurs), they are refused, and so is a
    set using fewer of the 20 standard letters (a reduced alphabet whose letters are not residues); without it
    (a few sequences to encode), nucleotides get one :class:`~rkhsreg._errors.SequenceDataWarning`.

    Raises:
        InputError: (``min_standard_letters`` given) nucleotides or a reduced alphabet; ``source`` is named.
    """
    letters = "".join(s.upper() for s in sequences if isinstance(s, str))
    used = set(letters)
    if len(letters) >= _MIN_NUCLEOTIDE_RESIDUES and used <= set(NUCLEOTIDES):
        message = (f"{source}: every sequence uses only the letters {''.join(sorted(used))}: they look like "
                   "nucleotides (DNA/RNA), which would be encoded as a protein of those amino acids; translate "
                   "them to protein sequences first")
        if min_standard_letters is not None:
            raise InputError(message + ".")
        warnings.warn(message + ".", SequenceDataWarning, stacklevel=_user_stacklevel())
        return
    if min_standard_letters is not None and len(used & set(AMINO_ACIDS)) < min_standard_letters:
        raise InputError(f"{source}: its sequences use only {''.join(sorted(used))} "
                         f"({len(used & set(AMINO_ACIDS))} of the 20 amino-acid letters): a reduced alphabet whose "
                         "letters are not residues.")


def drop_conflicting_labels(sequences: Sequence[str], labels: Sequence[int], *, source: str,
                            ids: Sequence[str] | None = None, warn: bool = True) -> list[int]:
    """The one rule for a sequence that carries both labels in one set: every copy of it is dropped.

    Returns the positions kept, in order. With ``warn``, one :class:`~rkhsreg._errors.SequenceDataWarning` counts
    the dropped sequences and names a few (by ``ids`` when given).
    """
    labels_of: dict[str, set[int]] = {}
    for seq, label in zip(sequences, labels):
        labels_of.setdefault(seq.upper(), set()).add(int(label))
    both = {seq for seq, found in labels_of.items() if len(found) > 1}
    kept = [i for i, seq in enumerate(sequences) if seq.upper() not in both]
    if both and warn:
        dropped = [i for i, seq in enumerate(sequences) if seq.upper() in both]
        named = [ids[i] if ids is not None else sequences[i][:20] for i in dropped]
        shown = ", ".join(named[:6]) + (", …" if len(named) > 6 else "")
        many = len(both) != 1
        warnings.warn(f"{source}: {len(both)} sequence{'s' if many else ''} appear{'' if many else 's'} "
                      f"with both labels (positive and negative: {shown}); all {len(dropped)} copies are dropped, as "
                      "build_standin_tasks does.", SequenceDataWarning, stacklevel=_user_stacklevel())
    return kept


@dataclass
class SequenceTask:
    """One binary sequence-classification task: training and test sequences with 0/1 labels.

    Attributes:
        name: task name (e.g. the SCOP superfamily ``c.1.1``).
        train_sequences, train_labels: the training set (label 1 = positive).
        test_sequences, test_labels: the held-out test set.
        group: where the task comes from (a data set name, a SCOP class), for reports.
        meta: anything else worth keeping (sizes, seeds, identifiers).
    """

    name: str
    train_sequences: list[str]
    train_labels: list[int]
    test_sequences: list[str]
    test_labels: list[int]
    group: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            seqs, labels = getattr(self, f"{split}_sequences"), getattr(self, f"{split}_labels")
            if len(seqs) != len(labels):
                raise InputError(f"task {self.name!r}: {len(seqs)} {split} sequences but {len(labels)} labels.")
            bad = sorted({int(v) for v in labels} - {0, 1})
            if bad:
                raise InputError(f"task {self.name!r}: {split} labels {bad} are not allowed; use 0/1.")


#: The declared options of the sequence encoders (rkhsreg._params).
ENCODING_PARAMETERS = {
    "length": Interval(Integral, 1, None, doc="positions kept"),
    "unknown": Options(UNKNOWN_POLICIES),
    "mask_channel": Boolean(),
}


@validates({name: ENCODING_PARAMETERS[name] for name in ("length", "unknown")})
def sequence_indices(sequences: Sequence[str], length: int = 400, unknown: str = "zero") -> torch.Tensor:
    """Residue indices ``(N, length)``: 0–19, :data:`UNKNOWN` or :data:`PAD` (see the module docstring).

    Args:
        sequences: amino-acid strings (one letter per residue; case ignored).
        length: positions kept; longer sequences are cut (first ``length`` residues kept).
        unknown: policy for letters outside :data:`AMINO_ACIDS`: ``"zero"`` or ``"error"``.

    Raises:
        ParameterError: bad ``length`` or ``unknown`` (a :class:`~rkhsreg.ConfigurationError`).
        InputError: an empty sequence, a character that is not a letter, or (``unknown="error"``) a
            non-standard letter; the message names the sequence and the character.

    Warns:
        SequenceDataWarning: every sequence uses only A, C, G, T, U, N (nucleotides? see :func:`check_alphabet`).

    Example:
        >>> sequence_indices(["CA", "Y"], length=3).tolist()
        [[1, 0, -1], [19, -1, -1]]
    """
    if isinstance(sequences, str):     # length and unknown are checked by their declarations
        raise InputError("sequences is a single string; pass a list of sequences, e.g. [seq].")
    check_alphabet(sequences, "sequences")
    out = torch.full((len(sequences), length), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if not isinstance(seq, str) or not seq:
            raise InputError(f"sequence {row} is {seq!r}; every sequence must be a non-empty string of residues.")
        codes = []
        for letter in seq[:length].upper():
            index = _LOOKUP.get(letter)
            if index is None:
                if not ("A" <= letter <= "Z"):
                    raise InputError(f"sequence {row} contains {letter!r}, which is not a residue letter; "
                                     "remove gaps, stops and other symbols before encoding.")
                if unknown == "error":
                    raise InputError(f"sequence {row} contains the non-standard residue {letter!r}; allowed: "
                                     f"{AMINO_ACIDS}. Pass unknown='zero' to encode it as an all-zero column.")
                index = UNKNOWN
            codes.append(index)
        out[row, :len(codes)] = torch.tensor(codes, dtype=torch.long)
    return out


def one_hot_indices(indices: torch.Tensor, mask_channel: bool = True,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot ``(N, 20, L)`` (``(N, 21, L)`` with the mask channel) of an index tensor ``(N, L)``.

    Example:
        >>> one_hot_indices(torch.tensor([[0, -1]]))[0, [0, 20]].tolist()
        [[1.0, 0.0], [1.0, 0.0]]
    """
    if not isinstance(indices, torch.Tensor) or indices.dim() != 2 or indices.is_floating_point():
        shape = tuple(indices.shape) if isinstance(indices, torch.Tensor) else type(indices).__name__
        raise InputError(f"indices has shape/type {shape}; pass an integer tensor (N, L) from sequence_indices.")
    if indices.numel() and (int(indices.min()) < PAD or int(indices.max()) > UNKNOWN):
        raise InputError(f"indices range over [{int(indices.min())}, {int(indices.max())}]; allowed: "
                         f"{PAD} (padding) to {UNKNOWN} (unknown residue).")
    n, length = indices.shape
    residues = len(AMINO_ACIDS)
    # Send padding and unknown residues to an extra row that is dropped afterwards.
    target = torch.where((indices >= 0) & (indices < residues), indices, torch.full_like(indices, residues))
    hot = torch.zeros(n, residues + 1, length, dtype=dtype)
    hot.scatter_(1, target[:, None, :], 1.0)
    hot = hot[:, :residues]
    if not mask_channel:
        return hot
    mask = (indices != PAD).to(dtype)[:, None, :]
    return torch.cat([hot, mask], dim=1)


@validates(ENCODING_PARAMETERS)
def encode_sequences(sequences: Sequence[str], length: int = 400, unknown: str = "zero",
                     mask_channel: bool = True) -> torch.Tensor:
    """``one_hot_indices(sequence_indices(sequences, length, unknown), mask_channel)``.

    Raises:
        ParameterError: bad ``length`` or ``unknown`` (a :class:`~rkhsreg.ConfigurationError`).
        InputError: see :func:`sequence_indices`.
    """
    return one_hot_indices(sequence_indices(sequences, length, unknown), mask_channel)
