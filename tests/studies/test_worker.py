"""The pipeline through Redis and a real `celery worker` process."""

import pytest

from clinic_ai.pipeline.tasks import deidentify_image, render_image_preview
from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus
from tests.conftest import upload_through_api, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_process_takes_an_upload_from_redis_to_a_preview(
    celery_worker_process, client, project, radiologist, ct_bytes, png_bytes
):
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"a.dcm": ct_bytes, "b.png": png_bytes, "c.bin": b"\0" * 300})
    status = wait_for(
        lambda: (body := client.get(batch["status_url"]).json())["complete"] and body,
        timeout=90,
        message="the worker to process the upload",
    )
    by_name = {row["name"]: row for row in status["files"]}
    assert by_name["a.dcm"]["status"] == by_name["b.png"]["status"] == "accepted"
    assert by_name["c.bin"]["status"] == "rejected"
    assert all(by_name[n]["preview_url"] for n in ("a.dcm", "b.png"))
    images = Image.objects.all()
    assert {(i.status, i.preview_status) for i in images} == {(ImageStatus.RELEASED, PreviewStatus.READY)}


def test_tasks_delivered_twice_change_nothing(celery_worker_process, client, project, radiologist, png_bytes):
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"b.png": png_bytes})
    wait_for(lambda: client.get(batch["status_url"]).json()["complete"], timeout=90, message="the first pass")
    image = Image.objects.get()
    before = (image.released_at, image.preview_path, image.modified)
    results = [deidentify_image.delay(str(image.pk)), render_image_preview.delay(str(image.pk))]
    # Tasks ignore their results, so wait on the queue draining instead.
    from clinic_ai.celery import app

    wait_for(
        lambda: (
            not any((app.control.inspect(timeout=1).active() or {}).values())
            and not app.connection().default_channel.client.llen("cpu")
        ),
        timeout=30,
        message="the queue to drain",
    )
    assert results
    image.refresh_from_db()
    assert (image.released_at, image.preview_path, image.modified) == before


def test_steps_lost_with_the_broker_are_found_and_queued_again(
    celery_worker_process, client, project, radiologist, png_bytes
):
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from clinic_ai.celery import app

    client.force_login(radiologist)
    # Stop consuming, upload, and lose the queued task as a Redis restart would.
    app.control.cancel_consumer("cpu", reply=True)
    try:
        batch, _ = upload_through_api(client, project, {"b.png": png_bytes})
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("cpu")
    finally:
        app.control.add_consumer("cpu", reply=True)
    assert not client.get(batch["status_url"]).json()["complete"]
    call_command("pipeline_resume")
    wait_for(lambda: client.get(batch["status_url"]).json()["complete"], timeout=90, message="the resumed pipeline")
    assert Image.objects.get().preview_status == PreviewStatus.READY
