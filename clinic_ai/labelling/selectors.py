"""Reads of labels, the labelling queue and consensus, always for a given user.

Readers never see other readers' labels: the queue returns images and (when the project allows it)
the AI result, nothing else; consensus and the adjudication list are for radiologists and admins.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from clinic_ai.accounts.models import Membership, Project, Role, User
from clinic_ai.accounts.selectors import get_project_for_user
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.labelling import agreement
from clinic_ai.labelling.models import Label, LabellingSettings, LabelSource
from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus

LABEL_ROLES = (Role.ADMIN, Role.RADIOLOGIST, Role.CLINICIAN)
ADJUDICATE_ROLES = (Role.ADMIN, Role.RADIOLOGIST)
MANAGE_ROLES = (Role.ADMIN,)
QUEUE_MAX_ITEMS = 20


def get_labelling_project_for_user(user: User, project_id, *, roles: Iterable[str]) -> Project:
    return get_project_for_user(user, project_id, roles=roles)


def labelling_settings_for(project: Project) -> LabellingSettings:
    """The project's settings; an unsaved row with the defaults when nobody has changed them."""
    return LabellingSettings.objects.filter(project=project).first() or LabellingSettings(project=project)


def may_see_ai_result(user: User, project: Project) -> bool:
    """Readers (clinicians) label blind: the AI's result, its heatmaps and the radiologists' review
    of it (which names the AI's call) are theirs to see only when the project allows it. Every
    other role sees them. (The worklist applies the same rule to many projects at once.)"""
    if user.is_site_admin:
        return True
    role = Membership.objects.filter(user=user, project=project).values_list("role", flat=True).first()
    return role != Role.CLINICIAN or labelling_settings_for(project).readers_see_ai_result


def _reader_labels() -> Q:
    return Q(source=LabelSource.READER, is_current=True)


def get_label_queue_for_user(
    user: User, project: Project, *, limit: int = 5, exclude: Iterable = (), settings: LabellingSettings | None = None
) -> list[Image]:
    """Released images (with a preview to show) that still need readers and that this reader has not
    labelled, oldest first. `exclude` holds the ids the browser already has or skipped."""
    settings = settings or labelling_settings_for(project)
    readers = (
        Label.objects.filter(_reader_labels(), image=OuterRef("pk"))
        .order_by()
        .values("image")
        .annotate(n=Count("pk"))
        .values("n")
    )
    images = (
        Image.objects.filter(project=project, status=ImageStatus.RELEASED, preview_status=PreviewStatus.READY)
        .annotate(
            reader_count=Coalesce(Subquery(readers, output_field=IntegerField()), Value(0)),
            mine=Exists(Label.objects.filter(_reader_labels(), image=OuterRef("pk"), reader=user)),
        )
        .filter(reader_count__lt=settings.readers_per_image, mine=False)
        .exclude(pk__in=list(exclude))
        .order_by("released_at", "created", "pk")
    )
    return list(images[: max(1, min(limit, QUEUE_MAX_ITEMS))].only("pk", "released_at", "created", "frames"))


def queue_remaining_for_user(user: User, project: Project, *, settings: LabellingSettings | None = None) -> int:
    settings = settings or labelling_settings_for(project)
    readers = (
        Label.objects.filter(_reader_labels(), image=OuterRef("pk"))
        .order_by()
        .values("image")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Image.objects.filter(project=project, status=ImageStatus.RELEASED, preview_status=PreviewStatus.READY)
        .annotate(reader_count=Coalesce(Subquery(readers, output_field=IntegerField()), Value(0)))
        .filter(reader_count__lt=settings.readers_per_image)
        .exclude(Exists(Label.objects.filter(_reader_labels(), image=OuterRef("pk"), reader=user)))
        .count()
    )


def ai_results_for_images(project: Project, image_ids: Iterable) -> dict:
    """{image id: {"labels", "probabilities"}} of the active ensemble's finished results, in one query."""
    rows = InferenceResult.objects.filter(
        image__in=list(image_ids), ensemble__is_active=True, ensemble__project=project, status=ResultStatus.DONE
    ).values("image_id", "labels", "probabilities")
    return {row["image_id"]: {"labels": row["labels"], "probabilities": row["probabilities"]} for row in rows}


@dataclass
class ImageConsensus:
    image_id: object
    study_id: object
    reader_values: list[tuple] = field(default_factory=list)  # (reader username, values) in labelling order
    adjudication: list[str] | None = None

    def majority(self) -> tuple | None:
        return agreement.majority([tuple(values) for _, values in self.reader_values])

    @property
    def final(self) -> list[str] | None:
        """The adjudicated label, else the readers' majority."""
        if self.adjudication is not None:
            return self.adjudication
        found = self.majority()
        return list(found) if found is not None else None


@dataclass
class ProjectConsensus:
    readers_per_image: int
    images: dict = field(default_factory=dict)  # image id -> ImageConsensus, only images with labels

    @property
    def complete(self) -> list[ImageConsensus]:
        return [c for c in self.images.values() if len(c.reader_values) >= self.readers_per_image]

    @property
    def needs_adjudication(self) -> list[ImageConsensus]:
        return [c for c in self.complete if c.adjudication is None and c.majority() is None]

    @property
    def adjudicated(self) -> list[ImageConsensus]:
        return [c for c in self.images.values() if c.adjudication is not None]

    def kappa(self) -> tuple[str, float | None, int]:
        """(name, value, images counted) over images with exactly N reader labels, N ≥ 2."""
        n = self.readers_per_image
        ratings = [
            [frozenset(values) if len(values) > 1 else values[0] for _, values in c.reader_values]
            for c in self.complete
            if len(c.reader_values) == n
        ]
        if n < 2 or not ratings:
            return "", None, 0
        name, value = agreement.project_kappa(ratings)
        return name, value, len(ratings)


def project_consensus(project: Project) -> ProjectConsensus:
    """Every current reader label and adjudication of the project, grouped by image (one query)."""
    settings = labelling_settings_for(project)
    result = ProjectConsensus(readers_per_image=settings.readers_per_image)
    labels = (
        Label.objects.filter(project=project, is_current=True)
        .filter(Q(source=LabelSource.READER) | Q(source=LabelSource.REVIEW, adjudication=True))
        .order_by("created", "pk")
        .values_list("image_id", "image__study_id", "reader__username", "values", "source")
    )
    for image_id, study_id, username, values, source in labels:
        entry = result.images.setdefault(image_id, ImageConsensus(image_id=image_id, study_id=study_id))
        if source == LabelSource.READER:
            entry.reader_values.append((username, list(values)))
        else:
            entry.adjudication = list(values)
    return result


def label_counts_by_value(project: Project) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for values in Label.objects.filter(project=project, is_current=True, source=LabelSource.READER).values_list(
        "values", flat=True
    ):
        for value in values:
            counts[value] += 1
    return dict(counts)


def get_label_export_for_user(user: User, project_id) -> tuple[Project, list[dict]]:
    """Current labels with pseudonymised identifiers only: our random image and study ids, the reader's
    username. Images carry no patient pseudonym (it lives in the admin-only link table), so none is
    exported; nothing from the original files is either."""
    project = get_project_for_user(user, project_id, roles=MANAGE_ROLES)
    rows = (
        Label.objects.filter(project=project, is_current=True)
        .order_by("created", "pk")
        .values_list(
            "image_id", "image__study_id", "reader__username", "values", "source", "adjudication", "seconds", "created"
        )
    )
    return project, [
        {
            "image_id": str(image_id),
            "study_id": str(study_id),
            "reader": username,
            "values": list(values),
            "source": source,
            "adjudication": adjudication,
            "seconds": seconds,
            "created": created.isoformat(),
        }
        for image_id, study_id, username, values, source, adjudication, seconds, created in rows
    ]
