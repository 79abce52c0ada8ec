"""The pipeline's order, in one place.

    upload received ─▶ process_uploaded_file ─┬─▶ (a zip) each member ─▶ process_uploaded_file
                                               └─▶ (an image filed) deidentify_image
    deidentify_image ─┬─▶ released ─▶ render_image_preview
                      │             └─▶ run_inference (the project's active ensemble, "gpu" queue)
                      ├─▶ held: a person draws boxes (image_mask_request) ─▶ mask_image ─▶ released ─▶ …
                      └─▶ rejected (nothing kept)
    upload batch finished ─▶ housekeeping
    model file registered ─▶ validate_model_version ("gpu" queue: it loads the model)

Each task takes a primary key, calls one service, and queues the next step from the service's
outcome. Services never queue tasks, so no app's services import another app's tasks. Each service
checks its row's status, so a task delivered twice, or queued again by `pipeline_resume`, changes
nothing. Tasks run outside transactions: the service has committed when its outcome comes back.

TensorFlow is imported only inside the bodies of the "gpu" tasks (`clinic_ai.inference.worker`), so
the web process, which imports this module to queue steps, never loads it.
"""

from __future__ import annotations

from django.db import transaction

from clinic_ai.core.tasks import cpu_task, gpu_task
from clinic_ai.deidentification import services as deid_services
from clinic_ai.inference import services as inference_services
from clinic_ai.studies import selectors as study_selectors
from clinic_ai.studies import services as study_services
from clinic_ai.studies.models import ImageStatus

# --- Entry points: a person's request has committed a row that a step now works on ---------------


def upload_received(upload_id) -> None:
    """A file is whole in quarantine (or unpacked from a zip): validate and file it."""
    _queue(process_uploaded_file, upload_id)


def mask_requested(image_id) -> None:
    """A reviewer drew the boxes of a held image: a worker masks every frame and releases it."""
    _queue(mask_image, image_id)


def batch_finished() -> None:
    transaction.on_commit(housekeeping.delay)


def inference_requested(result_ids) -> None:
    """Result rows were queued (a re-run, a whole project, a new image): a "gpu" worker runs them."""
    for result_id in result_ids:
        _queue(run_inference, result_id)


def model_registered(model_version_id) -> None:
    _queue(validate_model_version, model_version_id)


def _queue(task, pk) -> None:
    # On commit: the worker must find the row as the request left it. Outside a transaction
    # Django runs the callback at once.
    key = str(pk)
    transaction.on_commit(lambda: task.delay(key))


# --- The steps -------------------------------------------------------------------------------------


@cpu_task
def process_uploaded_file(upload_id: str) -> None:
    outcome = study_services.uploaded_file_process(upload_id=upload_id)
    for member_id in outcome.members:
        upload_received(member_id)
    if outcome.image_id is not None:
        _queue(deidentify_image, outcome.image_id)


@cpu_task
def deidentify_image(image_id: str) -> None:
    _after_release_gate(image_id, deid_services.image_deidentify(image_id=image_id))


@cpu_task
def mask_image(image_id: str) -> None:
    _after_release_gate(image_id, deid_services.image_mask_apply(image_id=image_id))


def _after_release_gate(image_id, status) -> None:
    if status == ImageStatus.RELEASED:
        _queue(render_image_preview, image_id)
        inference_requested(inference_services.results_for_released_image(image_id=image_id))


@cpu_task
def render_image_preview(image_id: str) -> None:
    study_services.image_preview_render(image_id=image_id)


@gpu_task(bind=True)
def run_inference(self, result_id: str) -> None:
    """One result row, batched with the other rows waiting for the same ensemble. The claim is the
    task's id: delivered again after its worker died, the task takes its own rows back."""
    from clinic_ai.inference import worker  # TensorFlow: workers only

    worker.results_run(result_ids=[result_id], claim=self.request.id or f"direct-{result_id}")


@gpu_task
def validate_model_version(model_version_id: str) -> None:
    from clinic_ai.inference import worker  # TensorFlow: workers only

    worker.model_version_validate(model_version_id=model_version_id)


@cpu_task
def housekeeping() -> None:
    """Purge abandoned partial uploads, erase old upload names, purge originals past their retention.

    Queued by celery beat every HOUSEKEEPING_INTERVAL_MINUTES (settings.CELERY_BEAT_SCHEDULE) and
    once after every finished upload."""
    study_services.uploads_abandoned_purge()
    study_services.upload_names_erase_expired()
    deid_services.quarantine_purge_expired()


def resume() -> dict[str, int]:
    """Queue again every step whose row says it has not run (Redis here keeps nothing on disk)."""
    pending = study_selectors.pipeline_pending()
    steps = {
        "uploads": process_uploaded_file,
        "deidentify": deidentify_image,
        "mask": mask_image,
        "preview": render_image_preview,
    }
    inference_services.results_stale_requeue()
    pending["inference"] = inference_services.results_queued()
    steps["inference"] = run_inference
    for step, task in steps.items():
        for pk in pending[step]:
            task.delay(str(pk))
    return {step: len(ids) for step, ids in pending.items()}
