"""Residue indices, one-hot encoding with padding/truncation and the mask channel."""

from __future__ import annotations

import pytest
import torch

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.data.protein import AMINO_ACIDS, PAD, UNKNOWN, SequenceTask, encode_sequences, one_hot_indices, \
    sequence_indices


def test_indices_pad_truncate_and_ignore_case():
    idx = sequence_indices(["acd", "WYVWY"], length=4)
    assert idx.tolist() == [[0, 1, 2, PAD], [18, 19, 17, 18]]


def test_unknown_letters_zero_policy_and_error_policy():
    assert sequence_indices(["AXB"], length=3).tolist() == [[0, UNKNOWN, UNKNOWN]]
    with pytest.raises(InputError, match="non-standard residue 'X'"):
        sequence_indices(["AXB"], length=3, unknown="error")
    # beyond the cut, an unknown letter is never seen
    assert sequence_indices(["AX"], length=1, unknown="error").tolist() == [[0]]


@pytest.mark.parametrize("seqs, match", [(["AC-D"], "'-', which is not a residue letter"), ([""], "non-empty"),
                                         ("ACD", "single string"), ([None], "non-empty")])
def test_bad_sequences(seqs, match):
    with pytest.raises(InputError, match=match):
        sequence_indices(seqs, length=5)


@pytest.mark.parametrize("kwargs, match", [({"length": 0}, "length=0"), ({"length": 2.5}, "length=2.5"),
                                           ({"unknown": "skip"}, "unknown='skip'")])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        sequence_indices(["AC"], **kwargs)


def test_one_hot_shapes_columns_and_mask():
    x = encode_sequences(["MKX", "W"], length=4)
    assert x.shape == (2, 21, 4) and x.dtype == torch.float32
    hot, mask = x[:, :20], x[:, 20]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    # one 1 per real standard residue, none for unknown residues and padding
    assert hot.sum(1).tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    assert hot[0, AMINO_ACIDS.index("M"), 0] == 1 and hot[1, AMINO_ACIDS.index("W"), 0] == 1
    assert encode_sequences(["MK"], length=3, mask_channel=False).shape == (1, 20, 3)


def test_one_hot_round_trip_to_letters():
    seqs = ["".join(AMINO_ACIDS[(7 * i + j) % 20] for j in range(5 + i)) for i in range(6)]
    x = encode_sequences(seqs, length=8)
    for seq, row in zip(seqs, x):
        letters = "".join(AMINO_ACIDS[int(c)] for c in row[:20].argmax(0)[row[20] > 0])
        assert letters == seq[:8]


def test_one_hot_refuses_bad_indices():
    with pytest.raises(InputError, match="range over"):
        one_hot_indices(torch.tensor([[0, 21]]))
    with pytest.raises(InputError, match="integer tensor"):
        one_hot_indices(torch.zeros(2, 3))


def test_task_checks_lengths_and_labels():
    with pytest.raises(InputError, match="2 train sequences but 1 labels"):
        SequenceTask("t", ["A", "C"], [1], ["A"], [0])
    with pytest.raises(InputError, match=r"labels \[2\] are not allowed"):
        SequenceTask("t", ["A"], [2], ["A"], [0])
