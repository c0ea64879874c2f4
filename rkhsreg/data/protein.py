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

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral

import torch

from rkhsreg._errors import InputError
from rkhsreg._params import Boolean, Interval, Options, validates

__all__ = ["AMINO_ACIDS", "UNKNOWN", "PAD", "UNKNOWN_POLICIES", "SequenceTask", "sequence_indices",
           "one_hot_indices", "encode_sequences"]

#: The 20 standard amino acids, alphabetical by one-letter code; position = channel of the one-hot encoding.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Index of a non-standard residue letter (unknown="zero").
UNKNOWN = 20
#: Index of a padding position.
PAD = -1
#: What to do with a letter outside the 20: "zero" (all-zero column, still a residue of the mask) or "error".
UNKNOWN_POLICIES = ("zero", "error")

_LOOKUP = {letter: i for i, letter in enumerate(AMINO_ACIDS)}


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

    Example:
        >>> sequence_indices(["CA", "Y"], length=3).tolist()
        [[1, 0, -1], [19, -1, -1]]
    """
    if isinstance(sequences, str):     # length and unknown are checked by their declarations
        raise InputError("sequences is a single string; pass a list of sequences, e.g. [seq].")
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
