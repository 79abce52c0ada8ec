"""Review decisions become labels with source "review"; a changed decision keeps its history."""

import uuid

import pytest

from clinic_ai.accounts.models import Role, TaskType
from clinic_ai.core.models import AuditEvent
from clinic_ai.inference.models import ResultStatus
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.labelling.services import label_adjudicate
from clinic_ai.review.models import Decision, Review
from clinic_ai.review.services import ReviewRefused, review_decide
from clinic_ai.studies.models import ImageStatus
from tests.factories import ImageFactory, InferenceResultFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def decide(user, result, decision, values=None, **extra):
    return review_decide(
        actor=user,
        project=result.image.project,
        image=result.image,
        result=result,
        decision=decision,
        values=values,
        **extra,
    )


def current_review_labels(image):
    return list(Label.objects.filter(image=image, source=LabelSource.REVIEW, is_current=True))


def test_agree_writes_the_ai_call_as_a_review_label_by_the_radiologist(radiologist, result):
    review, created = decide(radiologist, result, Decision.AGREE)
    assert created and review.is_current and review.decision == "agree"
    [label] = current_review_labels(result.image)
    assert label == review.label
    assert (label.values, label.reader, label.source, label.adjudication) == (
        ["pneumonia"],
        radiologist,
        "review",
        False,
    )
    assert review.ai_labels == ["pneumonia"]
    event = AuditEvent.objects.get(action="review.decide")
    assert event.actor == radiologist and event.object_id == str(review.pk)
    assert event.data["decision"] == "agree" and event.data["values"] == ["pneumonia"]
    assert event.data["image_id"] == str(result.image.pk) and event.data["label_id"] == str(label.pk)


def test_disagree_writes_the_corrected_label(radiologist, result):
    review, _ = decide(radiologist, result, Decision.DISAGREE, ["normal"], comment="  Old scar, not pneumonia. ")
    assert review.label.values == ["normal"] and review.comment == "Old scar, not pneumonia."
    event = AuditEvent.objects.get(action="review.decide")
    # The comment is free text: the audit says there is one, never what it says.
    assert event.data["comment"] is True and "scar" not in str(event.data)


def test_ungradable_writes_ungradable(radiologist, result):
    review, _ = decide(radiologist, result, Decision.UNGRADABLE)
    assert review.label.values == ["ungradable"]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (None, "non-empty list"),
        ([], "non-empty list"),
        (["fracture"], "Not a class"),
        (["normal", "pneumonia"], "exactly one class"),
        (["pneumonia"], "the AI's own call"),
        (["ungradable"], "Use Ungradable"),
        ("normal", "non-empty list"),
    ],
)
def test_a_correction_outside_the_schema_or_equal_to_the_ai_is_refused(radiologist, result, values, reason):
    with pytest.raises(ReviewRefused, match=reason):
        decide(radiologist, result, Decision.DISAGREE, values)
    assert not Review.objects.exists() and not Label.objects.exists() and not AuditEvent.objects.exists()


def test_an_unknown_decision_or_an_overlong_comment_is_refused(radiologist, result):
    with pytest.raises(ReviewRefused, match="agree, disagree or ungradable"):
        decide(radiologist, result, "maybe")
    with pytest.raises(ReviewRefused, match="longer than 1000"):
        decide(radiologist, result, Decision.AGREE, comment="x" * 1001)
    with pytest.raises(ReviewRefused, match="plain text"):
        decide(radiologist, result, Decision.AGREE, comment="a\x00b")
    assert not Review.objects.exists()


def test_changing_a_decision_withdraws_the_old_label_and_keeps_the_history(radiologist, result):
    first, _ = decide(radiologist, result, Decision.AGREE)
    second, _ = decide(radiologist, result, Decision.DISAGREE, ["normal"])
    third, _ = decide(radiologist, result, Decision.UNGRADABLE)
    reviews = list(Review.objects.order_by("created"))
    assert reviews == [first, second, third]
    assert [r.is_current for r in reviews] == [False, False, True]
    labels = list(Label.objects.order_by("created"))
    assert [label.values for label in labels] == [["pneumonia"], ["normal"], ["ungradable"]]
    assert [label.is_current for label in labels] == [False, False, True]
    assert all(label.withdrawn_at is not None for label in labels[:2]) and labels[2].withdrawn_at is None
    change = AuditEvent.objects.filter(action="review.change").order_by("pk").last()
    assert change.data["replaces"] == str(second.pk) and change.data["withdrawn_labels"] == [str(labels[1].pk)]


def test_each_radiologist_has_one_current_decision_of_an_image(project, radiologist, member_of, result):
    other = member_of(project, Role.RADIOLOGIST)
    decide(radiologist, result, Decision.AGREE)
    decide(other, result, Decision.DISAGREE, ["normal"])
    decide(other, result, Decision.AGREE)
    current = Review.objects.filter(is_current=True)
    assert sorted(r.reviewer.username for r in current) == sorted([radiologist.username, other.username])
    assert len(current_review_labels(result.image)) == 2


def test_the_same_request_id_stores_the_decision_once(project, radiologist, member_of, result):
    request_id = uuid.uuid4()
    first, created = decide(radiologist, result, Decision.AGREE, request_id=request_id)
    again, created_again = decide(radiologist, result, Decision.AGREE, request_id=request_id)
    assert created and not created_again and again == first
    assert Review.objects.count() == 1 and Label.objects.count() == 1
    assert AuditEvent.objects.filter(action__startswith="review.").count() == 1
    with pytest.raises(ReviewRefused, match="another decision"):
        decide(member_of(project, Role.RADIOLOGIST), result, Decision.AGREE, request_id=request_id)


@pytest.mark.parametrize("status", [ResultStatus.QUEUED, ResultStatus.RUNNING, ResultStatus.FAILED])
def test_a_result_that_is_not_finished_is_refused(radiologist, result, status):
    result.status = status
    result.save()
    with pytest.raises(ReviewRefused, match="not finished"):
        decide(radiologist, result, Decision.AGREE)
    assert not Review.objects.exists() and not Label.objects.exists()


def test_a_result_of_another_project_or_image_is_refused(project, radiologist, result, make_result):
    foreign = InferenceResultFactory(image=ImageFactory(project=ProjectFactory()))
    other_image = make_result()
    for wrong in (foreign, other_image):
        with pytest.raises(ReviewRefused, match="not of this image"):
            review_decide(actor=radiologist, project=project, image=result.image, result=wrong, decision=Decision.AGREE)
    assert not Review.objects.exists()


def test_an_image_that_is_not_released_is_refused(radiologist, result):
    result.image.status = ImageStatus.HELD
    result.image.save()
    with pytest.raises(ReviewRefused, match="cannot be reviewed"):
        decide(radiologist, result, Decision.AGREE)


def test_agreeing_with_an_empty_call_is_refused(radiologist, make_result):
    empty = make_result(labels=[])
    with pytest.raises(ReviewRefused, match="none of the classes"):
        decide(radiologist, empty, Decision.AGREE)


def test_a_multilabel_correction_keeps_the_class_order(project, radiologist, make_result):
    project.task_type = TaskType.MULTILABEL
    project.class_names = ["effusion", "nodule", "pneumonia"]
    project.save()
    result = make_result()
    review, _ = decide(radiologist, result, Decision.DISAGREE, ["pneumonia", "effusion"])
    assert review.label.values == ["effusion", "pneumonia"]


def test_a_radiologist_may_both_adjudicate_and_review_an_image(project, radiologist, result):
    label_adjudicate(actor=radiologist, project=project, image=result.image, values=["normal"])
    decide(radiologist, result, Decision.AGREE)
    label_adjudicate(actor=radiologist, project=project, image=result.image, values=["pneumonia"])
    current = current_review_labels(result.image)
    assert sorted((label.adjudication, tuple(label.values)) for label in current) == [
        (False, ("pneumonia",)),
        (True, ("pneumonia",)),
    ]
