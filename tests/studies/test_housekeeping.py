"""Half-sent files, unpack folders and stuck files: nothing waits in the quarantine, or on the upload
page, longer than it must."""

import io
import json
import re
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from clinic_ai.studies import services, storage
from clinic_ai.studies.models import Image, ImageStatus, UploadedFile, UploadStatus
from tests.conftest import upload_through_api

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def _start(client, project, name, size):
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    declared = client.post(
        batch["files_url"], data=json.dumps({"name": name, "size": size}), content_type="application/json"
    ).json()
    return batch, declared


def _send(client, declared, data, offset=0):
    return client.post(
        declared["chunk_url"],
        data=data,
        content_type="application/octet-stream",
        headers={"X-Chunk-Offset": str(offset)},
    )


def test_a_half_sent_file_leaves_the_quarantine_within_the_hour(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    _, declared = _start(client, project, "a.dcm", len(ct_bytes))
    assert _send(client, declared, ct_bytes[:1000]).status_code == 200
    upload = UploadedFile.objects.get()
    partial = storage.quarantine_path(storage.upload_relative_path(upload.pk))
    assert partial.stat().st_size == 1000
    last_chunk = upload.modified
    minutes = settings.UPLOAD_ABANDONED_MINUTES
    assert services.uploads_abandoned_purge(now=last_chunk + timedelta(minutes=minutes - 1)) == 0
    assert partial.exists()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.uploads_abandoned_purge(now=last_chunk + timedelta(minutes=minutes + 1)) == 1
    upload.refresh_from_db()
    assert upload.status == UploadStatus.REJECTED and "not finished" in upload.reason
    assert not partial.exists()


def test_housekeeping_runs_often_enough_for_the_hour_in_make_run():
    schedule = settings.CELERY_BEAT_SCHEDULE["housekeeping"]
    assert schedule["task"] == "clinic_ai.pipeline.tasks.housekeeping"
    # The worst case: abandoned just after a run, found by the first run after the window.
    assert settings.UPLOAD_ABANDONED_MINUTES * 60 + schedule["schedule"] < 3600
    from clinic_ai.celery import app

    app.loader.import_default_modules()
    assert schedule["task"] in app.tasks
    worker_line = next(
        line for line in (REPO / "Makefile").read_text().splitlines() if "celery -A clinic_ai worker" in line
    )
    assert re.search(r"\s-B\s", worker_line), "make run's worker must run celery beat (-B)"


def test_a_file_still_arriving_when_the_upload_finishes_is_rejected_and_purged_at_once(
    client, project, radiologist, ct_bytes
):
    client.force_login(radiologist)
    batch, declared = _start(client, project, "Doe^John.dcm", len(ct_bytes))
    _send(client, declared, ct_bytes[:500])
    partial = storage.quarantine_path(storage.upload_relative_path(declared["id"]))
    assert partial.exists()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert client.post(batch["finish_url"], data="{}", content_type="application/json").status_code == 200
    assert not partial.exists()
    status = client.get(batch["status_url"]).json()
    assert status["complete"] is True
    (row,) = status["files"]
    assert row["status"] == "rejected" and "not finished" in row["reason"]
    # A late chunk for it changes nothing, and is told why.
    late = _send(client, declared, ct_bytes[500:1000], offset=500)
    assert late.status_code == 400 and "not finished" in late.json()["error"]
    assert not partial.exists()


def test_a_rejected_archive_leaves_no_unpack_folder(client, project, radiologist, ct_bytes):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("IM1.dcm", ct_bytes)
    damaged = archive.getvalue()[:-30]  # the central directory is cut: not a readable archive
    client.force_login(radiologist)
    upload_through_api(client, project, {"export.zip": damaged})
    upload = UploadedFile.objects.get()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.uploaded_file_process(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.REJECTED
    unpack = storage.quarantine_path("unpack")
    assert not (unpack / str(upload.pk)).exists()


def test_housekeeping_sweeps_unpack_folders_nobody_is_unpacking(client, project, radiologist, png_bytes):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.png": png_bytes, "b.png": png_bytes[:-1] + b"\0"})
    done, busy = UploadedFile.objects.order_by("created")
    UploadedFile.objects.filter(pk=done.pk).update(status=UploadStatus.REJECTED)
    unpack = storage.quarantine_path("unpack")
    left = [unpack / str(done.pk), unpack / str(uuid.uuid4()), unpack / "not-an-id", unpack / str(busy.pk)]
    for folder in left:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "member.dcm").write_bytes(b"patient data")
    call_command("housekeeping", stdout=io.StringIO())
    assert [folder.exists() for folder in left] == [False, False, False, True]  # busy: status RECEIVED


def test_the_upload_page_stops_waiting_for_a_file_nothing_moves(client, project, radiologist, png_bytes, settings):
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"photo.png": png_bytes})
    services.uploaded_file_process(upload_id=UploadedFile.objects.get().pk)  # filed; no worker de-identifies it
    image = Image.objects.get()
    assert image.status == ImageStatus.QUARANTINED
    status = client.get(batch["status_url"]).json()
    assert status["complete"] is False and status["files"][0]["status"] == "processing"
    Image.objects.filter(pk=image.pk).update(
        modified=timezone.now() - timedelta(minutes=settings.UPLOAD_STUCK_MINUTES + 1)
    )
    status = client.get(batch["status_url"]).json()
    assert status["complete"] is True
    (row,) = status["files"]
    assert row["status"] == "stuck" and f"{settings.UPLOAD_STUCK_MINUTES} minutes" in row["reason"]


def test_sizes_print_sanely_for_any_number():
    assert services.human_size(0) == "0 bytes"
    assert services.human_size(1) == "1 byte"
    assert services.human_size(1536) == "1.5 KB"
    assert services.human_size(1024**3) == "1 GB"
    assert services.human_size(10**15) == "909.5 TB"
    assert services.human_size(10**400) == "more than 1024 PB"


@pytest.mark.parametrize("size", [2 * 1024**3, 10**25, 909494701772928256 * 1024**4, 10**400])
def test_an_absurd_declared_size_is_refused_with_the_limit(client, project, radiologist, size):
    client.force_login(radiologist)
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    response = client.post(
        batch["files_url"], data=json.dumps({"name": "a.dcm", "size": size}), content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "over the 1 GB limit" in error and "TB" not in error and "PB" not in error
    assert not UploadedFile.objects.exists()
