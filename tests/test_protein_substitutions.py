"""BLOSUM62 substitution augmentation: the matrix, the derived probabilities and the sampling statistics."""

from __future__ import annotations

import math

import pytest
import torch

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.data.protein import AMINO_ACIDS, PAD, UNKNOWN
from rkhsreg.data.substitutions import (BLOSUM62, BLOSUM62_ORDER, BlosumSubstitution, apply_substitutions,
                                        blosum62_background, blosum62_matrix, substitution_probabilities)

# Background frequencies published with BLOSUM62 (Henikoff & Henikoff 1992), in BLOSUM62_ORDER.
PUBLISHED = dict(zip(BLOSUM62_ORDER, (0.074, 0.052, 0.045, 0.053, 0.025, 0.034, 0.054, 0.074, 0.026, 0.068, 0.099,
                                      0.058, 0.025, 0.047, 0.039, 0.057, 0.051, 0.013, 0.032, 0.073)))


def test_matrix_is_the_published_one():
    table = torch.tensor(BLOSUM62)
    assert torch.equal(table, table.T)
    diagonal = dict(zip(BLOSUM62_ORDER, table.diagonal().tolist()))
    assert diagonal == dict(A=4, R=5, N=6, D=6, C=9, Q=5, E=5, G=6, H=8, I=4, L=4, K=5, M=5, F=6, P=7, S=4, T=5,
                            W=11, Y=7, V=4)
    # checksums of the published 20x20 block (Biopython's BLOSUM62 file gives the same numbers)
    ij = torch.arange(20)[:, None] * torch.arange(20)[None]
    assert (int(table.sum()), int((table * table).sum()), int((table * ij).sum())) == (-426, 2368, -30982)
    # reordered to the one-hot channels
    m = blosum62_matrix()
    assert m[AMINO_ACIDS.index("W"), AMINO_ACIDS.index("Y")] == 2 and m[AMINO_ACIDS.index("I"), AMINO_ACIDS.index("V")] == 3


def test_background_recovered_from_the_matrix():
    p = blosum62_background()
    assert float(p.sum()) == pytest.approx(1.0) and bool((p > 0).all())
    for letter, value in PUBLISHED.items():
        assert float(p[AMINO_ACIDS.index(letter)]) == pytest.approx(value, abs=0.02), letter
    # the defining property: Σ_b p_b 2^{s_ab/2} is the same for every a
    row_sums = torch.pow(2.0, blosum62_matrix() / 2) @ p
    assert torch.allclose(row_sums, row_sums[0].expand(20))


def test_conditional_probabilities():
    table = substitution_probabilities()
    assert torch.allclose(table.sum(1), torch.ones(20, dtype=table.dtype))
    assert bool((table.diagonal() == 0).all()) and bool((table >= 0).all())
    best = {a: AMINO_ACIDS[int(table[AMINO_ACIDS.index(a)].argmax())] for a in "ILWD"}
    assert best == {"I": "L", "L": "I", "W": "F", "D": "E"}
    # P(b | a) ∝ p_b 2^{s_ab/2}: F→Y (score 3, rare Y) against F→L (score 0, common L)
    p = blosum62_background()
    f, y, l_ = (AMINO_ACIDS.index(c) for c in "FYL")
    assert float(table[f, y] / table[f, l_]) == pytest.approx(float(p[y] * 2 ** 1.5 / p[l_]))
    i, v, w = (AMINO_ACIDS.index(c) for c in "IVW")
    assert table[i, v] > 10 * table[i, w]                        # I→V (score 3) far above I→W (−3)


def test_substitution_rate_and_conditional_frequencies():
    aug = BlosumSubstitution(p=0.2, seed=0)
    idx = torch.full((200, 100), AMINO_ACIDS.index("I"), dtype=torch.long)
    out = aug(idx)
    changed = (out != idx).float().mean().item()
    n = idx.numel()
    assert abs(changed - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)     # within 4 binomial standard deviations
    drawn = torch.bincount(out[out != idx], minlength=20).double()
    expected = substitution_probabilities()[AMINO_ACIDS.index("I")] * drawn.sum()
    assert drawn[AMINO_ACIDS.index("I")] == 0
    big = expected > 50
    assert torch.all((drawn[big] - expected[big]).abs() < 5 * expected[big].sqrt())


def test_padding_and_unknown_positions_are_untouched():
    idx = torch.tensor([[0, UNKNOWN, PAD, PAD], [5, 6, UNKNOWN, PAD]])
    out = BlosumSubstitution(p=1.0, seed=0)(idx)
    keep = (idx == PAD) | (idx == UNKNOWN)
    assert torch.equal(out[keep], idx[keep]) and bool((out[~keep] != idx[~keep]).all())
    assert torch.equal(idx, torch.tensor([[0, UNKNOWN, PAD, PAD], [5, 6, UNKNOWN, PAD]]))   # input not modified


def test_p_zero_is_the_identity():
    idx = torch.randint(0, 20, (4, 30))
    assert torch.equal(BlosumSubstitution(p=0.0)(idx), idx)


def test_determinism_replay_and_resume():
    idx = torch.randint(0, 20, (8, 50), generator=torch.Generator().manual_seed(1))
    a, b = BlosumSubstitution(p=0.3, seed=5), BlosumSubstitution(p=0.3, seed=5)
    assert torch.equal(a(idx), b(idx))
    assert not torch.equal(BlosumSubstitution(p=0.3, seed=6)(idx), BlosumSubstitution(p=0.3, seed=5)(idx))
    state = a.state_dict()
    where, replacement = a.sample(idx)
    a.load_state_dict(state)
    assert torch.equal(a(idx), apply_substitutions(idx, where, replacement))


@pytest.mark.parametrize("kwargs, match", [({"p": 1.5}, "p=1.5"), ({"p": -0.1}, "p=-0.1"), ({"seed": -1}, "seed=-1")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        BlosumSubstitution(**kwargs)


def test_float_input_refused():
    with pytest.raises(InputError, match="integer tensor"):
        BlosumSubstitution()(torch.zeros(2, 3))
