"""PII masking in the upload pipeline: nothing planted leaves quarantine, held images, masks, templates."""

import io
import json
import logging

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from clinic_ai.core.models import AuditEvent
from clinic_ai.deid import process as pipeline
from clinic_ai.deidentification import services
from clinic_ai.deidentification.models import MaskTemplate, PatientLink
from clinic_ai.studies import storage
from clinic_ai.studies.models import Image, ImageStatus, Study, UploadedFile
from tests.conftest import run_pipeline_inline, upload_through_api

from .corpus import CORPUS_SOURCES, NEEDLES, build_file
from .leakscan import collect_source_facts, every_table_as_text, scan_released
from .synthetic import (
    BURNED_TEXT,
    jpeg_with_metadata,
    png_with_metadata,
    text_box,
    ultrasound_bytes,
)

pytestmark = pytest.mark.django_db


def _released_bytes(image: Image) -> bytes:
    return storage.media_path(image.released_path).read_bytes()


def _release_held_without_boxes(user) -> None:
    from django.test import TestCase

    for image in Image.objects.filter(status=ImageStatus.HELD):
        services.image_mask_request(user=user, image_id=image.pk, boxes=[], save_template=False, confirm_no_text=True)
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.image_mask_apply(image_id=image.pk)  # what the mask_image task does


def test_planted_identifiers_survive_nowhere(client, project, radiologist, caplog):
    corpus = {name: build_file(name) for name in CORPUS_SOURCES}  # (a deflated one is released inflated)
    # Browsers send folder paths, and folders are often named after the patient.
    files = {f"Doe^Jane^Quincy MRN55501234/IM{i}.dcm": item.data for i, item in enumerate(corpus.values())}
    files["photo.png"] = png_with_metadata()
    files["photo.jpg"] = jpeg_with_metadata()
    client.force_login(radiologist)
    with caplog.at_level(logging.DEBUG):
        upload_through_api(client, project, files)
        run_pipeline_inline()
        _release_held_without_boxes(radiologist)
        run_pipeline_inline()
    statuses = dict(UploadedFile.objects.values_list("client_name", "status"))
    rejected = {name: s for name, s in statuses.items() if s != "accepted"}
    assert not rejected, rejected
    images = Image.objects.all()
    assert images.count() == len(files)
    assert {i.status for i in images} == {ImageStatus.RELEASED}

    sources = {item.data: item for item in corpus.values()}
    for image in images.filter(kind="dicom"):
        data = _released_bytes(image)
        upload = UploadedFile.objects.get(image=image)
        original = files[upload.client_name]
        facts = collect_source_facts(pydicom.dcmread(io.BytesIO(original)), identifying_texts=True)
        assert scan_released(data, facts=facts) == [], sources[original].name
        released = pydicom.dcmread(io.BytesIO(data))
        assert released.PatientIdentityRemoved == "YES"
        assert released.StudyInstanceUID == image.study.study_instance_uid
        assert released.SOPInstanceUID == image.sop_instance_uid
    for image in images.exclude(kind="dicom"):
        data = _released_bytes(image)
        for needle in ("Doe^Jane", "MRN55501234", "Mungos", "House^Gregory"):
            assert needle.encode() not in data

    # The file names are kept while the uploader may look at the upload, then erased.
    from datetime import timedelta

    from django.utils import timezone

    from clinic_ai.studies.services import upload_names_erase_expired

    assert upload_names_erase_expired(now=timezone.now() + timedelta(hours=1)) == 0
    assert upload_names_erase_expired(now=timezone.now() + timedelta(hours=25)) == 1
    # No table but the link table holds a planted identifier, an original UID or date (in the
    # header's form or a date column's), or an identifying text of any source file.
    forbidden = {needle.lower() for needle in NEEDLES}
    for data in sources:
        facts = collect_source_facts(pydicom.dcmread(io.BytesIO(data)), identifying_texts=True)
        forbidden |= {uid.lower() for uid in facts.uids}
        forbidden |= {d for d in facts.dates} | {f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in facts.dates if len(d) == 8}
        forbidden |= {t.lower() for t in facts.texts if len(t) >= 4}
    for table, text in every_table_as_text().items():
        text = text.lower()
        for value in forbidden:
            assert value not in text, (table, value)
    for record in caplog.records:
        message = (record.getMessage() + (record.exc_text or "")).lower()
        for value in forbidden:
            assert value not in message, record.name
    # Nothing of these uploads is left in quarantine once they are released.
    for image in images:
        assert image.quarantine_path == image.deid_path == ""
        assert not list(storage.quarantine_path("deid/x").parent.glob(f"*{image.pk}*")), (
            image.modality,
            image.kind,
            AuditEvent.objects.filter(object_id=str(image.pk)).values_list("action", flat=True)[::1],
        )
    for upload in UploadedFile.objects.all():
        assert not storage.quarantine_path(storage.upload_relative_path(upload.pk)).exists()
    # The link table holds the one planted patient, under one pseudonym.
    link = PatientLink.objects.get(project=project)
    assert "MRN55501234" in link.original_key and link.pseudonym.startswith("ANON-")


def test_two_batches_of_one_study_keep_one_new_study_uid(client, project, radiologist):
    first = build_file("ct", sop_instance_uid="1.2.826.0.1.3680043.8.498.1", study_uid="1.2.826.0.1.3680043.8.498.9")
    second = build_file("ct", sop_instance_uid="1.2.826.0.1.3680043.8.498.2", study_uid="1.2.826.0.1.3680043.8.498.9")
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": first.data})
    run_pipeline_inline()
    upload_through_api(client, project, {"b.dcm": second.data})
    run_pipeline_inline()
    study = Study.objects.get()
    released = [pydicom.dcmread(io.BytesIO(_released_bytes(i))) for i in Image.objects.all()]
    assert {ds.StudyInstanceUID for ds in released} == {study.study_instance_uid}
    assert study.study_instance_uid != "1.2.826.0.1.3680043.8.498.9"
    assert len({ds.SOPInstanceUID for ds in released}) == 2
    assert {ds.PatientID for ds in released} == {PatientLink.objects.get().pseudonym}
    assert len({ds.StudyDate for ds in released}) == 1 and released[0].StudyDate != "20240311"


def test_two_patients_never_share_a_pseudonym(client, project, radiologist):
    jane = build_file("ct", patient_name="Doe^Jane", patient_id="P-1")
    john = build_file("mr", patient_name="Doe^John", patient_id="P-2")
    jane_again = build_file("mr", patient_name="Doe^Jane", patient_id="P-1", sop_instance_uid="1.2.3.4.5.6.7")
    client.force_login(radiologist)
    upload_through_api(client, project, {"1.dcm": jane.data, "2.dcm": john.data, "3.dcm": jane_again.data})
    run_pipeline_inline()
    ids = {
        UploadedFile.objects.get(image=i).client_name: pydicom.dcmread(io.BytesIO(_released_bytes(i))).PatientID
        for i in Image.objects.all()
    }
    assert ids["1.dcm"] == ids["3.dcm"] != ids["2.dcm"]
    assert PatientLink.objects.count() == 2


def test_ordinary_pixels_are_unchanged_and_compressed_data_stays_compressed(client, project, radiologist):
    ct, rle = build_file("ct"), build_file("rle_multiframe")
    client.force_login(radiologist)
    upload_through_api(client, project, {"ct.dcm": ct.data, "rle.dcm": rle.data})
    run_pipeline_inline()
    for name, item in (("ct.dcm", ct), ("rle.dcm", rle)):
        image = UploadedFile.objects.get(client_name=name).image
        assert image.status == ImageStatus.RELEASED, image.hold_reason
        before = pydicom.dcmread(io.BytesIO(item.data))
        after = pydicom.dcmread(io.BytesIO(_released_bytes(image)))
        assert after.PixelData == before.PixelData
        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID


@pytest.mark.parametrize("flag", [None, "NO", "YES"])
def test_text_in_the_pixels_holds_the_image_whatever_the_header_says(client, project, radiologist, flag):
    # A CT-labelled file: only the pixels (and perhaps the flag) say there is text.
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ultrasound_bytes(modality="CT", flag=flag)})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    assert image.released_path == ""
    assert image.hold_reason == pipeline.REASON_TEXT_FOUND
    x0, y0, x1, y1 = text_box()
    assert any(b[0] <= x0 + 2 and b[1] <= y0 + 2 and b[2] >= x1 - 2 and b[3] >= y1 - 2 for b in image.suggested_boxes)


def test_an_ultrasound_without_visible_text_is_still_held_for_a_look(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ultrasound_bytes(text=None)})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.HELD
    assert "US" in image.hold_reason


def test_a_photo_with_text_is_held_and_one_without_is_released(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(
        client, project, {"text.png": png_with_metadata(text=BURNED_TEXT), "plain.jpg": jpeg_with_metadata()}
    )
    run_pipeline_inline()
    assert UploadedFile.objects.get(client_name="text.png").image.status == ImageStatus.HELD
    assert UploadedFile.objects.get(client_name="plain.jpg").image.status == ImageStatus.RELEASED


def test_masking_releases_every_frame_masked_and_the_template_masks_the_next_upload(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"first.dcm": ultrasound_bytes(seed=1)})
    run_pipeline_inline()
    held = Image.objects.get()
    x0, y0, x1, y1 = text_box()
    box = [x0 - 4, y0 - 4, x1 + 4, y1 + 4]
    response = client.post(
        reverse("deidentification:image_mask_release", args=[held.pk]),
        data=json.dumps({"boxes": [box], "save_template": True}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    run_pipeline_inline()
    held.refresh_from_db()
    assert held.status == ImageStatus.RELEASED
    released = pydicom.dcmread(io.BytesIO(_released_bytes(held)))
    assert released.BurnedInAnnotation == "NO"
    assert not released.pixel_array[box[1] : box[3], box[0] : box[2]].any()
    assert released.pixel_array[200:250, 180:220].any()  # the fan is still there
    assert "113101" in {item.CodeValue for item in released.DeidentificationMethodCodeSequence}
    template = MaskTemplate.objects.get()
    assert (template.manufacturer, template.model_name, template.rows, template.columns) == ("ACME", "SONO 9", 300, 400)

    upload_through_api(client, project, {"second.dcm": ultrasound_bytes(seed=2)})
    run_pipeline_inline()
    second = UploadedFile.objects.get(client_name="second.dcm").image
    assert second.status == ImageStatus.RELEASED, second.hold_reason
    assert AuditEvent.objects.filter(action="image.mask", object_id=str(second.pk), data__by="device template").exists()

    # Text outside the template's boxes: the OCR re-check keeps it held.
    upload_through_api(client, project, {"third.dcm": _with_extra_text(ultrasound_bytes(seed=3))})
    run_pipeline_inline()
    third = UploadedFile.objects.get(client_name="third.dcm").image
    assert third.status == ImageStatus.HELD
    assert third.hold_reason == pipeline.REASON_TEXT_AFTER_TEMPLATE


def _with_extra_text(data: bytes) -> bytes:
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    ds = pydicom.dcmread(io.BytesIO(data))
    picture = PILImage.fromarray(ds.pixel_array)
    ImageDraw.Draw(picture).text((240, 44), "SMITH^ANNA", fill=255, font=ImageFont.load_default(size=18))
    ds.PixelData = np.asarray(picture).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_a_mask_needs_boxes_or_an_explicit_no_text(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    url = reverse("deidentification:image_mask_release", args=[image.pk])
    response = client.post(url, data=json.dumps({"boxes": []}), content_type="application/json")
    assert response.status_code == 400 and "at least one box" in response.json()["error"]
    response = client.post(url, data=b"nonsense", content_type="application/json")
    assert response.status_code == 400
    image.refresh_from_db()
    assert image.status == ImageStatus.HELD
    # A double click: the second request finds the image released and says so.
    body = json.dumps({"boxes": [[0, 0, 50, 20]]})
    assert client.post(url, data=body, content_type="application/json").status_code == 200
    again = client.post(url, data=body, content_type="application/json")
    assert again.status_code == 400 and "not waiting" in again.json()["error"]


def test_broken_dicom_is_rejected_with_a_reason_that_names_no_patient(client, project, radiologist):
    data = build_file("ct").data
    client.force_login(radiologist)
    upload_through_api(client, project, {"cut.dcm": data[: len(data) // 2], "junk.dcm": b"DICM" * 100})
    run_pipeline_inline()
    for upload in UploadedFile.objects.all():
        assert upload.status == "rejected" and upload.reason
        for needle in NEEDLES:
            assert needle.lower() not in upload.reason.lower()
    assert not Image.objects.exists()


def test_quarantined_originals_can_be_kept_for_a_retention_period(client, project, radiologist, settings):
    settings.QUARANTINE_RETENTION_DAYS = 7
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": build_file("ct").data})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == ImageStatus.RELEASED and image.quarantine_path
    original = storage.quarantine_path(image.quarantine_path)
    assert original.exists()
    from datetime import timedelta

    from django.utils import timezone

    assert services.quarantine_purge_expired(now=timezone.now() + timedelta(days=6)) == 0
    assert services.quarantine_purge_expired(now=timezone.now() + timedelta(days=8)) == 1
    image.refresh_from_db()
    assert image.quarantine_path == ""


def test_the_same_code_serves_the_command_line(tmp_path):
    from django.core.management import call_command

    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    (source / "nested" / "Doe^Jane.dcm").write_bytes(build_file("ct").data)
    (source / "us.dcm").write_bytes(ultrasound_bytes())
    (source / "notes.txt").write_text("hello")
    (source / "photo.jpg").write_bytes(jpeg_with_metadata())
    report = tmp_path / "report.json"
    call_command("deidentify", str(source), str(tmp_path / "out"), "--report", str(report), stdout=io.StringIO())
    rows = {row["input"]: row for row in json.loads(report.read_text())["files"]}
    assert set(rows) == {"nested/Doe^Jane.dcm", "us.dcm", "notes.txt", "photo.jpg"}
    assert rows["nested/Doe^Jane.dcm"]["status"] == "released"
    assert rows["us.dcm"]["status"] == "held" and rows["us.dcm"]["output"] is None
    assert rows["notes.txt"]["status"] == "rejected" and rows["notes.txt"]["reason"]
    assert rows["photo.jpg"]["status"] == "released"
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(r["output"] for r in rows.values() if r["output"]) == outputs
    assert not any("Doe" in name for name in outputs)
    released = (tmp_path / "out" / rows["nested/Doe^Jane.dcm"]["output"]).read_bytes()
    facts = collect_source_facts(pydicom.dcmread(io.BytesIO(build_file("ct").data)), identifying_texts=True)
    assert scan_released(released, facts=facts) == []


def test_the_link_table_counts_each_image_once_and_not_duplicates(client, project, radiologist):
    jane = build_file("ct", patient_name="Doe^Jane", patient_id="P-1")
    john = build_file("mr", patient_name="Doe^John", patient_id="P-2")
    jane_again = build_file("mr", patient_name="Doe^Jane", patient_id="P-1", sop_instance_uid="1.2.3.4.5.6.7")
    client.force_login(radiologist)
    upload_through_api(client, project, {"1.dcm": jane.data, "2.dcm": john.data, "3.dcm": jane_again.data})
    run_pipeline_inline()
    upload_through_api(client, project, {"1-again.dcm": jane.data})  # the same bytes: a duplicate
    run_pipeline_inline()
    assert UploadedFile.objects.filter(status="duplicate").count() == 1
    counts = sorted(PatientLink.objects.values_list("image_count", flat=True))
    assert counts == [1, 2]


def test_a_mask_is_applied_by_the_worker_and_the_queue_says_so_meanwhile(client, project, radiologist):
    from clinic_ai.studies.selectors import pipeline_pending

    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    url = reverse("deidentification:image_mask_release", args=[image.pk])
    assert (
        client.post(url, data=json.dumps({"boxes": [[0, 0, 50, 20]]}), content_type="application/json").status_code
        == 200
    )
    image.refresh_from_db()
    assert image.status == ImageStatus.MASKING and image.mask_request["boxes"] == [[0, 0, 50, 20]]
    assert pipeline_pending()["mask"] == [image.pk]  # what pipeline_resume queues again
    listed = client.get(reverse("deidentification:held_list")).content.decode()
    assert "Being masked" in listed and 'http-equiv="refresh"' in listed
    run_pipeline_inline()
    image.refresh_from_db()
    assert image.status == ImageStatus.RELEASED and image.mask_request is None
    listed = client.get(reverse("deidentification:held_list")).content.decode()
    assert "Nothing is waiting to be masked" in listed and 'http-equiv="refresh"' not in listed


def test_a_mask_that_cannot_be_applied_holds_the_image_again(client, project, radiologist):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    image = Image.objects.get()
    services.image_mask_request(
        user=radiologist, image_id=image.pk, boxes=[[0, 0, 50, 20]], save_template=False, confirm_no_text=False
    )
    image.refresh_from_db()
    storage.quarantine_path(image.deid_path).write_bytes(b"DICM" * 10)  # the held file is damaged meanwhile
    services.image_mask_apply(image_id=image.pk)
    image.refresh_from_db()
    assert image.status == ImageStatus.HELD and image.mask_request is None
    assert image.hold_reason.startswith("The image could not be masked")
    assert AuditEvent.objects.filter(action="image.mask_failed", object_id=str(image.pk)).exists()


def test_a_dicom_whose_patient_cannot_be_identified_is_rejected_not_stuck(client, project, radiologist):
    ds = pydicom.dcmread(io.BytesIO(build_file("ct").data))
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID"):
        delattr(ds, keyword)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    client.force_login(radiologist)
    upload_through_api(client, project, {"anonymous.dcm": buffer.getvalue()})
    run_pipeline_inline()
    upload = UploadedFile.objects.get()
    assert upload.status == "rejected", upload.status
    assert "patient" in upload.reason.lower()
    assert not storage.quarantine_path(storage.upload_relative_path(upload.pk)).exists()
    assert not PatientLink.objects.exists()
