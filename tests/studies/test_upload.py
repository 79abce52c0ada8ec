"""Upload and pipeline, through the services and the JSON endpoints, steps run in this process."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from clinic_ai.core.models import AuditEvent
from clinic_ai.deidentification import services as deid_services
from clinic_ai.studies import services, storage
from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus, Study, UploadedFile, UploadStatus
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


def _status(client, batch):
    return {row["name"]: row for row in client.get(batch["status_url"]).json()["files"]}


def test_dicom_and_png_become_released_images_with_previews(client, project, radiologist, ct_bytes, png_bytes):
    client.force_login(radiologist)
    batch, _ = upload_through_api(
        client, project, {"ct/slice1.dcm": ct_bytes, "photo.png": png_bytes, "notes.txt": b"hello"}, chunk_size=7000
    )
    run_pipeline_inline()
    rows = _status(client, batch)
    assert rows["ct/slice1.dcm"]["status"] == "accepted"
    assert rows["photo.png"]["status"] == "accepted"
    assert rows["notes.txt"]["status"] == "rejected"
    assert "not a DICOM, PNG, JPEG or ZIP" in rows["notes.txt"]["reason"]
    assert client.get(batch["status_url"]).json()["complete"] is True

    images = Image.objects.filter(project=project)
    assert images.count() == 2
    for image in images:
        assert image.status == ImageStatus.RELEASED
        assert image.preview_status == PreviewStatus.READY
        assert image.quarantine_path == ""
        preview = client.get(reverse("studies:image_preview", args=[image.pk]))
        assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    ct = images.get(kind="dicom")
    assert (ct.rows, ct.columns, ct.modality) == (128, 128, "CT")
    assert ct.study.study_instance_uid and ct.series.series_instance_uid
    # Nothing the uploader typed names a file on disk, and the quarantine is empty after release.
    for root in (Path(storage.quarantine_path("x")).parent, Path(storage.media_path("x")).parent):
        names = [p.name for p in root.rglob("*") if p.is_file()]
        assert not any("slice1" in n or "photo" in n for n in names)
    for upload in UploadedFile.objects.all():
        assert not storage.quarantine_path(storage.upload_relative_path(upload.pk)).exists()


def test_the_same_file_twice_is_recognised_not_stored_twice(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ct_bytes})
    run_pipeline_inline()
    batch, _ = upload_through_api(client, project, {"copy-of-a.dcm": ct_bytes, "again.dcm": ct_bytes})
    run_pipeline_inline()
    rows = _status(client, batch)
    assert {rows["copy-of-a.dcm"]["status"], rows["again.dcm"]["status"]} == {"duplicate"}
    assert rows["again.dcm"]["image_url"] == Image.objects.get().get_absolute_url()
    assert Image.objects.count() == 1


def test_pngs_go_to_one_new_study_per_upload_or_to_the_chosen_one(client, project, radiologist, png_bytes):
    client.force_login(radiologist)
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (20, 10), "red").save(buffer, format="PNG")
    upload_through_api(client, project, {"1.png": png_bytes, "2.png": buffer.getvalue()})
    run_pipeline_inline()
    assert Study.objects.count() == 1
    study = Study.objects.get()
    assert study.images.count() == 2

    buffer = io.BytesIO()
    PILImage.new("RGB", (20, 10), "blue").save(buffer, format="JPEG")
    upload_through_api(client, project, {"3.jpg": buffer.getvalue()}, study=study)
    run_pipeline_inline()
    assert Study.objects.count() == 1
    assert study.images.filter(kind="jpeg").count() == 1


def test_a_zip_is_unpacked_and_its_members_filed(client, project, radiologist, ct_bytes, png_bytes):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("study/IM1.dcm", ct_bytes)
        zf.writestr("study/img.png", png_bytes)
        zf.writestr("../escape.dcm", ct_bytes)
        zf.writestr("__MACOSX/._IM1.dcm", b"junk")
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"export.zip": archive.getvalue()})
    run_pipeline_inline()
    rows = _status(client, batch)
    assert rows["export.zip"]["status"] == "unpacked"
    assert rows["export.zip/study/IM1.dcm"]["status"] == "accepted"
    assert rows["export.zip/study/img.png"]["status"] == "accepted"
    escaped = [row for name, row in rows.items() if "escape" in name]
    assert escaped and escaped[0]["status"] == "rejected"
    assert not any("__MACOSX" in name for name in rows)
    assert Image.objects.filter(status=ImageStatus.RELEASED).count() == 2


def test_a_truncated_dicom_is_rejected_with_a_reason_and_leaves_nothing(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"cut.dcm": ct_bytes[: len(ct_bytes) - 5000]})
    run_pipeline_inline()
    row = _status(client, batch)["cut.dcm"]
    assert row["status"] == "rejected" and "truncated" in row["reason"].lower()
    assert Image.objects.count() == 0 and Study.objects.count() == 0
    assert AuditEvent.objects.filter(action="upload.reject").exists()


def test_a_file_over_the_size_limit_is_refused_before_any_byte_is_sent(client, project, radiologist, settings):
    client.force_login(radiologist)
    response = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    )
    files_url = response.json()["files_url"]
    declared = client.post(
        files_url, data=json.dumps({"name": "huge.dcm", "size": 2 * 1024**3}), content_type="application/json"
    )
    assert declared.status_code == 400
    assert "over the 1 GB limit" in declared.json()["error"]
    assert not UploadedFile.objects.exists()


def test_chunks_resume_from_the_servers_offset_and_a_resent_chunk_is_harmless(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    declared = client.post(
        batch["files_url"], data=json.dumps({"name": "a.dcm", "size": len(ct_bytes)}), content_type="application/json"
    ).json()
    url, half = declared["chunk_url"], len(ct_bytes) // 2

    def send(offset, data):
        return client.post(
            url, data=data, content_type="application/octet-stream", headers={"X-Chunk-Offset": str(offset)}
        )

    assert send(0, ct_bytes[:half]).json() == {"received": half, "complete": False}
    # The answer was lost and the client sends the same chunk again: told where to resume.
    again = send(0, ct_bytes[:half])
    assert again.status_code == 409 and again.json()["received"] == half
    # A chunk past the end of the declared size is refused.
    assert send(half, ct_bytes[half:] + b"extra").status_code == 400
    assert send(half, ct_bytes[half:]).json() == {"received": len(ct_bytes), "complete": True}
    # The last chunk sent twice (double click, lost answer) is accepted without writing twice.
    assert send(half, ct_bytes[half:]).json() == {"received": len(ct_bytes), "complete": True}
    upload = UploadedFile.objects.get()
    assert upload.status == UploadStatus.RECEIVED
    assert storage.quarantine_path(storage.upload_relative_path(upload.pk)).read_bytes() == ct_bytes


def test_pipeline_steps_do_nothing_when_run_twice(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ct_bytes})
    upload = UploadedFile.objects.get()
    services.uploaded_file_process(upload_id=upload.pk)
    services.uploaded_file_process(upload_id=upload.pk)
    image = Image.objects.get()
    deid_services.image_deidentify(image_id=image.pk)
    deid_services.image_deidentify(image_id=image.pk)
    services.image_preview_render(image_id=image.pk)
    services.image_preview_render(image_id=image.pk)
    assert Image.objects.count() == 1
    assert AuditEvent.objects.filter(action="image.release").count() == 1
    image.refresh_from_db()
    assert image.status == ImageStatus.RELEASED and image.preview_status == PreviewStatus.READY


def test_a_multiframe_image_shows_each_frame(client, project, radiologist):
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("emri_small.dcm")).read_bytes()
    client.force_login(radiologist)
    upload_through_api(client, project, {"mf.dcm": data})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.frames == 10
    page = client.get(image.get_absolute_url()).content.decode()
    assert 'data-frames="10"' in page and 'id="image-viewer"' in page  # the viewer scrolls the frames
    pixels = [client.get(reverse("studies:image_pixels", args=[image.pk, f])) for f in (0, 9, 10)]
    assert pixels[0].status_code == pixels[1].status_code == 200 and pixels[2].status_code == 404
    assert pixels[0].content != pixels[1].content
    url = reverse("studies:image_preview", args=[image.pk])
    first = b"".join(client.get(url + "?frame=0").streaming_content)
    last = b"".join(client.get(url + "?frame=9").streaming_content)
    assert first != last
    assert client.get(url + "?frame=10").status_code == 404


def test_a_dicom_without_uids_is_filed_with_its_upload(client, project, radiologist, ct_bytes, tmp_path):
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(ct_bytes))
    del ds.StudyInstanceUID, ds.SeriesInstanceUID
    ds.save_as(tmp_path / "nouid.dcm")
    client.force_login(radiologist)
    batch, _ = upload_through_api(client, project, {"nouid.dcm": (tmp_path / "nouid.dcm").read_bytes()})
    run_pipeline_inline()
    assert _status(client, batch)["nouid.dcm"]["status"] == "accepted"
    image = Image.objects.get()
    assert image.study.study_instance_uid.startswith("2.25.")


def test_pydicom_messages_about_header_values_stay_out_of_a_workers_output():
    """pydicom warns and logs with header values in the text; a worker prints neither.

    Run in a fresh process: pytest installs its own warning filters, which would hide the effect.
    """
    import os
    import subprocess
    import sys

    from pydicom.data import get_testdata_file

    script = (
        "import django, logging; django.setup(); "
        "from clinic_ai.studies import imaging; "
        "logging.getLogger('celery').info('worker ready'); "
        f"imaging.detect_kind({get_testdata_file('badVR.dcm')!r}); "
        "\ntry:\n"
        f"    imaging.inspect_dicom({get_testdata_file('badVR.dcm')!r}, max_pixels=10**8)\n"
        "except imaging.RejectedFile as exc:\n"
        "    print('rejected:', exc.reason)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ},
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert "worker ready" in result.stderr
    assert "1A" not in result.stdout + result.stderr
    assert "pydicom" not in result.stderr


def test_an_upload_left_unfinished_is_purged_later(client, project, radiologist, ct_bytes):
    from datetime import timedelta

    from django.core.management import call_command
    from django.test import TestCase
    from django.utils import timezone

    client.force_login(radiologist)
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    declared = client.post(
        batch["files_url"], data=json.dumps({"name": "a.dcm", "size": len(ct_bytes)}), content_type="application/json"
    ).json()
    client.post(
        declared["chunk_url"],
        data=ct_bytes[:1000],
        content_type="application/octet-stream",
        headers={"X-Chunk-Offset": "0"},
    )
    upload = UploadedFile.objects.get()
    partial = storage.quarantine_path(storage.upload_relative_path(upload.pk))
    assert partial.stat().st_size == 1000
    assert services.uploads_abandoned_purge() == 0
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.uploads_abandoned_purge(now=timezone.now() + timedelta(hours=25)) == 1
    upload.refresh_from_db()
    assert upload.status == UploadStatus.REJECTED and "not finished" in upload.reason
    assert not partial.exists()
    out = io.StringIO()
    call_command("housekeeping", stdout=out)
    assert "Purged 0 unfinished uploads" in out.getvalue()
