"""Validation figures and calibration for binary classifiers: pure numpy (used by training, by the
performance dashboards through `clinic_ai.performance.metrics`, and by tests)."""

from __future__ import annotations

import numpy as np

from clinic_ai.inference.ensemble import sigmoid


def auroc_from_level_counts(positives, negatives):
    """AUROC from the counts of positives and negatives at each distinct score, in ascending order of
    score (last axis; leading axes are independent samples, as in a bootstrap). Each positive wins
    over every negative with a lower score and half-wins over a tie: the Mann-Whitney rank-sum
    statistic without sorting again. NaN where a sample lacks one of the classes."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    negatives_below = np.cumsum(neg, axis=-1) - neg
    wins = (pos * negatives_below).sum(axis=-1) + 0.5 * (pos * neg).sum(axis=-1)
    pairs = pos.sum(axis=-1) * neg.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def score_levels(score) -> tuple[np.ndarray, np.ndarray]:
    """(distinct scores ascending, the index of each score among them)."""
    levels, index = np.unique(np.asarray(score, dtype=np.float64).ravel(), return_inverse=True)
    return levels, index.ravel()


def auroc(y_true, score) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula; ties count a half."""
    y = np.asarray(y_true).ravel().astype(bool)
    levels, index = score_levels(score)
    if len(index) != len(y):
        raise ValueError("one score per case")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both classes")
    pos = np.bincount(index[y], minlength=len(levels))
    neg = np.bincount(index[~y], minlength=len(levels))
    return float(auroc_from_level_counts(pos, neg))


def confusion_counts(y_true, p_positive, *, threshold: float) -> dict[str, int]:
    """True/false positives and negatives when a probability at or above `threshold` is called positive."""
    y = np.asarray(y_true).ravel().astype(bool)
    pred = np.asarray(p_positive, dtype=np.float64).ravel() >= threshold
    return {
        "tp": int((pred & y).sum()),
        "fp": int((pred & ~y).sum()),
        "tn": int((~pred & ~y).sum()),
        "fn": int((~pred & y).sum()),
    }


def binary_report(y_true, p_positive, *, threshold: float = 0.5, test_normal_fraction: float | None = None) -> dict:
    """AUROC, accuracy, sensitivity, specificity at a threshold.

    ``test_normal_fraction`` adds the accuracy expected on data with that share of negatives (the
    official PneumoniaMNIST test split has 37.5 %), by reweighting sensitivity and specificity.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    c = confusion_counts(y, p, threshold=threshold)
    sens = float(c["tp"] / max(c["tp"] + c["fn"], 1))
    spec = float(c["tn"] / max(c["tn"] + c["fp"], 1))
    out = {
        "n": int(len(y)),
        "auroc": round(auroc(y, p), 4),
        "accuracy": round((c["tp"] + c["tn"]) / len(y), 4),
        "sensitivity": round(sens, 4),
        "specificity": round(spec, 4),
        "balanced_accuracy": round((sens + spec) / 2, 4),
    }
    if test_normal_fraction is not None:
        f = test_normal_fraction
        out["accuracy_at_test_prevalence"] = round(f * spec + (1 - f) * sens, 4)
    return out


def weighted_nll(logits, y_true, *, temperature: float = 1.0, class_weights=(1.0, 1.0)) -> float:
    z = np.asarray(logits, dtype=np.float64).ravel() / temperature
    y = np.asarray(y_true).ravel().astype(bool)
    p = np.clip(sigmoid(z), 1e-12, 1 - 1e-12)
    w = np.where(y, class_weights[1], class_weights[0])
    return float(-(w * np.where(y, np.log(p), np.log1p(-p))).sum() / w.sum())


def fit_temperature(logits, y_true, *, class_weights=(1.0, 1.0)) -> float:
    """The temperature minimising the (class-weighted) negative log-likelihood; log-spaced search.

    Class weights keep the balanced prior the members were trained for, so calibration does not
    quietly move the decision towards the validation split's prevalence. A temperature only scales
    the logit: the 0.5 decision and AUROC are unchanged.
    """
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))
    losses = [weighted_nll(logits, y_true, temperature=t, class_weights=class_weights) for t in grid]
    return float(grid[int(np.argmin(losses))])


def calibration_bins(y_true, p_positive, *, bins: int = 10) -> list[dict]:
    """The reliability curve: `bins` equal-width bins of predicted probability, [lower, upper) but
    the last includes 1.0; per bin the count, the mean predicted probability and the observed
    fraction of positives (None for an empty bin)."""
    y = np.asarray(y_true).ravel().astype(float)
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        out.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": n,
                "mean_predicted": float(p[sel].mean()) if n else None,
                "observed": float(y[sel].mean()) if n else None,
            }
        )
    return out


def expected_calibration_error(y_true, p_positive, *, bins: int = 10) -> float:
    """The count-weighted mean gap between predicted and observed over the calibration bins."""
    rows = calibration_bins(y_true, p_positive, bins=bins)
    total = sum(r["count"] for r in rows)
    if not total:
        return 0.0
    return float(sum(r["count"] / total * abs(r["mean_predicted"] - r["observed"]) for r in rows if r["count"]))
