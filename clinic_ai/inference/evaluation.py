"""Validation figures and calibration for binary classifiers: pure numpy (used by training and tests)."""

from __future__ import annotations

import numpy as np

from clinic_ai.inference.ensemble import sigmoid


def auroc(y_true, score) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula; ties count a half."""
    y = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(score, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both classes")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_report(y_true, p_positive, *, threshold: float = 0.5, test_normal_fraction: float | None = None) -> dict:
    """AUROC, accuracy, sensitivity, specificity at a threshold.

    ``test_normal_fraction`` adds the accuracy expected on data with that share of negatives (the
    official PneumoniaMNIST test split has 37.5 %), by reweighting sensitivity and specificity.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    pred = p >= threshold
    sens = float((pred & y).sum() / max(y.sum(), 1))
    spec = float((~pred & ~y).sum() / max((~y).sum(), 1))
    out = {
        "n": int(len(y)),
        "auroc": round(auroc(y, p), 4),
        "accuracy": round(float((pred == y).mean()), 4),
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


def expected_calibration_error(y_true, p_positive, *, bins: int = 10) -> float:
    y = np.asarray(y_true).ravel().astype(float)
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(ece)
