"""Writes of the model registry, ensembles and inference results. No TensorFlow here: the web
process uses this module; the worker side (`clinic_ai.inference.worker`) loads the models.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clinic_ai.accounts.models import Project, User
from clinic_ai.core.services import audit_record
from clinic_ai.inference.models import (
    Ensemble,
    EnsembleMember,
    InferenceResult,
    ModelStatus,
    ModelVersion,
    ResultStatus,
)
from clinic_ai.studies import storage
from clinic_ai.studies.models import Image, ImageStatus

BATCH_LIMIT = 32
"""Results claimed by one task: images waiting for the same ensemble are run as one batch."""

STALE_AFTER = timedelta(minutes=15)
"""A result RUNNING this long without its task finishing it is taken as lost (see `results_stale_requeue`)."""


class RegistryRefused(Exception):
    """A registry change that is not made; `reason` is for the administrator."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- Registry ---------------------------------------------------------------------------------------


def _store_model_file(source, relative: str) -> str:
    """Copy an uploaded or local file to MEDIA_ROOT/relative atomically; returns its sha256."""
    target = storage.ensure_parent(storage.media_path(relative))
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            chunks = source.chunks() if hasattr(source, "chunks") else _file_chunks(Path(source))
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _file_chunks(path: Path):
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1024 * 1024), b"")


def model_version_register(
    *,
    actor: User | None,
    project: Project,
    source,
    name: str,
    version: str,
    preprocessing: dict,
    class_names: list[str],
    task_type: str,
    architecture: str = "",
    last_conv_layer: str = "",
    validation: dict | None = None,
    model_card: str = "",
) -> ModelVersion:
    """Store a `.keras` file and its metadata; it stays VALIDATING until a worker has loaded it."""
    if list(class_names) != list(project.class_names):
        raise RegistryRefused("The model's class names must be the project's, in the same order.")
    if task_type != project.task_type:
        raise RegistryRefused("The model's task type must be the project's.")
    if ModelVersion.objects.filter(project=project, name=name, version=version).exists():
        raise RegistryRefused("This project already has a model with that name and version.")
    with transaction.atomic():
        model = ModelVersion(
            project=project,
            name=name,
            version=version,
            architecture=architecture,
            preprocessing=preprocessing,
            class_names=list(class_names),
            task_type=task_type,
            last_conv_layer=last_conv_layer,
            validation=validation or {},
            model_card=model_card,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        model.file_path = f"models/{project.pk}/{model.pk}.keras"
        model.sha256 = _store_model_file(source, model.file_path)
        path = storage.media_path(model.file_path)
        try:
            model.save()
        except BaseException:
            storage.purge(path)
            raise
        audit_record(action="model.register", actor=actor, project=project, obj=model, data={"sha256": model.sha256})
    return model


def model_version_validated(*, model_version_id, refused: str | None, last_conv_layer: str = "") -> ModelVersion | None:
    """Record what the worker found when it loaded the file."""
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().select_related("project").filter(pk=model_version_id).first()
        if model is None or model.status != ModelStatus.VALIDATING:
            return model
        if refused:
            model.status, model.status_reason = ModelStatus.INVALID, refused[:255]
        else:
            model.status, model.status_reason = ModelStatus.VALID, ""
            model.last_conv_layer = model.last_conv_layer or last_conv_layer
        model.save(update_fields=["status", "status_reason", "last_conv_layer", "modified"])
        audit_record(
            action="model.validate",
            project=model.project,
            obj=model,
            data={"status": model.status, "reason": model.status_reason},
        )
    return model


def ensemble_create(
    *,
    actor: User | None,
    project: Project,
    name: str,
    slug: str,
    members: list[tuple[ModelVersion, float]],
    version: str = "1",
    temperature: float = 1.0,
    threshold: float = 0.5,
    combination: str = "mean_logit",
    tta: bool = False,
    validation: dict | None = None,
    model_card: str = "",
) -> Ensemble:
    if not members:
        raise RegistryRefused("An ensemble needs at least one model.")
    if any(model.project_id != project.pk for model, _ in members):
        raise RegistryRefused("Every member must be a model of this project.")
    if len({model.pk for model, _ in members}) != len(members):
        raise RegistryRefused("A model can be a member only once.")
    if not all(0.0 < float(weight) < 1e6 for _, weight in members):
        raise RegistryRefused("Weights must be positive numbers.")
    if not (0.0 < threshold < 1.0) or not (0.0 < temperature < 100.0):
        raise RegistryRefused("The threshold must lie between 0 and 1 and the temperature between 0 and 100.")
    if len({repr(sorted(model.preprocessing.items())) for model, _ in members}) != 1:
        raise RegistryRefused("The members must share one preprocessing (input size, channels, scaling).")
    if Ensemble.objects.filter(slug=slug).exists():
        raise RegistryRefused("That short name is taken.")
    with transaction.atomic():
        ensemble = Ensemble.objects.create(
            project=project,
            name=name,
            slug=slug,
            version=version,
            temperature=temperature,
            threshold=threshold,
            combination=combination,
            tta=tta,
            validation=validation or {},
            model_card=model_card,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        for position, (model, weight) in enumerate(members):
            EnsembleMember.objects.create(
                ensemble=ensemble, model_version=model, weight=float(weight), position=position
            )
        audit_record(
            action="ensemble.create",
            actor=actor,
            project=project,
            obj=ensemble,
            data={"members": [str(m.pk) for m, _ in members], "threshold": threshold, "temperature": temperature},
        )
    return ensemble


@transaction.atomic
def ensemble_activate(*, actor: User | None, ensemble: Ensemble) -> Ensemble:
    """Make this the project's ensemble: new released images are run through it."""
    ensemble = Ensemble.objects.select_for_update().select_related("project").get(pk=ensemble.pk)
    members = list(ensemble.members.select_related("model_version"))
    if not members or any(m.model_version.status != ModelStatus.VALID for m in members):
        raise RegistryRefused("Every member must be validated before the ensemble can be activated.")
    Ensemble.objects.filter(project=ensemble.project, is_active=True).exclude(pk=ensemble.pk).update(is_active=False)
    if not ensemble.is_active:
        ensemble.is_active = True
        ensemble.save(update_fields=["is_active", "modified"])
        audit_record(action="ensemble.activate", actor=actor, project=ensemble.project, obj=ensemble)
    return ensemble


def ensemble_spec(ensemble: Ensemble) -> dict:
    """What the runner needs (`backends.runtime.load_ensemble`): member files as absolute paths."""
    members = list(ensemble.members.select_related("model_version").order_by("position"))
    first = members[0].model_version
    return {
        "task": first.task_type,
        "class_names": list(first.class_names),
        "preprocessing": first.preprocessing,
        "temperature": ensemble.temperature,
        "threshold": ensemble.threshold,
        "combination": ensemble.combination,
        "tta": ensemble.tta,
        "members": [
            {
                "name": m.model_version.name,
                "file": str(storage.media_path(m.model_version.file_path)),
                "weight": m.weight,
                "last_conv_layer": m.model_version.last_conv_layer or None,
            }
            for m in members
        ],
        "_base_dir": str(settings.MEDIA_ROOT),
    }


# --- Results ----------------------------------------------------------------------------------------


def _request(image: Image, ensemble: Ensemble, *, rerun: bool) -> InferenceResult | None:
    """A QUEUED row for (image, ensemble), or None when one is already queued, running or (unless
    `rerun`) finished."""
    now = timezone.now()
    result, created = InferenceResult.objects.get_or_create(
        image=image, ensemble=ensemble, defaults={"status": ResultStatus.QUEUED, "queued_at": now}
    )
    if created:
        return result
    result = InferenceResult.objects.select_for_update().get(pk=result.pk)
    if result.status == ResultStatus.FAILED or (rerun and result.status == ResultStatus.DONE):
        result.status, result.reason, result.claim, result.queued_at = ResultStatus.QUEUED, "", "", now
        result.started_at = result.finished_at = None
        result.save(update_fields=["status", "reason", "claim", "queued_at", "started_at", "finished_at", "modified"])
        return result
    return None


@transaction.atomic
def results_for_released_image(*, image_id) -> list:
    """The result rows to queue for a newly released image: its project's active ensemble."""
    image = Image.objects.filter(pk=image_id, status=ImageStatus.RELEASED).select_related("project").first()
    if image is None:
        return []
    ensemble = Ensemble.objects.filter(project=image.project, is_active=True).first()
    if ensemble is None:
        return []
    result = _request(image, ensemble, rerun=False)
    return [result.pk] if result is not None else []


@transaction.atomic
def result_rerun(*, actor: User, image: Image) -> InferenceResult | None:
    """Run a released image through its project's active ensemble again (done or failed)."""
    ensemble = Ensemble.objects.filter(project=image.project, is_active=True).first()
    if ensemble is None or image.status != ImageStatus.RELEASED:
        raise RegistryRefused("This project has no active ensemble to run.")
    result = _request(image, ensemble, rerun=True)
    if result is not None:
        audit_record(action="inference.rerun", actor=actor, project=image.project, obj=result)
    return result


@transaction.atomic
def project_results_queue(*, actor: User, project: Project) -> list:
    """Queue every released image of the project that has no result (or a failed one) from the
    active ensemble. Returns the ids to queue. A few statements whatever the project's size."""
    ensemble = Ensemble.objects.filter(project=project, is_active=True).first()
    if ensemble is None:
        raise RegistryRefused("This project has no active ensemble to run.")
    # A subquery, not exclude() across the relation: with two conditions there, an image with a
    # done result of another ensemble and a failed one of this one would be left out.
    taken = InferenceResult.objects.filter(
        ensemble=ensemble, status__in=[ResultStatus.DONE, ResultStatus.QUEUED, ResultStatus.RUNNING]
    ).values("image_id")
    image_ids = list(
        Image.objects.filter(project=project, status=ImageStatus.RELEASED)
        .exclude(pk__in=taken)
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    InferenceResult.objects.bulk_create(
        [
            InferenceResult(image_id=pk, ensemble=ensemble, status=ResultStatus.QUEUED, queued_at=now)
            for pk in image_ids
        ],
        ignore_conflicts=True,  # a row made meanwhile by the pipeline stands
    )
    InferenceResult.objects.filter(ensemble=ensemble, image_id__in=image_ids, status=ResultStatus.FAILED).update(
        status=ResultStatus.QUEUED, reason="", claim="", queued_at=now, started_at=None, finished_at=None
    )
    ids = list(
        InferenceResult.objects.filter(
            ensemble=ensemble, image_id__in=image_ids, status=ResultStatus.QUEUED
        ).values_list("pk", flat=True)
    )
    audit_record(
        action="inference.queue_project", actor=actor, project=project, obj=ensemble, data={"images": len(ids)}
    )
    return ids


def results_claim(*, result_ids, claim: str, limit: int = BATCH_LIMIT) -> list[InferenceResult]:
    """Take the rows this task works on: its own (queued, or running under this same claim: the task
    came back after its worker died), then other queued rows of the same ensembles, up to `limit`."""
    with transaction.atomic():
        mine = Q(pk__in=list(result_ids), status=ResultStatus.QUEUED) | Q(status=ResultStatus.RUNNING, claim=claim)
        rows = list(
            InferenceResult.objects.select_for_update(skip_locked=True).filter(mine).order_by("queued_at")[:limit]
        )
        ensembles = {r.ensemble_id for r in rows}
        if ensembles and len(rows) < limit:
            rows += list(
                InferenceResult.objects.select_for_update(skip_locked=True)
                .filter(ensemble_id__in=ensembles, status=ResultStatus.QUEUED)
                .exclude(pk__in=[r.pk for r in rows])
                .order_by("queued_at")[: limit - len(rows)]
            )
        now = timezone.now()
        for row in rows:
            row.status, row.claim, row.started_at = ResultStatus.RUNNING, claim, now
            row.attempts = F("attempts") + 1
            row.save(update_fields=["status", "claim", "started_at", "attempts", "modified"])
    return list(
        InferenceResult.objects.filter(pk__in=[r.pk for r in rows]).select_related(
            "image", "image__project", "ensemble"
        )
    )


REASON_NOT_FINITE = "The models gave a probability that is not a finite number."


def _finite(value) -> bool:
    """Every number in ``value`` (nested dicts and lists) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def result_finish(*, result_id, claim: str, result: dict, heatmaps: dict, timings: dict, versions: dict) -> bool:
    """Store a finished result; only the task that claimed the row may (each job finishes once)."""
    with transaction.atomic():
        row = InferenceResult.objects.select_for_update().filter(pk=result_id).select_related("image__project").first()
        if row is None or row.status != ResultStatus.RUNNING or row.claim != claim:
            return False
        if not _finite(result):
            # A broken model (NaN, infinity): not a result anyone may read, rank or review. (PostgreSQL
            # would refuse the JSON anyway, and the row would be retried for ever.)
            row.status, row.reason, row.finished_at = ResultStatus.FAILED, REASON_NOT_FINITE, timezone.now()
            row.save(update_fields=["status", "reason", "finished_at", "modified"])
            audit_record(action="inference.failed", project=row.image.project, obj=row, data={"reason": row.reason})
            return True
        row.status, row.reason, row.finished_at = ResultStatus.DONE, "", timezone.now()
        row.probabilities = result["probabilities"]
        row.labels = result["labels"]
        row.members = result["members"]
        row.uncertainty = result["uncertainty"]
        row.target_class = result["target_class"]
        row.heatmaps, row.timings, row.versions = heatmaps, timings, versions
        row.save()
        audit_record(
            action="inference.done",
            project=row.image.project,
            obj=row,
            data={"image": str(row.image_id), "ensemble": str(row.ensemble_id), "attempts": row.attempts},
        )
    return True


def result_fail(*, result_id, claim: str, reason: str) -> bool:
    with transaction.atomic():
        row = InferenceResult.objects.select_for_update().filter(pk=result_id).select_related("image__project").first()
        if row is None or row.status != ResultStatus.RUNNING or row.claim != claim:
            return False
        row.status, row.reason, row.finished_at = ResultStatus.FAILED, reason[:255], timezone.now()
        row.save(update_fields=["status", "reason", "finished_at", "modified"])
        audit_record(action="inference.failed", project=row.image.project, obj=row, data={"reason": row.reason})
    return True


def results_stale_requeue(*, now=None) -> list:
    """Rows left RUNNING by a task that never came back (its message was lost with the broker): queued
    again, under a new claim."""
    cutoff = (now or timezone.now()) - STALE_AFTER
    with transaction.atomic():
        stale = list(
            InferenceResult.objects.select_for_update(skip_locked=True)
            .filter(status=ResultStatus.RUNNING, started_at__lte=cutoff)
            .values_list("pk", flat=True)
        )
        InferenceResult.objects.filter(pk__in=stale).update(status=ResultStatus.QUEUED, claim="")
    return stale


def heatmap_relative_path(result: InferenceResult, name: str) -> str:
    return f"heatmaps/{result.image.project_id}/{result.pk}/{name}.png"


def heatmaps_purge(result: InferenceResult) -> None:
    folder = storage.media_path(f"heatmaps/{result.image.project_id}/{result.pk}")
    shutil.rmtree(folder, ignore_errors=True)


def results_queued() -> list:
    return list(InferenceResult.objects.filter(status=ResultStatus.QUEUED).values_list("pk", flat=True))
