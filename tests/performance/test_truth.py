"""Which label is the reference standard of an image, and what the radiologist decided."""

import pytest
from django.utils import timezone

from clinic_ai.labelling.models import LabellingSettings
from clinic_ai.performance import selectors
from tests.factories import EnsembleFactory, ImageFactory, LabelFactory, UserFactory
from tests.performance.conftest import add_result

pytestmark = pytest.mark.django_db


def _label(image, values, source="reader", reader=None, **extra):
    return LabelFactory(image=image, reader=reader or UserFactory(), values=list(values), source=source, **extra)


def test_truth_precedence_review_then_adjudication_then_consensus_then_upload(project):
    LabellingSettings.objects.create(project=project, readers_per_image=2)
    img = {name: ImageFactory(project=project) for name in "abcdefgh"}
    # a: a review beats everything else
    _label(img["a"], ["normal"], "upload")
    _label(img["a"], ["normal"])
    _label(img["a"], ["normal"])
    _label(img["a"], ["normal"], "review", adjudication=True)
    _label(img["a"], ["pneumonia"], "review")
    # b: an adjudication beats the readers and the upload
    _label(img["b"], ["normal"], "upload")
    _label(img["b"], ["normal"])
    _label(img["b"], ["pneumonia"])
    _label(img["b"], ["pneumonia"], "review", adjudication=True)
    # c: two readers of two agree: consensus beats the upload
    _label(img["c"], ["pneumonia"], "upload")
    _label(img["c"], ["normal"])
    _label(img["c"], ["normal"])
    # d: one reader of the two asked for: no consensus yet, the upload label stands
    _label(img["d"], ["pneumonia"], "upload")
    _label(img["d"], ["normal"])
    # e: readers split and nobody adjudicated: the upload label
    _label(img["e"], ["normal"], "upload")
    _label(img["e"], ["normal"])
    _label(img["e"], ["pneumonia"])
    # f: a review saying ungradable
    _label(img["f"], ["normal"], "upload")
    _label(img["f"], ["ungradable"], "review")
    # g: a withdrawn review does not count
    _label(img["g"], ["pneumonia"], "review", is_current=False, withdrawn_at=timezone.now())
    _label(img["g"], ["normal"], "upload")
    # h: nothing at all

    truth = selectors.project_labels(project).truth
    assert truth[img["a"].pk] == selectors.Truth(("pneumonia",), "review")
    assert truth[img["b"].pk] == selectors.Truth(("pneumonia",), "adjudication")
    assert truth[img["c"].pk] == selectors.Truth(("normal",), "consensus")
    assert truth[img["d"].pk] == selectors.Truth(("pneumonia",), "upload")
    assert truth[img["e"].pk] == selectors.Truth(("normal",), "upload")
    assert truth[img["f"].pk].ungradable and truth[img["f"].pk].source == "review"
    assert truth[img["g"].pk] == selectors.Truth(("normal",), "upload")
    assert img["h"].pk not in truth


def test_the_latest_review_wins_when_two_radiologists_reviewed(project):
    image = ImageFactory(project=project)
    _label(image, ["normal"], "review")
    _label(image, ["pneumonia"], "review")
    labels = selectors.project_labels(project)
    assert labels.truth[image.pk].values == ("pneumonia",)
    assert labels.reviews[image.pk].values == ("pneumonia",)


def test_labels_of_another_project_are_not_read(project):
    image = ImageFactory(project=project)
    other = ImageFactory()
    _label(other, ["pneumonia"], "upload")
    assert selectors.project_labels(project).truth == {}
    assert image.pk not in selectors.project_labels(project).truth


def test_decision_is_the_review_of_that_result_and_disagreement_is_against_the_truth(project, radiologist):
    from clinic_ai.review.services import review_decide

    ensemble = EnsembleFactory(project=project, is_active=True)
    images = [ImageFactory(project=project) for _ in range(5)]
    results = [add_result(ensemble, image, 0.9) for image in images]  # called pneumonia
    for i, decision, values in ((0, "agree", None), (1, "disagree", ["normal"]), (2, "ungradable", None)):
        review_decide(
            actor=radiologist, project=project, image=images[i], result=results[i], decision=decision, values=values
        )
    _label(images[3], ["normal"], "upload")
    cases = {c.image_id: c for c in selectors.ensemble_cases(project, ensemble)}
    assert [cases[i.pk].decision for i in images] == ["agree", "disagree", "ungradable", "unreviewed", "unreviewed"]
    assert [cases[i.pk].disagreement for i in images] == [False, True, None, True, None]

    # Another ensemble version's result on the same images: those decisions were not on it. Its
    # truth is the same (the radiologists' labels are about the images).
    other = EnsembleFactory(project=project, is_active=False)
    for image in images:
        add_result(other, image, 0.2)  # called normal
    cases = {c.image_id: c for c in selectors.ensemble_cases(project, other)}
    assert [cases[i.pk].decision for i in images] == ["unreviewed"] * 5
    assert [cases[i.pk].disagreement for i in images] == [True, False, None, False, None]


def test_a_missing_or_non_finite_probability_is_left_out_of_the_figures_and_counted(project):
    ensemble = EnsembleFactory(project=project, is_active=True)
    # (non-finite values never get stored: result_finish fails such a job, PostgreSQL refuses them)
    values = [0.9, 0.2, True, None, "0.5", 7.0, -0.1]
    for i, p in enumerate(values):
        image = ImageFactory(project=project)
        result = add_result(ensemble, image, 0.9 if i % 2 == 0 else 0.2)
        result.probabilities = {"normal": 0.5} if p is None else {"normal": 0.5, "pneumonia": p}
        result.save()
        _label(image, ["pneumonia" if i % 2 == 0 else "normal"], "upload")
    data = selectors.performance_dashboard(project, ensemble, positive="pneumonia")
    assert data["used"] == 2 and data["unscored"] == 5
    assert data["figures"]["auroc"] == 1.0 and data["figures"]["ece"] is not None


def test_without_reviews_an_agree_no_longer_makes_the_ai_call_the_truth(project, radiologist):
    """A radiologist who agrees has seen the AI's call: left out of the reference standard, the
    figures fall back to the labels given apart from the review (here the upload labels)."""
    from clinic_ai.review.services import review_decide

    ensemble = EnsembleFactory(project=project, is_active=True)
    # Four images called pneumonia (p = 0.9, 0.8) or normal (0.3, 0.1); the uploader said the
    # opposite of the AI for the first one, and the radiologist agreed with the AI on it.
    images = [ImageFactory(project=project) for _ in range(4)]
    results = [add_result(ensemble, image, p) for image, p in zip(images, (0.9, 0.8, 0.3, 0.1), strict=True)]
    for image, upload in zip(images, ("normal", "pneumonia", "normal", "pneumonia"), strict=True):
        _label(image, [upload], "upload")
    review_decide(actor=radiologist, project=project, image=images[0], result=results[0], decision="agree")

    with_reviews = selectors.performance_dashboard(project, ensemble, positive="pneumonia")
    without = selectors.performance_dashboard(
        project, ensemble, positive="pneumonia", reference=selectors.REFERENCE_WITHOUT_REVIEWS
    )
    # With the review as truth: truth = (pneumonia, pneumonia, normal, pneumonia) for p = (.9, .8, .3, .1):
    # positives {.9, .8, .1} against the negative {.3}: 2 of 3 pairs ranked right.
    assert with_reviews["truth_sources"]["review"] == 1 and with_reviews["truth_sources"]["upload"] == 3
    assert with_reviews["figures"]["auroc"] == pytest.approx(2 / 3)
    assert with_reviews["figures"]["confusion"] == {"tp": 2, "fp": 0, "fn": 1, "tn": 1}
    # Without it: truth = (normal, pneumonia, normal, pneumonia): positives {.8, .1}, negatives {.9, .3}:
    # (.8 > .3) only, 1 of 4 pairs.
    assert without["truth_sources"]["review"] == 0 and without["truth_sources"]["upload"] == 4
    assert without["figures"]["auroc"] == pytest.approx(1 / 4)
    assert without["figures"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    # The decision is still the radiologist's: the agreement plot counts it either way.
    assert with_reviews["reviews"]["agree"] == without["reviews"]["agree"] == 1

    truth = selectors.project_labels(project, reference=selectors.REFERENCE_WITHOUT_REVIEWS)
    assert truth.truth[images[0].pk] == selectors.Truth(("normal",), "upload")
    assert truth.reviews[images[0].pk].values == ("pneumonia",)
