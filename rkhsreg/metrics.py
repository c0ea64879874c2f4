"""ROC metrics of remote homology detection: auROC, the paper's "auROC50" and the classic ROC50.

Two different quantities go by "ROC50" in the literature; both are here, with unambiguous names:

* :func:`auroc_at_fpr` (``max_fpr=0.5``): the seed paper's **auROC50**, the area under the ROC
  curve for false-positive *rates* in [0, 0.5], divided by 0.5 so a perfect ranking scores 1 and
  a random one 0.25. No McClish correction. scikit-learn's ``roc_auc_score(y, s, max_fpr=m)``
  returns the McClish-standardised value ``½(1 + (A − m²/2) / (m − m²/2))`` of the same raw area
  ``A`` (random = 0.5); :func:`mcclish` converts ours to it, which the tests check.
* :func:`roc_n` (``n=50``): the classic **ROC50** of Gribskov & Robinson (1996), the area under
  the ROC curve up to the first ``n`` false *positives* (a count, not a rate), normalised by
  ``n``: ``(1/(n·P)) Σ_{i≤n} t_i``, t_i the true positives ranked above the i-th false positive.

Ties are handled as in scikit-learn: tied scores form one point of the curve and the area is
taken by trapezoids (a tied positive/negative pair counts ½). Curves are linearly interpolated at
the cut-off. When there are fewer than ``n`` negatives, the curve is extended at TPR = 1 (every
positive is ranked above a false positive that does not exist).

Example:
    >>> y, s = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]
    >>> auroc(y, s), auroc_at_fpr(y, s, 0.5), roc_n(y, s, 1)
    (0.75, 0.5, 0.5)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from rkhsreg._checks import check_int, check_real
from rkhsreg._errors import InputError

__all__ = ["roc_curve_counts", "auroc", "auroc_at_fpr", "roc_n", "mcclish"]


def _inputs(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true.detach().cpu() if hasattr(y_true, "detach") else y_true)
    s = np.asarray(y_score.detach().cpu() if hasattr(y_score, "detach") else y_score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise InputError(f"y_true has shape {y.shape} and y_score {s.shape}; pass two 1-D arrays of the same length.")
    if y.dtype == bool:
        y = y.astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise InputError(f"y_true holds {sorted(values)}; labels must be 0 (negative) or 1 (positive).")
    if values != {0, 1}:
        raise InputError("y_true has a single class; a ROC curve needs at least one positive and one negative.")
    if not np.isfinite(s).all():
        raise InputError("y_score holds NaN or infinite values; pass finite scores.")
    return y.astype(np.int64), s


def roc_curve_counts(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve as cumulative counts ``(false positives, true positives)``, from (0, 0) to (N, P).

    One point per distinct score, thresholds decreasing (tied scores enter together).

    Example:
        >>> fp, tp = roc_curve_counts([1, 0, 1], [0.5, 0.5, 0.1])
        >>> fp.tolist(), tp.tolist()
        [[0, 1, 1], [0, 1, 2]]
    """
    y, s = _inputs(y_true, y_score)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_group = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last_of_group]
    fp = (last_of_group + 1) - tp
    return np.r_[0, fp], np.r_[0, tp]


def _area_up_to(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """∫_0^limit of the piecewise-linear curve through (x, y) (x non-decreasing), extended flat past its end."""
    stop = np.searchsorted(x, limit, side="right")
    xs, ys = x[:stop], y[:stop]
    if stop < len(x) and xs[-1] < limit:  # interpolate the point at the cut-off
        x0, x1, y0, y1 = x[stop - 1], x[stop], y[stop - 1], y[stop]
        xs = np.r_[xs, limit]
        ys = np.r_[ys, y0 + (y1 - y0) * (limit - x0) / (x1 - x0)]
    area = float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2))
    if xs[-1] < limit:  # past the last point (only at TPR = 1)
        area += (limit - xs[-1]) * ys[-1]
    return area


def auroc(y_true: Any, y_score: Any) -> float:
    """Area under the whole ROC curve (equals ``sklearn.metrics.roc_auc_score``).

    Args:
        y_true: 0/1 labels (1 = positive, e.g. a homologue).
        y_score: scores, higher = more likely positive.

    Raises:
        InputError: shapes differ, labels other than 0/1, a single class, or non-finite scores.
    """
    fp, tp = roc_curve_counts(y_true, y_score)
    return _area_up_to(fp / fp[-1], tp / tp[-1], 1.0)


def auroc_at_fpr(y_true: Any, y_score: Any, max_fpr: float = 0.5) -> float:
    """The paper's auROC50 (``max_fpr=0.5``): ROC area over FPR ∈ [0, max_fpr], divided by ``max_fpr``.

    Perfect ranking 1, random ranking ``max_fpr / 2`` (0.25 at 0.5), no McClish correction.

    Args:
        y_true: 0/1 labels.
        y_score: scores, higher = more likely positive.
        max_fpr: the false-positive-rate cut-off, in (0, 1].

    Example:
        >>> auroc_at_fpr([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], max_fpr=0.5)
        0.5
    """
    max_fpr = check_real("max_fpr", max_fpr, low=0.0, strict=True, high=1.0)
    fp, tp = roc_curve_counts(y_true, y_score)
    return _area_up_to(fp / fp[-1], tp / tp[-1], max_fpr) / max_fpr


def roc_n(y_true: Any, y_score: Any, n: int = 50) -> float:
    """The classic ROC_n (ROC50 for ``n=50``): ROC area up to the first ``n`` false positives, over ``n``.

    Equals ``(1/(n·P)) Σ_{i=1..n} t_i`` without ties (t_i: positives scored above the i-th negative).

    Args:
        y_true: 0/1 labels.
        y_score: scores, higher = more likely positive.
        n: number of false positives (int >= 1).

    Example:
        >>> roc_n([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], n=2)   # t_1 = 1, t_2 = 2 of P = 2
        0.75
    """
    n = check_int("n", int(n) if isinstance(n, numbers.Integral) and not isinstance(n, bool) else n, low=1)
    fp, tp = roc_curve_counts(y_true, y_score)
    return _area_up_to(fp.astype(np.float64), tp / tp[-1], float(n)) / n


def mcclish(partial_auc: float, max_fpr: float) -> float:
    """McClish's standardisation of a normalised partial AUC (ours) to scikit-learn's ``max_fpr`` value.

    With ``A = partial_auc · max_fpr`` the raw area: ``½ (1 + (A − max_fpr²/2) / (max_fpr − max_fpr²/2))``.

    Example:
        >>> mcclish(0.25, 0.5)   # random ranking → 0.5
        0.5
    """
    max_fpr = check_real("max_fpr", max_fpr, low=0.0, strict=True, high=1.0)
    area = partial_auc * max_fpr
    low, high = max_fpr ** 2 / 2, max_fpr
    return 0.5 * (1 + (area - low) / (high - low))
