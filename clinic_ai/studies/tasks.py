"""Pipeline steps. Each takes a primary key and calls one service that checks the row's status."""

from clinic_ai.core.tasks import cpu_task
from clinic_ai.studies import services


@cpu_task
def process_uploaded_file(upload_id: str) -> None:
    services.uploaded_file_process(upload_id=upload_id)


@cpu_task
def render_image_preview(image_id: str) -> None:
    services.image_preview_render(image_id=image_id)


@cpu_task
def housekeeping() -> None:
    """Purge abandoned partial uploads, erase old upload names, purge originals past their retention.

    Queued by celery beat every HOUSEKEEPING_INTERVAL_MINUTES (settings.CELERY_BEAT_SCHEDULE)."""
    from clinic_ai.deidentification.services import quarantine_purge_expired

    services.uploads_abandoned_purge()
    services.upload_names_erase_expired()
    quarantine_purge_expired()
