"""Writes of review decisions. A decision and its label are written, and the radiologist's previous
decision and label withdrawn, in one transaction with its audit row."""

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.services import audit_record
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.labelling.models import UNGRADABLE, Label, LabelSource
from clinic_ai.labelling.services import LabelRefused, label_values_clean
from clinic_ai.review.models import MAX_COMMENT_CHARS, Decision, Review
from clinic_ai.studies.models import Image, ImageStatus


class ReviewRefused(Exception):
    """A decision the server will not store; `reason` is shown to the radiologist (no patient data)."""

    def __init__(self, reason: str, *, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def review_values(*, project: Project, result: InferenceResult, decision: str, values=None) -> list[str]:
    """The label a decision stands for: the AI's own call, the radiologist's correction, or ungradable."""
    if decision == Decision.AGREE:
        if not result.labels:
            raise ReviewRefused("The AI called none of the classes: pick the label with Disagree.")
        source = list(result.labels)
    elif decision == Decision.DISAGREE:
        source = values
    elif decision == Decision.UNGRADABLE:
        return [UNGRADABLE]
    else:
        raise ReviewRefused("Choose agree, disagree or ungradable.")
    try:
        clean = label_values_clean(project=project, values=source)
    except LabelRefused as exc:
        raise ReviewRefused(exc.reason) from None
    if decision == Decision.DISAGREE:
        if clean == [UNGRADABLE]:
            raise ReviewRefused("Use Ungradable to say the image cannot be graded.")
        if sorted(clean) == sorted(result.labels):
            raise ReviewRefused("That is the AI's own call: choose Agree, or pick another label.")
    return clean


def _comment_clean(comment) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str) or "\x00" in comment:
        raise ReviewRefused("The comment must be plain text.")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise ReviewRefused(f"The comment is longer than {MAX_COMMENT_CHARS} characters.")
    return comment


def review_decide(
    *,
    actor: User,
    project: Project,
    image: Image,
    result: InferenceResult,
    decision: str,
    values=None,
    comment: str = "",
    request_id: uuid.UUID | None = None,
) -> tuple[Review, bool]:
    """Store a radiologist's decision on an AI result: (review, created).

    The same request_id sent again (a double click, a form resent) returns the stored review instead
    of a second one. A second decision on the same image replaces the first: both rows stay, and the
    first one's label is withdrawn.
    """
    if request_id is not None:
        stored = Review.objects.filter(request_id=request_id).first()
        if stored is not None:
            return _same_request(stored, actor=actor, image=image)
    comment = _comment_clean(comment)
    try:
        with transaction.atomic():
            review = _review_decide(
                actor=actor,
                project=project,
                image=image,
                result=result,
                decision=decision,
                values=values,
                comment=comment,
                request_id=request_id,
            )
            return review, True
    except IntegrityError:
        # The same request raced itself (two connections): the first one stored it.
        stored = Review.objects.filter(request_id=request_id).first() if request_id else None
        if stored is None:
            raise
        return _same_request(stored, actor=actor, image=image)


def _same_request(stored: Review, *, actor: User, image: Image) -> tuple[Review, bool]:
    if stored.reviewer_id != actor.pk or stored.image_id != image.pk:
        raise ReviewRefused("This request id was used for another decision.", status=409)
    return stored, False


def _review_decide(*, actor, project, image, result, decision, values, comment, request_id) -> Review:
    # The image's row lock serialises decisions on one image (one current review per radiologist).
    locked = Image.objects.select_for_update().filter(pk=image.pk).first()
    if locked is None or locked.project_id != project.pk or locked.status != ImageStatus.RELEASED:
        raise ReviewRefused("This image cannot be reviewed.", status=409)
    result = InferenceResult.objects.select_related("ensemble").filter(pk=result.pk).first()
    if result is None or result.image_id != image.pk or result.ensemble.project_id != project.pk:
        raise ReviewRefused("This AI result is not of this image.", status=409)
    if result.status != ResultStatus.DONE:
        raise ReviewRefused("This AI result is not finished: there is nothing to review yet.", status=409)
    clean = review_values(project=project, result=result, decision=decision, values=values)

    previous = Review.objects.filter(image=image, reviewer=actor, is_current=True).first()
    label, withdrawn = review_label_replace(actor=actor, project=project, image=image, values=clean)
    if previous is not None:
        previous.is_current = False
        previous.save(update_fields=["is_current", "modified"])
    review = Review.objects.create(
        project=project,
        image=image,
        result=result,
        reviewer=actor,
        decision=decision,
        comment=comment,
        ai_labels=list(result.labels),
        label=label,
        request_id=request_id,
    )
    audit_record(
        action="review.change" if previous else "review.decide",
        actor=actor,
        project=project,
        obj=review,
        data={
            "image_id": str(image.pk),
            "result_id": str(result.pk),
            "ensemble": result.ensemble.label,
            "decision": decision,
            "ai_labels": list(result.labels),
            "values": clean,
            "label_id": str(label.pk),
            # The comment is free text (it may name a patient): only whether there is one.
            "comment": bool(comment),
            **({"replaces": str(previous.pk)} if previous else {}),
            **({"withdrawn_labels": withdrawn} if withdrawn else {}),
        },
    )
    return review


def review_label_replace(*, actor: User, project: Project, image: Image, values: list[str]) -> tuple[Label, list[str]]:
    """Withdraw the radiologist's current review label of the image (not an adjudication) and write the
    new one: (new label, ids of the withdrawn ones). Called inside the decision's transaction, under
    the image's row lock."""
    now = timezone.now()
    current = Label.objects.filter(
        image=image, reader=actor, source=LabelSource.REVIEW, adjudication=False, is_current=True
    )
    old = [str(pk) for pk in current.values_list("pk", flat=True)]
    current.update(is_current=False, withdrawn_at=now, modified=now)
    label = Label.objects.create(project=project, image=image, reader=actor, values=values, source=LabelSource.REVIEW)
    return label, old
