"""Figures of a model against a reference standard: pure numpy and the standard library, no Django.

Inputs are plain arrays: ``y`` (the reference standard calls the case positive) and ``score`` (the
model's probability of the positive class). The rules shared with training (AUROC by ranks, the
calibration bins and ECE, the confusion counts at a threshold) have their one home in
`clinic_ai.inference.evaluation`; this module builds the dashboard's figures on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta

import numpy as np

from clinic_ai.inference.evaluation import (
    auroc,
    auroc_from_level_counts,
    calibration_bins,
    confusion_counts,
    expected_calibration_error,
    score_levels,
)

__all__ = [
    "agreement_over_time",
    "auroc",
    "auroc_bootstrap_ci",
    "binary_figures",
    "calibration_bins",
    "confusion_counts",
    "expected_calibration_error",
    "label_distribution",
    "rates",
    "roc_points",
]

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20260101
CALIBRATION_BINS = 10
_CHUNK = 250  # resamples drawn at once: memory stays at chunk × cases integers


def _arrays(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError("one score per case")
    return y, s


def roc_points(y_true, score) -> list[dict]:
    """The ROC curve's corners, from (0, 0) to (1, 1): one point per distinct score, called positive
    at or above it (ties move both rates at once, the diagonal step that makes ties count a half).
    Empty when a class is missing."""
    y, s = _arrays(y_true, score)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return []
    levels, index = score_levels(s)
    tp = np.cumsum(np.bincount(index[y], minlength=len(levels))[::-1])
    fp = np.cumsum(np.bincount(index[~y], minlength=len(levels))[::-1])
    points = [{"threshold": None, "fpr": 0.0, "tpr": 0.0}]
    for threshold, t, f in zip(levels[::-1], tp, fp, strict=True):
        points.append({"threshold": float(threshold), "fpr": f / n_neg, "tpr": t / n_pos})
    return points


def auroc_bootstrap_ci(
    y_true, score, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = 0.95
) -> dict | None:
    """Percentile bootstrap interval of the AUROC: cases drawn with replacement, `resamples` times,
    from a seeded generator (the same data give the same interval). Vectorised: each resample is
    counted per distinct score with one bincount, no sort per resample. Resamples that miss a class
    are dropped and counted. None when the AUROC itself is undefined."""
    y, s = _arrays(y_true, score)
    n = len(y)
    if n < 2 or y.all() or not y.any():
        return None
    levels, index = score_levels(s)
    k = len(levels)
    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        draw = rng.integers(0, n, size=(b, n))
        positive = y[draw]
        cell = index[draw] + k * np.arange(b)[:, None]
        pos = np.bincount(cell[positive], minlength=b * k).reshape(b, k)
        neg = np.bincount(cell[~positive], minlength=b * k).reshape(b, k)
        estimates.append(auroc_from_level_counts(pos, neg))
    values = np.concatenate(estimates)
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return {
        "low": float(low),
        "high": float(high),
        "level": level,
        "resamples": resamples,
        "dropped": resamples - len(values),
        "seed": seed,
    }


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def rates(counts: dict[str, int]) -> dict[str, float | None]:
    """Sensitivity, specificity, PPV, NPV and accuracy from confusion counts; None when undefined."""
    tp, fp, tn, fn = counts["tp"], counts["fp"], counts["tn"], counts["fn"]
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
    }


def binary_figures(
    y_true,
    score,
    *,
    threshold: float,
    bins: int = CALIBRATION_BINS,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    called=None,
) -> dict:
    """Everything the dashboard shows for one positive class, from one call. ``called``: whether each
    case was called positive, when the model's call is not ``score >= threshold`` (a multi-class
    argmax); the confusion matrix and its rates count those calls."""
    y, s = _arrays(y_true, score)
    both = bool(y.any() and (~y).any())
    if called is None:
        counts = confusion_counts(y, s, threshold=threshold)
    else:
        counts = confusion_counts(y, np.asarray(called, dtype=bool).astype(np.float64), threshold=0.5)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "negatives": int((~y).sum()),
        "threshold": float(threshold),
        "auroc": auroc(y, s) if both else None,
        "auroc_ci": auroc_bootstrap_ci(y, s, resamples=resamples, seed=seed) if both else None,
        "roc": roc_points(y, s),
        "confusion": counts,
        "rates": rates(counts),
        "calibration": calibration_bins(y, s, bins=bins) if len(y) else [],
        "ece": expected_calibration_error(y, s, bins=bins) if len(y) else None,
    }


def label_distribution(values: Iterable[Iterable[str]]) -> dict[str, int]:
    """How many cases carry each value (a multi-label case counts once per value), by name."""
    counts: Counter = Counter()
    for case in values:
        counts.update(set(case))
    return dict(sorted(counts.items()))


def period_start(day: date, period: str) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    raise ValueError(f"unknown period {period!r}")


def agreement_over_time(events: Iterable[tuple[date, bool]], *, period: str | None = None) -> tuple[str, list[dict]]:
    """(period, rows): per day or ISO week, how many decisions agreed with the model's call out of
    how many. With no period given: days when the decisions span at most 31 days, else weeks."""
    events = list(events)
    if not events:
        return period or "day", []
    if period is None:
        days = [d for d, _ in events]
        period = "day" if (max(days) - min(days)).days <= 31 else "week"
    totals: dict[date, list[int]] = {}
    for day, agreed in events:
        bucket = totals.setdefault(period_start(day, period), [0, 0])
        bucket[0] += bool(agreed)
        bucket[1] += 1
    return period, [
        {"start": start, "agreed": agreed, "total": total, "fraction": agreed / total}
        for start, (agreed, total) in sorted(totals.items())
    ]
