"""Reads of models, ensembles and results, always for a given user."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404

from clinic_ai.accounts.models import Project, Role, User
from clinic_ai.accounts.selectors import require_role
from clinic_ai.inference.models import Ensemble, InferenceResult, ModelVersion, ResultStatus
from clinic_ai.labelling.selectors import may_see_ai_result
from clinic_ai.studies.models import Image, ImageStatus
from clinic_ai.studies.selectors import get_image_for_user


def active_ensemble(project: Project) -> Ensemble | None:
    return Ensemble.objects.filter(project=project, is_active=True).first()


def result_for_image(image: Image) -> InferenceResult | None:
    """The result of the project's active ensemble for an image the caller may already see."""
    return (
        InferenceResult.objects.filter(image=image, ensemble__is_active=True, ensemble__project=image.project_id)
        .select_related("ensemble")
        .first()
    )


def get_result_for_user(user: User, result_id) -> InferenceResult:
    try:
        result = InferenceResult.objects.select_related("ensemble").get(pk=result_id)
    except (InferenceResult.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such result") from None
    image = get_image_for_user(user, result.image_id)  # 404/403 as for the image itself
    require_ai_visible(user, image)
    return result


def require_ai_visible(user: User, image: Image) -> None:
    """403 for a reader of a project whose readers label blind (see `may_see_ai_result`)."""
    if not may_see_ai_result(user, image.project):
        raise PermissionDenied("In this project, readers do not see the AI result.")


def get_ensemble_for_admin(user: User, ensemble_id) -> Ensemble:
    try:
        ensemble = Ensemble.objects.select_related("project").get(pk=ensemble_id)
    except (Ensemble.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such ensemble") from None
    require_role(user, ensemble.project, (Role.ADMIN,))
    return ensemble


def registry_for_project(project: Project) -> dict:
    models = list(
        ModelVersion.objects.filter(project=project).select_related("created_by").order_by("name", "-created")
    )
    ensembles = list(
        Ensemble.objects.filter(project=project)
        .prefetch_related("members__model_version")
        .order_by("-is_active", "-created")
    )
    return {"models": models, "ensembles": ensembles}


def project_inference_progress(project: Project) -> dict:
    """Counts of the active ensemble's results over the project's released images."""
    ensemble = active_ensemble(project)
    released = Image.objects.filter(project=project, status=ImageStatus.RELEASED).count()
    if ensemble is None:
        return {"ensemble": None, "images": released, "done": 0, "failed": 0, "queued": 0, "running": 0}
    counts = InferenceResult.objects.filter(ensemble=ensemble, image__status=ImageStatus.RELEASED).aggregate(
        done=Count("pk", filter=Q(status=ResultStatus.DONE)),
        failed=Count("pk", filter=Q(status=ResultStatus.FAILED)),
        queued=Count("pk", filter=Q(status=ResultStatus.QUEUED)),
        running=Count("pk", filter=Q(status=ResultStatus.RUNNING)),
    )
    return {"ensemble": ensemble.label, "images": released, **counts}
