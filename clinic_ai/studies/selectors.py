"""Reads of studies and images, always for a given user."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404

from clinic_ai.accounts.models import Membership, Role, User
from clinic_ai.accounts.selectors import UPLOAD_ROLES, projects_for_user, require_role, role_in_project
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.labelling.models import Label, LabellingSettings, LabelSource
from clinic_ai.studies.models import Image, ImageStatus, Series, Study, UploadBatch


def images_visible_to(user: User) -> QuerySet[Image]:
    """Released images of the user's projects, plus quarantined ones they may see (as
    :func:`can_see_quarantine`: they administer the project, or uploaded them and may still upload)."""
    if not user.is_authenticated:
        return Image.objects.none()
    projects = projects_for_user(user)
    if user.is_site_admin:
        return Image.objects.filter(project__in=projects)
    return Image.objects.filter(
        Q(status=ImageStatus.RELEASED)
        | Q(uploaded_by=user, project__memberships__user=user, project__memberships__role__in=UPLOAD_ROLES)
        | Q(project__memberships__user=user, project__memberships__role=Role.ADMIN),
        project__in=projects,
    ).distinct()


def can_see_quarantine(user: User, image: Image) -> bool:
    """Project admins, and the uploader while they may still upload to the project."""
    role = role_in_project(user, image.project)
    return role == Role.ADMIN or (role in UPLOAD_ROLES and image.uploaded_by_id == user.pk)


def get_image_for_user(user: User, image_id) -> Image:
    try:
        image = Image.objects.select_related("project", "study", "series").get(pk=image_id)
    except (Image.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such image") from None
    require_role(user, image.project, None)
    if image.status != ImageStatus.RELEASED and not can_see_quarantine(user, image):
        raise Http404("No such image")
    return image


def get_study_for_user(user: User, study_id) -> Study:
    try:
        study = Study.objects.select_related("project").get(pk=study_id)
    except (Study.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such study") from None
    require_role(user, study.project, None)
    if not user.is_site_admin and not images_visible_to(user).filter(study=study).exists():
        # Every image of it is held or quarantined, and not the user's to see: the study is not theirs either.
        raise Http404("No such study")
    return study


def get_batch_for_user(user: User, batch_id) -> UploadBatch:
    """Only the uploader follows an upload, and only while they may upload: file names may carry
    patient names, and an uploader moved to another role neither reads them nor finishes the batch."""
    try:
        batch = UploadBatch.objects.select_related("project").get(pk=batch_id)
    except (UploadBatch.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such upload") from None
    if batch.uploaded_by_id != user.pk:
        raise Http404("No such upload")
    require_role(user, batch.project, UPLOAD_ROLES)
    return batch


def studies_for_user(user: User, *, project) -> QuerySet[Study]:
    """Studies of a project with at least one image the user may see, newest first."""
    visible = images_visible_to(user).filter(project=project)
    return Study.objects.filter(pk__in=visible.values("study_id")).order_by("-created")


WORKLIST_SORTS = {
    "-created": ("Newest upload", ["-created"]),
    "created": ("Oldest upload", ["created"]),
    "-study_date": ("Newest study date", [F("study_date").desc(nulls_last=True), "-created"]),
    "study_date": ("Oldest study date", [F("study_date").asc(nulls_last=True), "-created"]),
    "patient_pseudonym": ("Patient pseudonym", ["patient_pseudonym", "-created"]),
    "modality": ("Modality", ["modality", "-created"]),
}


def worklist_studies(
    user: User,
    *,
    project=None,
    status: str = "",
    modality: str = "",
    date_from=None,
    date_to=None,
    patient: str = "",
    sort: str = "",
) -> QuerySet[Study]:
    """Studies with at least one image the user may see, filtered; the dates are the study's
    (shifted, as the released files have them), else its upload day."""
    visible = images_visible_to(user)
    studies = Study.objects.filter(project__in=projects_for_user(user), images__in=visible)
    if project is not None:
        studies = studies.filter(project=project)
    if status:
        studies = studies.filter(images__in=visible.filter(status=status))
    if modality:
        studies = studies.filter(modality__icontains=modality)
    if date_from:
        studies = studies.filter(Q(study_date__gte=date_from) | Q(study_date=None, created__date__gte=date_from))
    if date_to:
        studies = studies.filter(Q(study_date__lte=date_to) | Q(study_date=None, created__date__lte=date_to))
    if patient:
        studies = studies.filter(patient_pseudonym__icontains=patient)
    order = WORKLIST_SORTS.get(sort, WORKLIST_SORTS["-created"])[1]
    return (
        Study.objects.filter(pk__in=studies.values("pk"))
        .select_related("project")
        .annotate(
            image_count=Count("images", filter=Q(images__in=visible), distinct=True),
            released_count=Count("images", filter=Q(images__status=ImageStatus.RELEASED), distinct=True),
        )
        .order_by(*order)
    )


@dataclass
class AiSummary:
    """The active ensemble's results over a study's released images, in words."""

    done: int = 0
    positive: int = 0
    pending: int = 0
    failed: int = 0
    positive_name: str = "positive"

    @property
    def text(self) -> str:
        parts = []
        if self.done:
            parts.append(f"{self.positive} of {self.done} {self.positive_name}")
        if self.pending:
            parts.append(f"{self.pending} running")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts) or "No result"


def _positive(labels, class_names: list) -> bool:
    """Binary: the second class was called. Otherwise: any class but the first (the "normal" one)."""
    if not class_names:
        return False
    if len(class_names) == 2:
        return class_names[1] in labels
    return any(label != class_names[0] for label in labels)


def _positive_name(class_names: list) -> str:
    if len(class_names) == 2:
        return str(class_names[1])
    return f"not {class_names[0]}" if class_names else "positive"


def worklist_annotate(user: User, studies: list[Study]) -> list[Study]:
    """Give each study of a worklist page its AI summary (`study.ai`, None where the user's role may
    not see AI results), reviewed image count (`study.reviewed_count`) and series descriptions
    (`study.descriptions`). Five queries whatever the number of studies."""
    if not studies:
        return studies
    ids = [s.pk for s in studies]
    project_ids = {s.project_id for s in studies}
    visible = images_visible_to(user).filter(study__in=ids, status=ImageStatus.RELEASED)
    if user.is_site_admin:
        roles = {}
    else:
        roles = dict(Membership.objects.filter(user=user, project__in=project_ids).values_list("project_id", "role"))
    # Readers are not shown the AI result unless the project allows it (it biases their labels).
    readers_see_ai = set(
        LabellingSettings.objects.filter(project__in=project_ids, readers_see_ai_result=True).values_list(
            "project_id", flat=True
        )
    )
    results: dict = {}
    rows = InferenceResult.objects.filter(
        image__in=visible, ensemble__is_active=True, ensemble__project=F("image__project")
    ).values_list("image__study_id", "status", "labels")
    for study_id, status, labels in rows:
        results.setdefault(study_id, []).append((status, labels))
    reviewed = dict(
        Label.objects.filter(image__in=visible, source=LabelSource.REVIEW, is_current=True)
        .values("image__study_id")
        .annotate(n=Count("image", distinct=True))
        .values_list("image__study_id", "n")
    )
    descriptions: dict = {}
    series = Series.objects.filter(study__in=ids).exclude(series_description="")
    for study_id, text in series.values_list("study_id", "series_description"):
        if text not in descriptions.setdefault(study_id, []):
            descriptions[study_id].append(text)
    for study in studies:
        role = Role.ADMIN if user.is_site_admin else roles.get(study.project_id)
        names = list(study.project.class_names or [])
        if role == Role.CLINICIAN and study.project_id not in readers_see_ai:
            study.ai = None
        else:
            summary = AiSummary(positive_name=_positive_name(names))
            for status, labels in results.get(study.pk, []):
                if status == ResultStatus.DONE:
                    summary.done += 1
                    summary.positive += _positive(labels or [], names)
                elif status == ResultStatus.FAILED:
                    summary.failed += 1
                else:
                    summary.pending += 1
            study.ai = summary
        study.reviewed_count = reviewed.get(study.pk, 0)
        study.descriptions = descriptions.get(study.pk, [])
    return studies


def study_images_for_user(user: User, study: Study) -> QuerySet[Image]:
    return (
        images_visible_to(user)
        .filter(study=study)
        .select_related("series")
        .order_by("series__series_number", "created")
    )


def pipeline_pending() -> dict[str, list]:
    """Ids of rows whose next pipeline step has not run."""
    from clinic_ai.studies.models import PreviewStatus, UploadedFile, UploadStatus

    return {
        "uploads": list(
            UploadedFile.objects.filter(status__in=[UploadStatus.RECEIVED, UploadStatus.PROCESSING]).values_list(
                "pk", flat=True
            )
        ),
        "deidentify": list(Image.objects.filter(status=ImageStatus.QUARANTINED).values_list("pk", flat=True)),
        "mask": list(Image.objects.filter(status=ImageStatus.MASKING).values_list("pk", flat=True)),
        "preview": list(
            Image.objects.filter(status=ImageStatus.RELEASED, preview_status=PreviewStatus.PENDING).values_list(
                "pk", flat=True
            )
        ),
    }
