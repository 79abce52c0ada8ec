"""The dashboard's figures against values worked out by hand, and AUROC against a pair count."""

import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from clinic_ai.performance import metrics
from tests.conftest import REPO

# Eight cases. Positives score 0.85, 0.45, 0.95, 0.25; negatives 0.1, 0.3, 0.65, 0.45 (one tie at 0.45).
Y = [0, 0, 0, 0, 1, 1, 1, 1]
S = [0.1, 0.3, 0.65, 0.45, 0.85, 0.45, 0.95, 0.25]


def test_auroc_of_the_hand_example():
    # Positive by positive, negatives beaten (a tie counts a half):
    #   0.85 beats all 4; 0.45 beats 0.1 and 0.3 and ties 0.45: 2.5; 0.95 beats all 4; 0.25 beats 0.1: 1.
    #   (4 + 2.5 + 4 + 1) / (4 × 4) = 11.5 / 16
    assert metrics.auroc(Y, S) == 11.5 / 16 == 0.71875


def test_confusion_matrix_and_rates_at_the_threshold_by_hand():
    # At p ≥ 0.5: positives 0.85, 0.95 called (TP 2), 0.45, 0.25 missed (FN 2);
    # negative 0.65 called (FP 1), 0.1, 0.3, 0.45 not (TN 3).
    counts = metrics.confusion_counts(Y, S, threshold=0.5)
    assert counts == {"tp": 2, "fp": 1, "tn": 3, "fn": 2}
    rates = metrics.rates(counts)
    assert rates["sensitivity"] == 2 / 4
    assert rates["specificity"] == 3 / 4
    assert rates["ppv"] == 2 / 3
    assert rates["npv"] == 3 / 5
    assert rates["accuracy"] == 5 / 8
    # A threshold that calls nothing positive leaves the PPV undefined, not 0.
    none = metrics.rates(metrics.confusion_counts(Y, S, threshold=0.99))
    assert none["ppv"] is None and none["sensitivity"] == 0.0 and none["specificity"] == 1.0


def test_calibration_bins_and_ece_by_hand():
    bins = metrics.calibration_bins(Y, S, bins=5)
    # [0, .2): 0.1 (neg) | [.2, .4): 0.3 (neg), 0.25 (pos) | [.4, .6): 0.45 (neg), 0.45 (pos)
    # [.6, .8): 0.65 (neg) | [.8, 1]: 0.85, 0.95 (pos)
    assert [b["count"] for b in bins] == [1, 2, 2, 1, 2]
    assert [b["observed"] for b in bins] == [0.0, 0.5, 0.5, 0.0, 1.0]
    assert np.allclose([b["mean_predicted"] for b in bins], [0.1, 0.275, 0.45, 0.65, 0.9])
    assert [(b["lower"], b["upper"]) for b in bins][0] == (0.0, 0.2)
    # ECE = 1/8·0.1 + 2/8·0.225 + 2/8·0.05 + 1/8·0.65 + 2/8·0.1 = 0.1875
    assert metrics.expected_calibration_error(Y, S, bins=5) == pytest.approx(0.1875)
    empty = metrics.calibration_bins([1], [0.05], bins=5)
    assert empty[1] == {"lower": 0.2, "upper": 0.4, "count": 0, "mean_predicted": None, "observed": None}


def test_roc_points_by_hand_and_their_area_is_the_auroc():
    points = metrics.roc_points(Y, S)
    # Thresholds from the top: .95 (pos) .85 (pos) .65 (neg) .45 (pos and neg) .3 (neg) .25 (pos) .1 (neg)
    assert [(p["fpr"], p["tpr"]) for p in points] == [
        (0.0, 0.0),
        (0.0, 0.25),
        (0.0, 0.5),
        (0.25, 0.5),
        (0.5, 0.75),
        (0.75, 0.75),
        (0.75, 1.0),
        (1.0, 1.0),
    ]
    assert points[0]["threshold"] is None and points[1]["threshold"] == 0.95
    fpr = np.array([p["fpr"] for p in points])
    tpr = np.array([p["tpr"] for p in points])
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(metrics.auroc(Y, S))
    assert metrics.roc_points([1, 1], [0.2, 0.3]) == []


def _pair_count_auroc(y, s):
    """Every (positive, negative) pair: 1 when the positive scores higher, 1/2 for a tie."""
    pos = [b for a, b in zip(y, s, strict=True) if a]
    neg = [b for a, b in zip(y, s, strict=True) if not a]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(6))
def test_auroc_equals_a_brute_force_pair_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    y = rng.random(n) < 0.4
    y[0], y[1] = True, False
    s = np.round(rng.random(n) * (3 + seed), 1) / (3 + seed)  # rounded: many ties
    assert metrics.auroc(y, s) == pytest.approx(_pair_count_auroc(y.tolist(), s.tolist()), abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError):
        metrics.auroc([1, 1, 1], [0.1, 0.2, 0.3])


def _separable_with_noise(n=80, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    s = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0, 1)
    return y, s


def test_bootstrap_interval_contains_the_estimate_and_is_the_same_for_the_same_seed():
    y, s = _separable_with_noise()
    estimate = metrics.auroc(y, s)
    first = metrics.auroc_bootstrap_ci(y, s, seed=7)
    again = metrics.auroc_bootstrap_ci(y, s, seed=7)
    other = metrics.auroc_bootstrap_ci(y, s, seed=8)
    assert first == again
    assert first["low"] < estimate < first["high"]
    assert 0.0 <= first["low"] and first["high"] <= 1.0
    assert first["resamples"] == 1000 and first["dropped"] == 0
    assert (other["low"], other["high"]) != (first["low"], first["high"])


def test_bootstrap_equals_a_plain_loop_over_the_same_resamples():
    """The vectorised count per score level gives each resample's AUROC exactly."""
    y, s = np.array(Y, dtype=bool), np.array(S)
    resamples = 300  # more than one chunk of draws
    ci = metrics.auroc_bootstrap_ci(y, s, resamples=resamples, seed=11)
    rng = np.random.default_rng(11)
    values = []
    for start in range(0, resamples, metrics._CHUNK):
        for draw in rng.integers(0, len(y), size=(min(metrics._CHUNK, resamples - start), len(y))):
            if y[draw].all() or not y[draw].any():
                continue
            values.append(_pair_count_auroc(y[draw].tolist(), s[draw].tolist()))
    low, high = np.quantile(values, [0.025, 0.975])
    assert ci["dropped"] == resamples - len(values)
    assert ci["low"] == pytest.approx(low) and ci["high"] == pytest.approx(high)


def test_bootstrap_is_undefined_with_one_class():
    assert metrics.auroc_bootstrap_ci([0, 0, 0], [0.1, 0.5, 0.9]) is None


def test_binary_figures_put_it_together():
    f = metrics.binary_figures(Y, S, threshold=0.5, bins=5, resamples=200)
    assert (f["n"], f["positives"], f["negatives"]) == (8, 4, 4)
    assert f["auroc"] == 0.71875 and f["confusion"]["fp"] == 1 and f["ece"] == pytest.approx(0.1875)
    empty = metrics.binary_figures([], [], threshold=0.5)
    assert empty["auroc"] is None and empty["roc"] == [] and empty["calibration"] == []


def test_label_distribution_counts_each_value_once_per_case():
    assert metrics.label_distribution([["normal"], ["pneumonia"], ["normal"], ["a", "b", "a"]]) == {
        "a": 1,
        "b": 1,
        "normal": 2,
        "pneumonia": 1,
    }


def test_agreement_over_time_per_day_and_per_week():
    events = [(date(2026, 3, 2), True), (date(2026, 3, 2), False), (date(2026, 3, 4), True)]
    period, rows = metrics.agreement_over_time(events)
    assert period == "day"
    assert [(r["start"], r["agreed"], r["total"], r["fraction"]) for r in rows] == [
        (date(2026, 3, 2), 1, 2, 0.5),
        (date(2026, 3, 4), 1, 1, 1.0),
    ]
    # Over more than a month: ISO weeks (2 March 2026 is a Monday; 8 March the Sunday of that week).
    events += [(date(2026, 3, 8), True), (date(2026, 4, 20), False)]
    period, rows = metrics.agreement_over_time(events)
    assert period == "week"
    weeks = [(r["start"], r["agreed"], r["total"]) for r in rows]
    assert weeks == [(date(2026, 3, 2), 3, 4), (date(2026, 4, 20), 0, 1)]
    assert metrics.agreement_over_time([]) == ("day", [])


def test_the_metrics_and_plots_load_no_django():
    code = (
        "import sys\n"
        "import clinic_ai.performance.metrics, clinic_ai.performance.plots\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'tensorflow', 'keras'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
