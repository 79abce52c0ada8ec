"""Reads for the admin review of predictions and the performance dashboards.

The reference standard ("truth") of an image is taken from its current labels, in this order:

1. a radiologist's decision on the AI result (a label with source "review" that is not an
   adjudication; the latest when several radiologists reviewed);
2. else an adjudication (a radiologist's final word where readers disagreed);
3. else the readers' consensus: the majority of the reader labels, once the image has all the
   readers the project asks for (`clinic_ai.labelling.selectors.project_consensus`);
4. else a label given at upload (source "upload"; the latest).

A radiologist who reviews a result has seen the AI's call, and an "agree" makes that call the
reference standard: figures that take reviews as truth lean towards the AI. The dashboard can
therefore leave reviews out of the reference standard (`REFERENCE_WITHOUT_REVIEWS`): steps 2-4 only.

An "ungradable" truth is left out of every figure and counted apart. Everything is read in a fixed
number of queries, whatever the project's size: labels and results are read as plain values and
joined here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from clinic_ai.accounts.models import Project, Role, TaskType, User
from clinic_ai.accounts.selectors import get_project_for_user
from clinic_ai.inference.models import Ensemble, EnsembleMember, InferenceResult, ResultStatus
from clinic_ai.labelling.models import UNGRADABLE, Label, LabelSource
from clinic_ai.labelling.selectors import project_consensus
from clinic_ai.performance import metrics
from clinic_ai.review.models import Review as ResultReview

PERFORMANCE_ROLES = (Role.ADMIN,)

TRUTH_REVIEW = "review"
TRUTH_ADJUDICATION = "adjudication"
TRUTH_CONSENSUS = "consensus"
TRUTH_UPLOAD = "upload"
TRUTH_SOURCES = (TRUTH_REVIEW, TRUTH_ADJUDICATION, TRUTH_CONSENSUS, TRUTH_UPLOAD)

REFERENCE_WITH_REVIEWS = "with-reviews"
REFERENCE_WITHOUT_REVIEWS = "without-reviews"
REFERENCES = {
    REFERENCE_WITH_REVIEWS: "Reviews first: review, adjudication, consensus, upload",
    REFERENCE_WITHOUT_REVIEWS: "Without reviews of AI results: adjudication, consensus, upload",
}

AGREE, DISAGREE, UNGRADABLE_DECISION, UNREVIEWED = "agree", "disagree", "ungradable", "unreviewed"
DECISIONS = (AGREE, DISAGREE, UNGRADABLE_DECISION, UNREVIEWED)


def get_performance_project_for_user(user: User, project_id) -> Project:
    """Project admins and site admins; other members get 403, outsiders 404."""
    return get_project_for_user(user, project_id, roles=PERFORMANCE_ROLES)


@dataclass(frozen=True)
class Truth:
    values: tuple[str, ...]
    source: str

    @property
    def ungradable(self) -> bool:
        return UNGRADABLE in self.values


@dataclass(frozen=True)
class Review:
    values: tuple[str, ...]
    at: datetime
    decision: str = ""  # the radiologist's decision on the result itself (agree / disagree / ungradable)


@dataclass
class ProjectLabels:
    truth: dict = field(default_factory=dict)  # image id -> Truth
    reviews: dict = field(default_factory=dict)  # image id -> Review (the latest current one)


def project_labels(project: Project, *, reference: str = REFERENCE_WITH_REVIEWS) -> ProjectLabels:
    """The truth and the latest review decision of every labelled image of the project (3 queries).
    With `REFERENCE_WITHOUT_REVIEWS` a review is still the image's review, but never its truth."""
    reviews_are_truth = reference != REFERENCE_WITHOUT_REVIEWS
    consensus = project_consensus(project)
    reviews: dict = {}
    uploads: dict = {}
    rows = (
        Label.objects.filter(project=project, is_current=True)
        .filter(Q(source=LabelSource.REVIEW, adjudication=False) | Q(source=LabelSource.UPLOAD))
        .order_by("created", "pk")
        .values_list("image_id", "source", "values", "created")
    )
    for image_id, source, values, created in rows:
        if source == LabelSource.REVIEW:
            reviews[image_id] = Review(values=tuple(values), at=created)
        else:
            uploads[image_id] = tuple(values)
    out = ProjectLabels(reviews=reviews)
    for image_id in set(reviews) | set(uploads) | set(consensus.images):
        found = consensus.images.get(image_id)
        if reviews_are_truth and image_id in reviews:
            out.truth[image_id] = Truth(reviews[image_id].values, TRUTH_REVIEW)
        elif found is not None and found.adjudication is not None:
            out.truth[image_id] = Truth(tuple(found.adjudication), TRUTH_ADJUDICATION)
        elif (
            found is not None
            and len(found.reader_values) >= consensus.readers_per_image
            and found.majority() is not None
        ):
            out.truth[image_id] = Truth(tuple(found.majority()), TRUTH_CONSENSUS)
        elif image_id in uploads:
            out.truth[image_id] = Truth(uploads[image_id], TRUTH_UPLOAD)
    return out


# --- Ensembles, members and the cases they were run on ----------------------------------------------


def ensembles_for_project(project: Project) -> list[Ensemble]:
    return list(Ensemble.objects.filter(project=project).order_by("-is_active", "-created"))


def pick_ensemble(ensembles: list[Ensemble], ensemble_id) -> Ensemble | None:
    """The one asked for when it is the project's, else the active one, else the newest."""
    for ensemble in ensembles:
        if str(ensemble.pk) == str(ensemble_id):
            return ensemble
    return ensembles[0] if ensembles else None


def member_names(ensemble: Ensemble | None) -> list[tuple[str, str]]:
    """(name in the results, label) of the ensemble's members, in their order."""
    if ensemble is None:
        return []
    members = EnsembleMember.objects.filter(ensemble=ensemble).select_related("model_version").order_by("position")
    return [(m.model_version.name, m.model_version.label) for m in members]


@dataclass
class Case:
    result_id: object
    image_id: object
    study_id: object
    finished_at: datetime | None
    labels: tuple[str, ...]  # the ensemble's call
    probabilities: dict
    members: list
    truth: Truth | None = None
    review: Review | None = None

    @property
    def decision(self) -> str:
        """The radiologist's decision on this result: the review label against the AI's call."""
        if self.review is None:
            return UNREVIEWED
        return self.review.decision

    @property
    def disagreement(self) -> bool | None:
        """The AI's call differs from the truth; None when there is no gradable truth."""
        if self.truth is None or self.truth.ungradable:
            return None
        return set(self.truth.values) != set(self.labels)

    def member_probabilities(self, member: str) -> dict | None:
        for entry in self.members:
            if isinstance(entry, dict) and entry.get("name") == member:
                return entry.get("probabilities") or {}
        return None


def ensemble_cases(project: Project, ensemble: Ensemble, labels: ProjectLabels | None = None) -> list[Case]:
    """Every finished result of the ensemble, newest first, with its image's truth and review."""
    labels = labels if labels is not None else project_labels(project)
    reviews = result_reviews(ensemble)
    rows = (
        InferenceResult.objects.filter(ensemble=ensemble, image__project=project, status=ResultStatus.DONE)
        .order_by("-finished_at", "pk")
        .values_list("pk", "image_id", "image__study_id", "finished_at", "labels", "probabilities", "members")
    )
    return [
        Case(
            result_id=pk,
            image_id=image_id,
            study_id=study_id,
            finished_at=finished_at,
            labels=tuple(call or ()),
            probabilities=probabilities or {},
            members=members or [],
            truth=labels.truth.get(image_id),
            review=reviews.get(pk),
        )
        for pk, image_id, study_id, finished_at, call, probabilities, members in rows
    ]


def result_reviews(ensemble: Ensemble) -> dict:
    """result id -> the latest current review of that result (a review of another ensemble version's
    result, or of the same image before a rerun, is not a decision on this one)."""
    rows = (
        ResultReview.objects.filter(result__ensemble=ensemble, is_current=True)
        .order_by("created", "pk")
        .values_list("result_id", "label__values", "created", "decision")
    )
    return {result_id: Review(tuple(values or ()), created, decision) for result_id, values, created, decision in rows}


def filter_cases(cases: list[Case], *, decision: str = "", disagreement: str = "") -> list[Case]:
    if decision in DECISIONS:
        cases = [c for c in cases if c.decision == decision]
    if disagreement == "yes":
        cases = [c for c in cases if c.disagreement is True]
    elif disagreement == "no":
        cases = [c for c in cases if c.disagreement is False]
    return cases


# --- The dashboard ----------------------------------------------------------------------------------


def positive_classes(project: Project) -> list[str]:
    """The classes a dashboard can be drawn for: the second class of a binary project (the one the
    ensemble's single output is the probability of); every class of the others, one versus the rest."""
    names = list(project.class_names)
    if project.task_type == TaskType.BINARY:
        return names[1:2]
    return names


def _member_call(project: Project, probabilities: dict, threshold: float) -> tuple[str, ...]:
    """What a member alone would have said, decided the way the ensemble decides."""
    names = list(project.class_names)
    if not probabilities:
        return ()

    def p(name: str) -> float:
        found = _probability(probabilities, name)
        return 0.0 if found is None else found

    if project.task_type == TaskType.BINARY:
        return (names[1],) if p(names[1]) >= threshold else (names[0],)
    if project.task_type == TaskType.MULTICLASS:
        return (max(names, key=p),)
    return tuple(n for n in names if p(n) >= threshold)


def _probability(probabilities: dict, name: str) -> float | None:
    value = probabilities.get(name) if isinstance(probabilities, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def performance_dashboard(
    project: Project,
    ensemble: Ensemble,
    *,
    member: str = "",
    positive: str,
    reference: str = REFERENCE_WITH_REVIEWS,
) -> dict:
    """The figures of the ensemble (or one member, by name) for one positive class."""
    labels = project_labels(project, reference=reference)
    cases = ensemble_cases(project, ensemble, labels)
    scored = []  # (case, probabilities, call)
    for case in cases:
        if member:
            probabilities = case.member_probabilities(member)
            if probabilities is None:
                continue
            call = _member_call(project, probabilities, ensemble.threshold)
        else:
            probabilities, call = case.probabilities, case.labels
        scored.append((case, probabilities, call))

    with_truth = [(c, p, call) for c, p, call in scored if c.truth is not None]
    gradable = [(c, p, call) for c, p, call in with_truth if not c.truth.ungradable]
    # A probability that is missing, not a number, not finite or outside [0, 1] cannot be ranked:
    # such a case is left out of the figures and counted, never read as 0.
    usable = [(c, _probability(p, positive), call) for c, p, call in gradable]
    unscored = sum(1 for _, p, _ in usable if p is None)
    usable = [(c, p, call) for c, p, call in usable if p is not None]
    y = [positive in c.truth.values for c, _, _ in usable]
    score = [p for _, p, _ in usable]
    # The confusion matrix counts what was called (a multi-class ensemble calls its argmax, not every
    # class over the threshold); the ROC curve ranks the probabilities.
    called = [positive in call for _, _, call in usable]
    figures = metrics.binary_figures(y, score, threshold=ensemble.threshold, called=called)

    events = [
        (timezone.localdate(c.review.at), set(c.review.values) == set(call))
        for c, _, call in scored
        if c.review is not None and UNGRADABLE not in c.review.values
    ]
    period, agreement = metrics.agreement_over_time(events)
    return {
        "results": len(scored),
        "with_truth": len(with_truth),
        "ungradable": len(with_truth) - len(gradable),
        "without_truth": len(scored) - len(with_truth),
        "unscored": unscored,
        "used": len(usable),
        "truth_sources": {s: sum(1 for c, _, _ in with_truth if c.truth.source == s) for s in TRUTH_SOURCES},
        "truth_distribution": metrics.label_distribution(c.truth.values for c, _, _ in with_truth),
        "call_distribution": metrics.label_distribution(call for _, _, call in scored),
        "reviews": Counter(c.decision for c, _, _ in scored),
        "figures": figures,
        "period": period,
        "agreement": agreement,
    }
