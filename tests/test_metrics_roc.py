"""auROC, the paper's auROC50 (FPR ≤ 0.5, normalised) and the classic ROC50 (first 50 false positives)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.metrics import auroc, auroc_at_fpr, mcclish, roc_curve_counts, roc_n

# Ranking + - + - - + - - (8 items, P = 3, N = 5); positives above each negative: t = 1, 2, 2, 3, 3.
Y = [1, 0, 1, 0, 0, 1, 0, 0]
S = [8, 7, 6, 5, 4, 3, 2, 1]


def test_hand_computed_values():
    assert auroc(Y, S) == pytest.approx((1 + 2 + 2 + 3 + 3) / 15)            # Σ t_i / (N·P)
    assert roc_n(Y, S, 1) == pytest.approx(1 / 3)
    assert roc_n(Y, S, 3) == pytest.approx((1 + 2 + 2) / 9)                  # Gribskov: Σ_{i≤n} t_i / (n·P)
    # auROC50: FPR steps of 1/5; TPR = 1/3 on [0, .2], 2/3 on [.2, .4] and [.4, .5] -> area .2/3 + .3·2/3
    assert auroc_at_fpr(Y, S, 0.5) == pytest.approx((0.2 / 3 + 0.3 * 2 / 3) / 0.5)
    assert auroc_at_fpr(Y, S, 1.0) == pytest.approx(auroc(Y, S))


def test_perfect_reversed_and_random_levels():
    y = [1] * 4 + [0] * 60
    assert auroc_at_fpr(y, -np.arange(64), 0.5) == pytest.approx(1.0) and roc_n(y, -np.arange(64), 50) == 1.0
    assert auroc_at_fpr(y, np.arange(64), 0.5) == 0.0 and roc_n(y, np.arange(64), 50) == 0.0
    # all scores tied: the diagonal; auROC50 of a random ranking is 0.25, McClish maps it to 0.5
    tied = np.zeros(64)
    assert auroc(y, tied) == 0.5 and auroc_at_fpr(y, tied, 0.5) == pytest.approx(0.25)
    assert roc_n(y, tied, 30) == pytest.approx(15 / 60)          # TPR = fp/60, area up to 30 FPs is 30²/2/60
    assert mcclish(auroc_at_fpr(y, tied, 0.5), 0.5) == pytest.approx(0.5)


def test_ties_count_half():
    # one positive tied with one negative, above everything else
    y, s = [1, 0, 0], [1.0, 1.0, 0.0]
    assert auroc(y, s) == pytest.approx(0.75)
    assert roc_n(y, s, 1) == pytest.approx(0.5)   # TPR rises 0 -> 1 across the first false positive
    fp, tp = roc_curve_counts(y, s)
    assert fp.tolist() == [0, 1, 2] and tp.tolist() == [0, 1, 1]


@pytest.mark.parametrize("seed", range(2))
def test_against_sklearn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    for trial in range(12):
        n = int(rng.integers(5, 120))
        y = rng.integers(0, 2, n)
        y[:2] = [1, 0]
        s = rng.integers(0, 5, n).astype(float) if trial % 2 else rng.normal(size=n)
        assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        for m in (0.05, 0.3, 0.5, 1.0):
            # sklearn's max_fpr applies McClish's correction to the same raw partial area
            assert mcclish(auroc_at_fpr(y, s, m), m) == pytest.approx(roc_auc_score(y, s, max_fpr=m), abs=1e-12)


def test_roc_n_equals_gribskov_sum_and_auroc_at_rate():
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(20, int), np.zeros(200, int)]
    s = rng.normal(size=220) + y
    order = np.argsort(-s)
    t = np.cumsum(y[order])[y[order] == 0]        # positives above each negative, in rank order
    assert roc_n(y, s, 50) == pytest.approx(t[:50].sum() / (50 * 20), abs=1e-12)
    assert roc_n(y, s, 50) == pytest.approx(auroc_at_fpr(y, s, 50 / 200), abs=1e-12)
    assert roc_n(y, s, 200) == pytest.approx(auroc(y, s), abs=1e-12)


def test_roc_n_beyond_the_negatives_extends_at_tpr_one():
    # N = 5 < n = 10: the area up to 5 FPs plus 5 more at TPR 1
    assert roc_n(Y, S, 10) == pytest.approx((11 / 3 + 5) / 10)


def test_accepts_tensors_and_bools():
    assert auroc(torch.tensor(Y).bool(), torch.tensor(S, dtype=torch.float32)) == pytest.approx(auroc(Y, S))


@pytest.mark.parametrize("y, s, match", [([1, 1], [0.1, 0.2], "single class"), ([1, 2], [0.1, 0.2], r"\[1, 2\]"),
                                         ([1, 0], [0.1], "same length"), ([1, 0], [0.1, np.nan], "NaN")])
def test_bad_inputs(y, s, match):
    with pytest.raises(InputError, match=match):
        auroc(y, s)


def test_bad_parameters():
    with pytest.raises(ConfigurationError, match="max_fpr=0"):
        auroc_at_fpr(Y, S, 0)
    with pytest.raises(ConfigurationError, match="max_fpr=1.5"):
        auroc_at_fpr(Y, S, 1.5)
    with pytest.raises(ConfigurationError, match="n=0"):
        roc_n(Y, S, 0)
    assert roc_n(Y, S, np.int64(3)) == roc_n(Y, S, 3)
