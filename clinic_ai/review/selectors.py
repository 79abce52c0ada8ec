"""Reads for radiologist review: the worklist in priority order, one image's result and decisions.

The worklist is the project's released images with a finished result of the active ensemble. It is
ordered by a score computed in the database (so it pages), with the result's id as tie-breaker so
that "the next image" is well defined.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db import connection
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import Http404

from clinic_ai.accounts.models import Project, Role, TaskType, User
from clinic_ai.accounts.selectors import get_project_for_user
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.review.models import Review
from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus
from clinic_ai.studies.selectors import get_image_for_user

REVIEW_ROLES = (Role.ADMIN, Role.RADIOLOGIST)

# Priorities: what "most urgent" means. Uncertainty is the entropy of the ensemble's probabilities
# (what the ensemble itself is unsure of); disagreement is the spread of the members' probabilities
# of the target class (what the members argue about). Both are in InferenceResult.uncertainty.
PRIORITY_PROBABILITY = "probability"
PRIORITY_UNCERTAINTY = "uncertainty"
PRIORITY_DISAGREEMENT = "disagreement"
PRIORITIES = {
    PRIORITY_PROBABILITY: "Highest probability first",
    PRIORITY_UNCERTAINTY: "Most uncertain first (entropy)",
    PRIORITY_DISAGREEMENT: "Members disagree most first",
}
STATES = {"unreviewed": "Not reviewed", "reviewed": "Reviewed", "all": "All"}


def get_review_project_for_user(user: User, project_id) -> Project:
    """Radiologists and admins of the project (site admins too); other members 403, outsiders 404."""
    return get_project_for_user(user, project_id, roles=REVIEW_ROLES)


def get_review_image_for_user(user: User, project: Project, image_id) -> Image:
    image = get_image_for_user(user, image_id)
    if image.project_id != project.pk or image.status != ImageStatus.RELEASED:
        raise Http404("No such image")
    return image


def positive_class(project: Project) -> str:
    """The class whose probability ranks the worklist by default: the binary task's positive class
    (the second, as the ensemble decides it), else the first class after the first."""
    names = list(project.class_names)
    return names[1] if len(names) > 1 else (names[0] if names else "")


@dataclass(frozen=True)
class WorklistQuery:
    priority: str = PRIORITY_PROBABILITY
    rank_class: str = ""
    state: str = "unreviewed"
    ai_class: str = ""
    ai_call: str = ""  # "positive" | "negative" for ai_class
    modality: str = ""


def _ai_calls(project: Project, name: str) -> Q:
    """Results whose labels include the class `name`."""
    if connection.features.supports_json_field_contains:
        return Q(labels__contains=[name])
    # SQLite (the one-machine default): single-label tasks store exactly one class.
    if project.task_type != TaskType.MULTILABEL:
        return Q(labels=[name])
    return Q(labels__icontains=f'"{name}"')


def _score(project: Project, query: WorklistQuery):
    if query.priority == PRIORITY_UNCERTAINTY:
        return Cast(KeyTextTransform("entropy", "uncertainty"), FloatField())
    if query.priority == PRIORITY_DISAGREEMENT:
        return Cast(KeyTextTransform("member_std", "uncertainty"), FloatField())
    return Cast(KeyTextTransform(query.rank_class or positive_class(project), "probabilities"), FloatField())


def review_worklist(project: Project, query: WorklistQuery) -> QuerySet[InferenceResult]:
    """Finished results of the active ensemble on released images, most urgent first."""
    current = Review.objects.filter(result=OuterRef("pk"), is_current=True).order_by("-created")
    results = InferenceResult.objects.filter(
        ensemble__project=project,
        ensemble__is_active=True,
        status=ResultStatus.DONE,
        image__project=project,
        image__status=ImageStatus.RELEASED,
        image__preview_status=PreviewStatus.READY,
    ).annotate(
        score=_score(project, query),
        reviewed=Exists(current),
        review_decision=Subquery(current.values("decision")[:1]),
        review_by=Subquery(current.values("reviewer__username")[:1]),
    )
    if query.state == "unreviewed":
        results = results.filter(reviewed=False)
    elif query.state == "reviewed":
        results = results.filter(reviewed=True)
    if query.ai_class and query.ai_call in ("positive", "negative"):
        calls = _ai_calls(project, query.ai_class)
        results = results.filter(calls) if query.ai_call == "positive" else results.exclude(calls)
    if query.modality:
        results = results.filter(image__modality__iexact=query.modality)
    return results.select_related("image__study", "ensemble").order_by(F("score").desc(nulls_last=True), "pk")


def worklist_neighbour(project: Project, query: WorklistQuery, image: Image) -> Image | None:
    """The image after this one in the worklist's order (the first one when this one is last or no
    longer listed, e.g. just reviewed), or None when nothing else is left."""
    results = review_worklist(project, query).exclude(image=image)
    here = review_worklist(project, replace(query, state="all")).filter(image=image).first()
    after = None
    if here is not None:
        if here.score is None:
            later = Q(score=None, pk__gt=here.pk)
        else:
            later = Q(score__lt=here.score) | Q(score=here.score, pk__gt=here.pk) | Q(score=None)
        after = results.filter(later).first()
    found = after or results.first()
    return found.image if found is not None else None


def modalities_of(project: Project) -> list[str]:
    return sorted(
        {
            m.upper()
            for m in Image.objects.filter(project=project, status=ImageStatus.RELEASED)
            .exclude(modality="")
            .order_by()
            .values_list("modality", flat=True)
            .distinct()
        }
    )


def review_result_for_image(project: Project, image: Image) -> InferenceResult:
    """The active ensemble's finished result of the image; 404 when there is none to review."""
    result = (
        InferenceResult.objects.filter(
            image=image, ensemble__project=project, ensemble__is_active=True, status=ResultStatus.DONE
        )
        .select_related("ensemble")
        .first()
    )
    if result is None:
        raise Http404("No finished AI result to review")
    return result


def review_history(image: Image) -> list[Review]:
    """Every decision on the image, newest first, with who made it and the label it wrote."""
    return list(Review.objects.filter(image=image).select_related("reviewer", "label", "result__ensemble"))


def current_reviews(image_ids: Iterable) -> dict:
    """{image id: [current reviews]} for the image page's one line."""
    found: dict = {}
    for review in (
        Review.objects.filter(image__in=list(image_ids), is_current=True)
        .select_related("reviewer", "label")
        .order_by("created")
    ):
        found.setdefault(review.image_id, []).append(review)
    return found


def result_of_image(image: Image, result_id) -> InferenceResult | None:
    """A result of this image by id (the form names the result it judged), else None."""
    return InferenceResult.objects.select_related("ensemble").filter(pk=result_id, image=image).first()


def image_has_reviewable_result(image: Image) -> bool:
    return InferenceResult.objects.filter(
        image=image, ensemble__project=image.project_id, ensemble__is_active=True, status=ResultStatus.DONE
    ).exists()
