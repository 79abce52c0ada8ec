"""Ensemble arithmetic, preprocessing and evaluation figures against values worked out by hand.

Pure numpy: no TensorFlow, no database. The expected numbers were computed with scalar ``math``
formulas (written out in the comments), not with the vectorised code under test.
"""

import math

import numpy as np
import pytest

from clinic_ai.inference import ensemble as ens
from clinic_ai.inference.evaluation import auroc, binary_report, fit_temperature
from clinic_ai.inference.preprocess import PreprocessSpec, resize, to_model_input

# Two members say logit 2 and logit 0 for one image; weights 3:1 (normalised to 0.75/0.25); T = 2.
BINARY = np.array([[[2.0]], [[0.0]]])


def test_binary_mean_logit_is_temperature_scaled_after_averaging():
    c = ens.combine(BINARY, task="binary", weights=[3, 1], temperature=2.0)
    # sigmoid((0.75*2 + 0.25*0) / 2) = sigmoid(0.75)
    assert c.probabilities[0, 1] == pytest.approx(0.679178699175393, abs=1e-12)
    assert c.probabilities[0, 0] == pytest.approx(1 - 0.679178699175393, abs=1e-12)
    # members' own probabilities: sigmoid(2), sigmoid(0)
    assert c.member_probabilities[:, 0, 1] == pytest.approx([0.8807970779778823, 0.5])


def test_binary_uncertainty_matches_hand_values():
    c = ens.combine(BINARY, task="binary", weights=[3, 1], temperature=2.0)
    # weighted mean of member probabilities m = 0.75*sigmoid(2) + 0.25*0.5 = 0.78559780848
    # std = sqrt(0.75*(sigmoid(2)-m)^2 + 0.25*(0.5-m)^2)
    assert c.member_std[0, 1] == pytest.approx(0.16488997160786495, abs=1e-12)
    assert c.member_std[0, 0] == pytest.approx(0.16488997160786495, abs=1e-12)
    # entropy of the ensemble's p = 0.6791787: -(p ln p + (1-p) ln(1-p))
    assert c.entropy[0] == pytest.approx(0.6274869817333553, abs=1e-12)
    # MI = H(m) - (0.75 H(sigmoid 2) + 0.25 H(0.5))
    assert c.mutual_information[0] == pytest.approx(0.07244394927482745, abs=1e-12)


def test_binary_mean_probability_applies_the_temperature_to_the_logit_of_the_mean():
    plain = ens.combine(BINARY, task="binary", weights=[3, 1], combination="mean_probability")
    assert plain.probabilities[0, 1] == pytest.approx(0.7855978084834118, abs=1e-12)
    hot = ens.combine(BINARY, task="binary", weights=[3, 1], combination="mean_probability", temperature=2.0)
    # sigmoid(logit(0.78559780848) / 2)
    assert hot.probabilities[0, 1] == pytest.approx(0.6568517233393012, abs=1e-12)


def test_binary_label_and_target_follow_the_threshold():
    c = ens.combine(BINARY, task="binary", weights=[3, 1], temperature=2.0, threshold=0.7)
    assert c.decisions[0].tolist() == [True, False]  # 0.679 < 0.7: normal
    assert c.target[0] == 0
    c = ens.combine(BINARY, task="binary", weights=[3, 1], temperature=2.0, threshold=0.5)
    assert c.decisions[0].tolist() == [False, True]
    assert c.target[0] == 1


def test_agreeing_members_have_no_mutual_information_or_spread():
    c = ens.combine(np.array([[[1.3]], [[1.3]], [[1.3]]]), task="binary")
    assert c.member_std[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert c.mutual_information[0] == pytest.approx(0.0, abs=1e-12)
    assert c.probabilities[0, 1] == pytest.approx(1 / (1 + math.exp(-1.3)))


def test_multiclass_is_softmax_of_the_weighted_mean_logit():
    z = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    c = ens.combine(z, task="multiclass", weights=[0.6, 0.4])
    # softmax([0.6, 0.4, 0]) = [e^.6, e^.4, 1] / (e^.6 + e^.4 + 1)
    assert c.probabilities[0] == pytest.approx([0.4223789211012717, 0.34581461215750964, 0.23180646674121863])
    assert c.target[0] == 0
    assert c.decisions[0].tolist() == [True, False, False]


def test_multilabel_uses_independent_sigmoids_and_per_label_thresholds():
    z = np.array([[[2.0, -2.0]], [[0.0, -1.0]]])
    c = ens.combine(z, task="multilabel", threshold=[0.5, 0.15])
    # sigmoid(1), sigmoid(-1.5)
    assert c.probabilities[0] == pytest.approx([0.7310585786300049, 0.18242552380635635])
    assert c.decisions[0].tolist() == [True, True]
    c = ens.combine(z, task="multilabel", threshold=[0.5, 0.3])
    assert c.decisions[0].tolist() == [True, False]


def test_weighted_map_mean_and_std():
    maps = np.array([[[0.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]]])
    mean, std = ens.combine_maps(maps)
    assert mean.tolist() == [[0.5, 1.0], [0.5, 1.0]]
    assert std.tolist() == [[0.5, 0.0], [0.5, 0.0]]
    mean, _ = ens.combine_maps(maps, weights=[3, 1])
    assert mean.tolist() == [[0.25, 1.0], [0.75, 1.0]]


def test_extreme_logits_stay_finite():
    c = ens.combine(np.array([[[800.0]], [[-800.0]]]), task="binary")
    assert np.isfinite(c.entropy).all() and np.isfinite(c.mutual_information).all()
    assert c.probabilities[0, 1] == pytest.approx(0.5)


@pytest.mark.parametrize("weights", [[1, -1], [0, 0], [1, 1, 1]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        ens.combine(BINARY, task="binary", weights=weights)


def test_auroc_by_hand():
    # pairs (pos, neg): (0.35 vs 0.1) win, (0.35 vs 0.4) loss, (0.8 vs both) win: 3 of 4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_binary_report_counts_sensitivity_and_specificity():
    r = binary_report([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.3, 0.9, 0.4], test_normal_fraction=0.5)
    assert r["sensitivity"] == 0.5 and r["specificity"] == 0.75
    assert r["accuracy"] == round(4 / 6, 4)
    assert r["accuracy_at_test_prevalence"] == 0.625


def test_fitted_temperature_cools_an_overconfident_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.0, 4000)
    # the labels are drawn from sigmoid(true_logit); the "model" reports 3x that logit
    y = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    assert fit_temperature(3 * true_logit, y) == pytest.approx(3.0, rel=0.1)


def test_area_resize_averages_blocks_and_keeps_constants():
    img = np.arange(16, dtype=float).reshape(4, 4)
    assert resize(img, (2, 2)).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert np.allclose(resize(np.full((1024, 700), 0.3), (28, 28)), 0.3)
    assert np.allclose(resize(np.full((7, 7), 0.6), (1000, 999)), 0.6)


def test_model_input_applies_the_spec():
    spec = PreprocessSpec.from_json({"input_size": [2, 2], "channels": 1, "mean": 0.5, "std": 0.25})
    grey = np.array([[0, 255], [255, 0]], dtype=np.uint8).repeat(2, 0).repeat(2, 1)
    out = to_model_input(grey, spec)
    assert out.shape == (2, 2, 1) and out.dtype == np.float32
    assert out[..., 0].tolist() == [[-2.0, 2.0], [2.0, -2.0]]
    # an RGB export of the same grey image gives the same input
    assert np.allclose(to_model_input(np.stack([grey] * 3, axis=-1), spec), out, atol=1e-5)


def test_float_pixels_outside_unit_range_are_refused():
    spec = PreprocessSpec.from_json({"input_size": [2, 2]})
    with pytest.raises(ValueError):
        to_model_input(np.full((4, 4), 1000.0), spec)
    with pytest.raises(ValueError):
        to_model_input(np.full((4, 4), 7, dtype=np.uint16), spec)


def test_overlay_is_transparent_where_cold_and_opaque_where_hot():
    import io

    from PIL import Image

    from clinic_ai.inference.overlay import heatmap_png

    heat = np.zeros((5, 7))
    heat[2, 3] = 1.0
    heat[0, 0] = np.nan
    image = Image.open(io.BytesIO(heatmap_png(heat)))
    assert image.mode == "RGBA" and image.size == (7, 5)
    rgba = np.asarray(image)
    assert rgba[..., 3].max() == rgba[2, 3, 3] == round(255 * 0.75)
    assert rgba[0, 0, 3] == 0 and rgba[4, 6, 3] == 0
    assert tuple(rgba[2, 3, :3]) == (252, 255, 164)
