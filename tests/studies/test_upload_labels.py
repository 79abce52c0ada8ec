"""Labels at source: one for the whole upload, class folders (a dropped folder or a zip), a CSV."""

import hashlib
import io
import json
import zipfile
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image as PILImage

from clinic_ai.accounts.models import Role
from clinic_ai.core.models import AuditEvent
from clinic_ai.deidentification.models import DeidProfile
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.labelling.selectors import get_label_queue_for_user, project_consensus
from clinic_ai.studies import services, upload_labels
from clinic_ai.studies.models import Image, ImageStatus, UploadBatch, UploadedFile, UploadLabelName
from tests.conftest import run_pipeline_inline
from tests.deidentification.synthetic import ultrasound_bytes

pytestmark = pytest.mark.django_db
JSON = "application/json"


def png(seed: int) -> bytes:
    """A small PNG whose bytes differ per seed (the same bytes twice are one image)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    PILImage.fromarray((rng.random((40, 40)) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _no_ocr(project):
    # Random noise has no burned-in text to find; OCR off keeps these tests quick.
    DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False})


def start(client, project, labels=None, *, expect=201):
    body = {"study": ""} if labels is None else {"study": "", "labels": labels}
    response = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data=json.dumps(body), content_type=JSON
    )
    assert response.status_code == expect, response.content
    return response.json()


def send_csv(client, batch, data: bytes, *, content_type="text/csv"):
    return client.post(batch["labels_url"], data=data, content_type=content_type)


def send_files(client, batch, files: dict, *, finish=True):
    for name, data in files.items():
        declared = client.post(
            batch["files_url"], data=json.dumps({"name": name, "size": len(data)}), content_type=JSON
        )
        assert declared.status_code == 201, declared.content
        sent = client.post(
            declared.json()["chunk_url"],
            data=data,
            content_type="application/octet-stream",
            headers={"X-Chunk-Offset": "0"},
        )
        assert sent.status_code == 200 and sent.json()["complete"], sent.content
    if finish:
        assert client.post(batch["finish_url"], data="{}", content_type=JSON).status_code == 200


def status(client, batch) -> dict:
    return client.get(batch["status_url"]).json()


def upload_labels_by_name(project) -> dict:
    """{the uploaded file's name: its image's current upload label}."""
    labels = {
        label.image_id: label.values
        for label in Label.objects.filter(project=project, source=LabelSource.UPLOAD, is_current=True)
    }
    return {
        f.client_name: labels.get(f.image_id)
        for f in UploadedFile.objects.filter(batch__project=project, image__isnull=False)
    }


# --- One label for the whole upload -----------------------------------------------------------------


def test_one_label_for_the_whole_upload_becomes_an_upload_label_by_the_uploader(client, project, radiologist):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "batch", "values": ["pneumonia"]})
    send_files(client, batch, {"a.png": png(1), "b.png": png(2), "notes.txt": b"not an image"})
    run_pipeline_inline()

    labels = Label.objects.filter(project=project)
    assert labels.count() == 2
    for label in labels:
        assert (label.source, label.reader, label.values, label.is_current) == (
            LabelSource.UPLOAD,
            radiologist,
            ["pneumonia"],
            True,
        )
        assert label.image.status == ImageStatus.RELEASED
        event = AuditEvent.objects.get(action="label.create", object_id=str(label.pk))
        assert event.data["source"] == "upload" and event.actor == radiologist
    answer = status(client, batch)
    assert answer["labels"]["summary"] == "2 labelled pneumonia"
    assert {row["name"]: row["label"] for row in answer["files"]} == {
        "a.png": "pneumonia",
        "b.png": "pneumonia",
        "notes.txt": "pneumonia",  # its intended label; it is rejected, so counted nowhere
    }


def test_a_batch_label_outside_the_projects_classes_is_a_clear_400(client, project, radiologist):
    client.force_login(radiologist)
    for values, message in [
        (["cat"], "Not a class of this project"),
        (["normal", "pneumonia"], "Pick exactly one class"),
        (["ungradable", "normal"], "Ungradable cannot be combined"),
        ([], "non-empty list"),
    ]:
        error = start(client, project, {"mode": "batch", "values": values}, expect=400)["error"]
        assert message in error and "label for this upload" in error
    assert not UploadBatch.objects.exists()
    # No class picked: an upload without labels.
    batch = start(client, project, {"mode": "batch", "values": None})
    assert UploadBatch.objects.get(pk=batch["id"]).label_mode == "none"


def test_ungradable_is_allowed_for_a_whole_upload(client, project, radiologist):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "batch", "values": ["ungradable"]})
    send_files(client, batch, {"a.png": png(3)})
    run_pipeline_inline()
    assert Label.objects.get().values == ["ungradable"]
    assert status(client, batch)["labels"]["summary"] == "1 labelled ungradable"


# --- Class folders -------------------------------------------------------------------------------


def test_class_folders_inside_a_zip_label_their_files_and_the_nearest_class_folder_wins(client, project, radiologist):
    client.force_login(radiologist)
    archive = zip_of(
        {
            "normal/a.png": png(10),
            "Pneumonia/b.png": png(11),
            "normal/more/c.png": png(12),
            "pneumonia/normal/d.png": png(13),
            "other/e.png": png(14),
            "f.png": png(15),
        }
    )
    batch = start(client, project, {"mode": "folders"})
    send_files(client, batch, {"set.zip": archive})
    run_pipeline_inline()

    assert upload_labels_by_name(project) == {
        "set.zip/normal/a.png": ["normal"],
        "set.zip/Pneumonia/b.png": ["pneumonia"],
        "set.zip/normal/more/c.png": ["normal"],
        "set.zip/pneumonia/normal/d.png": ["normal"],
        "set.zip/other/e.png": None,
        "set.zip/f.png": None,
    }
    assert Label.objects.filter(reader=radiologist, source=LabelSource.UPLOAD).count() == 4
    labels = status(client, batch)["labels"]
    assert labels["summary"] == "3 labelled normal, 1 pneumonia, 2 files not in a class folder"
    assert labels["counts"] == {"normal": 3, "pneumonia": 1} and labels["unmatched"] == 2


def test_class_folders_of_a_dropped_folder_come_from_the_relative_path(client, project, radiologist):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "folders"})
    send_files(
        client,
        batch,
        {
            "xray/NORMAL/1.png": png(20),
            "xray/pneumonia/2.png": png(21),
            "xray/3.png": png(22),
            # A zip inside a class folder: its members take the folder's class.
            "xray/pneumonia/more.zip": zip_of({"4.png": png(23), "normal/5.png": png(24)}),
        },
    )
    run_pipeline_inline()
    assert upload_labels_by_name(project) == {
        "xray/NORMAL/1.png": ["normal"],
        "xray/pneumonia/2.png": ["pneumonia"],
        "xray/3.png": None,
        "xray/pneumonia/more.zip/4.png": ["pneumonia"],
        "xray/pneumonia/more.zip/normal/5.png": ["normal"],
    }
    assert status(client, batch)["labels"]["summary"] == "2 labelled normal, 2 pneumonia, 1 file not in a class folder"


# --- A CSV of file name -> label ------------------------------------------------------------------


CSV = (
    "File name,Label\n"
    "a.png,normal\n"
    "sub/b.png,Pneumonia\n"
    "\n"
    "c.png,cat\n"
    "A.PNG,pneumonia\n"
    "only-a-name.png\n"
    "e.png,ungradable\n"
)


def test_a_csv_labels_files_by_name_or_relative_path_and_reports_bad_rows(client, project, radiologist):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    report = send_csv(client, batch, CSV.encode())
    assert report.status_code == 200, report.content
    assert report.json() == {
        "rows": 6,
        "labelled": 3,
        "bad_count": 3,
        "bad_rows": [
            {"line": 5, "reason": "not a class of this project (classes: normal, pneumonia)"},
            {"line": 6, "reason": "names the same file as line 2"},
            {"line": 7, "reason": "needs two columns: a file name, then its label"},
        ],
    }
    send_files(
        client,
        batch,
        {"set/a.png": png(30), "set/sub/b.png": png(31), "set/c.png": png(32), "set/d.png": png(33), "e.png": png(34)},
    )
    run_pipeline_inline()
    assert upload_labels_by_name(project) == {
        "set/a.png": ["normal"],
        "set/sub/b.png": ["pneumonia"],
        "set/c.png": None,
        "set/d.png": None,
        "e.png": ["ungradable"],
    }
    labels = status(client, batch)["labels"]
    assert labels["summary"] == (
        "1 labelled normal, 1 pneumonia, 1 ungradable, 2 names not in the CSV, 3 rows of the CSV left out"
    )
    assert labels["csv"]["bad_count"] == 3
    # The names are kept only as hashes; the audit row counts rows and names no file.
    stored = list(UploadLabelName.objects.values_list("name_hash", flat=True))
    assert sorted(stored) == sorted(hashlib.sha256(k.encode()).hexdigest() for k in ("a.png", "sub/b.png", "e.png"))
    event = AuditEvent.objects.get(action="upload.labels_csv")
    assert event.data == {"rows": 6, "labelled": 3, "bad_count": 3}


def test_a_csv_without_a_header_separated_by_semicolons_is_read(client, project, radiologist):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    answer = send_csv(client, batch, "\ufeffx.png;normal\r\ny.png;pneumonia\r\n".encode())
    assert answer.json()["labelled"] == 2 and answer.json()["bad_count"] == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV (it holds binary data)"),
        ("a.png,normal\n".encode("utf-16"), "not a CSV (it holds binary data)"),
        ("Müller.png,normal\n".encode("latin-1"), "not UTF-8 text"),
        (b"", "empty"),
        (b"just one column\nand another\n", "not a CSV of two columns"),
        (b'a.png,"normal\nb.png,pneumonia\n', "not a readable CSV"),
        (b"a.png,cat\nb.png,dog\n", "No row of the labels file gives a file name and a class"),
        (b"file,label\n", "No row of the labels file"),
    ],
)
def test_a_file_that_is_not_a_usable_csv_is_refused_with_a_clear_message(client, project, radiologist, data, message):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    answer = send_csv(client, batch, data)
    assert answer.status_code == 400 and message in answer.json()["error"], answer.content
    assert UploadBatch.objects.get(pk=batch["id"]).label_csv_report == {}
    assert not UploadLabelName.objects.exists()
    # Files are refused until a CSV is taken: their labels could not be worked out.
    declared = client.post(batch["files_url"], data=json.dumps({"name": "a.png", "size": 3}), content_type=JSON)
    assert declared.status_code == 400 and "CSV of labels before the files" in declared.json()["error"]


def test_a_csv_over_the_size_limit_is_refused(client, project, radiologist, settings):
    settings.UPLOAD_LABEL_CSV_MAX_SIZE = 100
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    answer = send_csv(client, batch, b"a.png,normal\n" * 10)
    assert answer.status_code == 413 and "over the 100 bytes limit" in answer.json()["error"]


def test_the_csv_comes_before_the_files_and_only_with_mode_csv(client, project, radiologist):
    client.force_login(radiologist)
    plain = start(client, project)
    answer = send_csv(client, plain, b"a.png,normal\n")
    assert answer.status_code == 400 and "not started with labels from a CSV" in answer.json()["error"]
    batch = start(client, project, {"mode": "csv"})
    assert send_csv(client, batch, b"a.png,normal\n").status_code == 200
    send_files(client, batch, {"a.png": png(40)}, finish=False)
    late = send_csv(client, batch, b"a.png,pneumonia\n")
    assert late.status_code == 400 and "before the files" in late.json()["error"]
    assert send_csv(client, batch, b"a.png,normal\n", content_type=JSON).status_code == 415


# --- Where the labels go afterwards ----------------------------------------------------------------


def test_a_held_image_keeps_its_upload_label_and_only_released_images_reach_the_queue(
    client, project, radiologist, clinician
):
    DeidProfile.objects.filter(project=project).update(ocr_enabled=True)
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "folders"})
    send_files(client, batch, {"normal/us.dcm": ultrasound_bytes(), "normal/x.png": png(50)})
    run_pipeline_inline()
    held = Image.objects.get(kind="dicom")
    released = Image.objects.get(kind="png")
    assert held.status == ImageStatus.HELD and released.status == ImageStatus.RELEASED
    assert Label.objects.get(image=held).values == ["normal"]
    assert Label.objects.get(image=released).values == ["normal"]
    # Upload labels do not fill the queue's readers nor count in consensus: the released image still
    # waits for its reader, the held one is not shown until released.
    assert [i.pk for i in get_label_queue_for_user(clinician, project)] == [released.pk]
    assert project_consensus(project).images == {}
    assert status(client, batch)["labels"]["summary"] == "2 labelled normal"


def test_the_same_images_sent_again_with_labels_are_labelled_and_a_new_label_replaces_the_old(
    client, project, radiologist
):
    client.force_login(radiologist)
    first = start(client, project)
    send_files(client, first, {"a.png": png(60)})
    run_pipeline_inline()
    assert not Label.objects.exists()

    again = start(client, project, {"mode": "batch", "values": ["normal"]})
    send_files(client, again, {"a.png": png(60)})
    run_pipeline_inline()
    assert Label.objects.get().values == ["normal"]
    assert status(client, again)["labels"]["summary"] == "1 labelled normal"

    same = start(client, project, {"mode": "batch", "values": ["normal"]})
    send_files(client, same, {"a.png": png(60)})
    run_pipeline_inline()
    assert Label.objects.count() == 1  # the same label again writes nothing

    changed = start(client, project, {"mode": "batch", "values": ["pneumonia"]})
    send_files(client, changed, {"a.png": png(60)})
    run_pipeline_inline()
    assert list(Label.objects.order_by("created").values_list("values", "is_current")) == [
        (["normal"], False),
        (["pneumonia"], True),
    ]
    assert AuditEvent.objects.filter(action="label.change").count() == 1


def test_erasing_the_names_erases_the_csv_and_keeps_the_labels(client, project, radiologist, settings):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    send_csv(client, batch, b"a.png,normal\n")
    send_files(client, batch, {"a.png": png(70)})
    run_pipeline_inline()
    later = timezone.now() + timedelta(hours=settings.UPLOAD_NAME_RETENTION_HOURS + 1)
    assert services.upload_names_erase_expired(now=later) == 1
    stored = UploadBatch.objects.get(pk=batch["id"])
    assert not stored.label_names.exists() and stored.label_csv_report["labelled"] == 1
    assert UploadedFile.objects.get().client_name == ""
    assert Label.objects.get().values == ["normal"]
    assert status(client, batch)["labels"]["summary"] == "1 labelled normal"


# --- Who may do it --------------------------------------------------------------------------------


def test_only_the_uploader_with_an_upload_role_sends_the_csv(client, project, radiologist, member_of, outsider):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "csv"})
    for user in (member_of(project, Role.RADIOLOGIST), outsider):
        client.force_login(user)
        assert send_csv(client, batch, b"a.png,normal\n").status_code == 404
    clinician = member_of(project, Role.CLINICIAN)
    client.force_login(clinician)
    start(client, project, {"mode": "csv"}, expect=403)
    assert UploadBatch.objects.get(pk=batch["id"]).label_csv_report == {}


def test_an_admin_uploads_with_labels_too(client, project, project_admin):
    client.force_login(project_admin)
    batch = start(client, project, {"mode": "batch", "values": ["normal"]})
    send_files(client, batch, {"a.png": png(80)})
    run_pipeline_inline()
    assert Label.objects.get().reader == project_admin


# --- The pure parts ----------------------------------------------------------------------------------


def test_summary_text_counts_and_never_names():
    counts = Counter({"pneumonia": 30, "normal": 12})
    text = upload_labels.summary_text(mode="csv", counts=counts, unmatched=3, order=["normal", "pneumonia"])
    assert text == "12 labelled normal, 30 pneumonia, 3 names not in the CSV"
    assert upload_labels.summary_text(mode="folders", counts=Counter(), unmatched=1) == (
        "none labelled, 1 file not in a class folder"
    )


def test_folder_label_reads_backslashes_and_ignores_the_file_name(project):
    assert upload_labels.folder_label("a\\Normal\\x.png", project) == ["normal"]
    assert upload_labels.folder_label("normal", project) is None  # a file named like a class
    assert upload_labels.folder_label("./pneumonia/./x.png", project) == ["pneumonia"]


def test_a_multi_label_project_takes_several_classes_from_the_csv_and_for_the_whole_upload(client, member_of):
    from tests.factories import ProjectFactory

    project = ProjectFactory(task_type="multilabel", class_names=["effusion", "nodule", "normal"])
    DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False})
    client.force_login(member_of(project, Role.RADIOLOGIST))
    batch = start(client, project, {"mode": "csv"})
    report = send_csv(client, batch, b"a.png,Nodule;effusion\nb.png,normal|nodule\nc.png,ungradable;normal\n")
    assert report.json()["labelled"] == 2 and report.json()["bad_rows"][0]["line"] == 3
    send_files(client, batch, {"a.png": png(90), "b.png": png(91)})
    run_pipeline_inline()
    assert sorted(Label.objects.values_list("values", flat=True)) == [["effusion", "nodule"], ["nodule", "normal"]]
    assert status(client, batch)["labels"]["summary"] == (
        "1 labelled effusion + nodule, 1 nodule + normal, 1 row of the CSV left out"
    )
    batch = start(client, project, {"mode": "batch", "values": ["normal", "effusion"]})
    assert UploadBatch.objects.get(pk=batch["id"]).label_values == ["effusion", "normal"]


def test_the_status_of_a_labelled_upload_takes_a_fixed_number_of_queries(
    client, project, radiologist, django_assert_max_num_queries
):
    client.force_login(radiologist)
    batch = start(client, project, {"mode": "folders"})
    send_files(client, batch, {f"{'normal' if i % 2 else 'pneumonia'}/{i}.png": png(100 + i) for i in range(8)})
    run_pipeline_inline()
    with django_assert_max_num_queries(8):
        answer = status(client, batch)
    assert answer["labels"]["summary"] == "4 labelled normal, 4 pneumonia"
