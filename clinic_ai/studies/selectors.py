"""Reads of studies and images, always for a given user."""

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from clinic_ai.accounts.models import Role, User
from clinic_ai.accounts.selectors import UPLOAD_ROLES, projects_for_user, require_role, role_in_project
from clinic_ai.studies.models import Image, ImageStatus, Study, UploadBatch


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


def worklist_studies(
    user: User,
    *,
    project=None,
    status: str = "",
    modality: str = "",
    date_from=None,
    date_to=None,
) -> QuerySet[Study]:
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
    return (
        Study.objects.filter(pk__in=studies.values("pk"))
        .select_related("project")
        .annotate(
            image_count=Count("images", filter=Q(images__in=visible), distinct=True),
            released_count=Count("images", filter=Q(images__status=ImageStatus.RELEASED), distinct=True),
        )
        .order_by("-created")
    )


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
