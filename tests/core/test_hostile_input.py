"""Hostile input on every endpoint: a 4xx that says what is wrong, never a 500, nothing half-written.

Every URL pattern of the project is listed here as a JSON endpoint, a form or a page (the first test
fails when a new one appears unlisted). Each JSON endpoint gets every body-level payload (bad
unicode, lone surrogates, NUL, NaN/Infinity/1e400, JSON nested 100,000 levels deep, wrong types,
empty body, wrong content type, oversized bodies) and its own field-level ones (strings for numbers,
booleans as sizes, negative and huge sizes, non-finite box coordinates), sent as the user with the
right role; each answer must be a 4xx with ``{"error": "<readable text>"}``, and no row may change.
Forms must answer 400 with the form's error; pages with hostile query strings never a 500.
"""

import json
import uuid

import pytest
from django.urls import URLResolver, get_resolver, reverse

from clinic_ai.accounts.models import Membership, Project
from clinic_ai.core.models import AuditEvent
from clinic_ai.deidentification.models import DeidProfile, MaskTemplate, PatientLink
from clinic_ai.studies.models import Image, ImageStatus, Series, Study, UploadBatch, UploadedFile
from tests.conftest import run_pipeline_inline, upload_through_api
from tests.deidentification.synthetic import ultrasound_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

JSON_ENDPOINTS = {
    "studies:upload_batch_create",
    "studies:upload_file_create",
    "studies:upload_chunk",
    "studies:upload_batch_finish",
    "studies:upload_batch_status",
    "studies:upload_labels_csv",
    "deidentification:image_mask_preview",
    "deidentification:image_mask_release",
    "inference:image_inference_rerun",
    "inference:project_queue",
    "labelling:label_api",
    "labelling:undo_api",
}
FORMS = {
    "login",
    "logout",
    "password_change",
    "accounts:project_create",
    "accounts:project_update",
    "accounts:member_set",
    "accounts:member_remove",
    "deidentification:profile_update",
    "inference:registry",
    "inference:ensemble_activate",
    "labelling:settings_update",
    "labelling:adjudicate",
    "review:decide",
}
PAGES = {
    "home",
    "password_change_done",
    "accounts:project_detail",
    "studies:worklist",
    "studies:study_detail",
    "studies:image_detail",
    "studies:image_preview",
    "studies:image_pixels",
    "studies:image_original",
    "studies:upload_create",
    "deidentification:held_list",
    "deidentification:image_mask",
    "deidentification:image_mask_source",
    "deidentification:patient_links",
    "deidentification:audit_list",
    "deidentification:audit_export",
    "deidentification:image_mask_thumbnail",
    "inference:image_inference",
    "inference:result_heatmap",
    "inference:project_progress",
    "labelling:label_home",
    "labelling:project_labelling",
    "labelling:label_queue",
    "labelling:queue_api",
    "labelling:adjudication_list",
    "labelling:label_export",
    "review:worklist",
    "review:review_image",
    "performance:dashboard",
    "performance:dashboard_csv",
    "performance:prediction_list",
    "performance:prediction_csv",
}
# Django's admin site is hardened under its own item of issue 7 (status and paths read-only).
NOT_HERE = {"admin"}


def _url_names(resolver=None, namespace=()):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = (*namespace, pattern.namespace) if pattern.namespace else namespace
            if inner and inner[0] in NOT_HERE:
                continue
            yield from _url_names(pattern, inner)
        else:
            yield ":".join((*namespace, pattern.name or f"<unnamed {pattern.pattern}>"))


def test_every_url_pattern_is_covered_by_this_file():
    names = set(_url_names())
    listed = JSON_ENDPOINTS | FORMS | PAGES
    assert names == listed, f"not covered: {sorted(names - listed)}; gone: {sorted(listed - names)}"


# --- Payloads -----------------------------------------------------------------------------------

JSON = "application/json"
DEEP = b"[" * 100_000 + b"]" * 100_000
# Under the size limit, so the depth check (not the size check) refuses them.
DEEP_SMALL = b'{"boxes": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
DEEP_OBJECTS = b'{"a": ' * 5_000 + b"1" + b"}" * 5_000

# (label, body, content type): refused by every JSON endpoint, whatever its fields.
BODY_PAYLOADS = [
    ("lone surrogate", b'{"name": "\\ud800", "study": "\\udfff"}', JSON),
    ("lone surrogate as key", b'{"\\ud800": 1}', JSON),
    ("NUL character", b'{"name": "a\\u0000.dcm", "size": 3}', JSON),
    ("NaN", b'{"size": NaN, "boxes": [[NaN, 0, 10, 10]]}', JSON),
    ("Infinity", b'{"size": Infinity, "boxes": [[0, 0, Infinity, 10]]}', JSON),
    ("-Infinity", b'{"size": -Infinity, "boxes": [[-Infinity, 0, 10, 10]]}', JSON),
    ("1e400", b'{"size": 1e400, "boxes": [[0, 0, 1e400, 10]]}', JSON),
    ("5000-digit integer", b'{"size": ' + b"9" * 5000 + b"}", JSON),
    ("nested 100,000 deep", DEEP, JSON),
    ("nested 20,000 deep", DEEP_SMALL, JSON),
    ("objects nested 5,000 deep", DEEP_OBJECTS, JSON),
    ("a list", b"[1, 2, 3]", JSON),
    ("a string", b'"boxes"', JSON),
    ("a number", b"12", JSON),
    ("null", b"null", JSON),
    ("true", b"true", JSON),
    ("invalid UTF-8", b'{"name": "\xff\xfe\xfd", "size": 3}', JSON),
    ("UTF-16", '{"name": "a", "size": 3}'.encode("utf-16"), JSON),
    ("truncated JSON", b'{"name": "a", "size": ', JSON),
    ("trailing garbage", b'{"size": 3} {"size": 4}', JSON),
    ("single quotes", b"{'size': 3}", JSON),
    ("over 64 KB", b'{"name": "' + b"a" * 70_000 + b'"}', JSON),
    ("form-encoded", b"name=a.dcm&size=3&boxes=1", "application/x-www-form-urlencoded"),
    ("JSON as text/plain", b'{"name": "a.dcm", "size": 3}', "text/plain"),
    ("JSON as multipart", b'{"name": "a.dcm", "size": 3}', "multipart/form-data; boundary=xyz"),
    ("empty", b"", JSON),
    ("whitespace", b"  \n ", JSON),
]


def _j(value) -> bytes:
    return json.dumps(value).encode()


# Field-level payloads, per endpoint: valid JSON objects with wrong values.
FIELD_PAYLOADS = {
    "studies:upload_batch_create": [
        _j({"study": 5}),
        _j({"study": ["x"]}),
        _j({"study": {"id": "x"}}),
        _j({"study": True}),
        _j({"study": "not-a-uuid"}),
        _j({"study": str(uuid.uuid4())}),
        _j({"study": "../../etc/passwd"}),
        # Labels at source: a mode from the list, values only for "batch", and only the project's classes.
        _j({"labels": "folders"}),
        _j({"labels": ["batch", "normal"]}),
        _j({"labels": True}),
        _j({"labels": {}}),
        _j({"labels": {"mode": 1}}),
        _j({"labels": {"mode": None}}),
        _j({"labels": {"mode": "everything"}}),
        _j({"labels": {"mode": "BATCH", "values": ["normal"]}}),
        _j({"labels": {"mode": "batch", "values": "normal"}}),
        _j({"labels": {"mode": "batch", "values": {"normal": True}}}),
        _j({"labels": {"mode": "batch", "values": ["cat"]}}),
        _j({"labels": {"mode": "batch", "values": ["Normal"]}}),
        _j({"labels": {"mode": "batch", "values": [1]}}),
        _j({"labels": {"mode": "batch", "values": [None]}}),
        _j({"labels": {"mode": "batch", "values": [["normal"]]}}),
        _j({"labels": {"mode": "batch", "values": []}}),
        _j({"labels": {"mode": "batch", "values": ["normal", "normal"]}}),
        _j({"labels": {"mode": "batch", "values": ["normal", "pneumonia"]}}),
        _j({"labels": {"mode": "batch", "values": ["ungradable", "normal"]}}),
        _j({"labels": {"mode": "batch", "values": ["normal"] * 101}}),
        _j({"labels": {"mode": "batch", "values": ["n" * 10_000]}}),
        _j({"labels": {"mode": "folders", "values": ["normal"]}}),
        _j({"labels": {"mode": "csv", "values": ["normal"]}}),
        _j({"labels": {"mode": "batch", "values": ["normal"]}, "study": 5}),
    ],
    "studies:upload_file_create": [
        b'{"name": "\\ud800.dcm", "size": 3}',  # the reported one: a lone surrogate in the name
        b'{"name": "Doe^\\udbff.dcm", "size": 3}',
        _j({"name": "a.dcm"}),
        _j({"size": 3}),
        _j({"name": "", "size": 3}),
        _j({"name": "   ", "size": 3}),
        _j({"name": ["a.dcm"], "size": 3}),
        _j({"name": 7, "size": 3}),
        _j({"name": None, "size": 3}),
        _j({"name": "a.dcm", "size": "3"}),
        _j({"name": "a.dcm", "size": 3.0}),
        _j({"name": "a.dcm", "size": 3.5}),
        _j({"name": "a.dcm", "size": True}),
        _j({"name": "a.dcm", "size": False}),
        _j({"name": "a.dcm", "size": None}),
        _j({"name": "a.dcm", "size": [3]}),
        _j({"name": "a.dcm", "size": {"bytes": 3}}),
        _j({"name": "a.dcm", "size": -1}),
        _j({"name": "a.dcm", "size": -(10**30)}),
        _j({"name": "a.dcm", "size": 10**400}),
        _j({"name": "a.dcm", "size": 2**63}),
        _j({"name": "a.dcm", "size": 909494701772928256 * 1024**4}),
        _j({"name": "a.dcm", "size": 1e300}),
    ],
    "studies:upload_batch_finish": [],  # takes no fields: only body-level payloads apply
    "inference:image_inference_rerun": [],
    "inference:project_queue": [],
    "labelling:label_api": [
        _j({"image": 5, "values": ["normal"]}),
        _j({"image": ["x"], "values": ["normal"]}),
        _j({"image": "not-a-uuid", "values": ["normal"]}),
        _j({"image": str(uuid.uuid4()), "values": ["normal"]}),
        b'{"image": "\\ud800", "values": ["normal"]}',
    ],
    "labelling:undo_api": [
        _j({"image": None}),
        _j({"image": {"id": 1}}),
        _j({"image": str(uuid.uuid4())}),
    ],
    "deidentification:image_mask_preview": [
        _j({"boxes": "0,0,10,10"}),
        _j({"boxes": {"x0": 0}}),
        _j({"boxes": [1, 2, 3, 4]}),
        _j({"boxes": [[0, 0, 10]]}),
        _j({"boxes": [[0, 0, 10, 10, 10]]}),
        _j({"boxes": [["0", "0", "10", "10"]]}),
        _j({"boxes": [[True, 0, 10, 10]]}),
        _j({"boxes": [[None, 0, 10, 10]]}),
        _j({"boxes": [[0, 0, 10**400, 10]]}),
        _j({"boxes": [[0, 0, -(10**400), 10]]}),
        _j({"boxes": [[0, 0, 1e300, 10]]}),
        _j({"boxes": [[0, 0, 10, 10]] * 201}),
        _j({"boxes": [[0, 0, 10, 10]], "save_template": "yes"}),
        _j({"boxes": [[0, 0, 10, 10]], "confirm_no_text": 1}),
    ],
}
# The frame of the masked preview (the release masks every frame: it takes none).
FRAME_PAYLOADS = [
    _j({"boxes": [[0, 0, 10, 10]], "frame": -1}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": 1}),  # the held ultrasound has one frame
    _j({"boxes": [[0, 0, 10, 10]], "frame": "0"}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": 0.5}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": True}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": None}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": 10**400}),
    _j({"boxes": [[0, 0, 10, 10]], "frame": [0]}),
]
FIELD_PAYLOADS["deidentification:image_mask_release"] = [
    *FIELD_PAYLOADS["deidentification:image_mask_preview"],
    _j({"boxes": []}),
    _j({}),
    _j({"boxes": [[5, 5, 5, 5]]}),  # empty once cleaned
]
FIELD_PAYLOADS["deidentification:image_mask_preview"] += FRAME_PAYLOADS

CHUNK_OFFSETS = ["", "abc", "-1", "+0", " 0", "0x0", "1e400", "NaN", "Infinity", "9" * 5000, "١٢", "0.0"]


# --- The world they are sent into -----------------------------------------------------------------


@pytest.fixture
def world(client, project, radiologist, project_admin, ct_bytes):
    """A released CT and a held ultrasound uploaded by the radiologist; an open upload with one
    declared file; the project admin as the project's only admin."""
    client.force_login(radiologist)
    upload_through_api(client, project, {"ct.dcm": ct_bytes, "us.dcm": ultrasound_bytes()})
    run_pipeline_inline()
    released = Image.objects.get(status=ImageStatus.RELEASED)
    held = Image.objects.get(status=ImageStatus.HELD)
    batch = client.post(reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type=JSON).json()
    declared = client.post(batch["files_url"], data=_j({"name": "x.dcm", "size": 10}), content_type=JSON).json()
    client.logout()
    return {
        "project": project,
        "released": released,
        "held": held,
        "batch_id": batch["id"],
        "file_id": declared["id"],
        "admin_membership": Membership.objects.get(project=project, user=project_admin),
    }


def _snapshot(world) -> dict:
    """Every row count, and the fields a half-done request could change."""
    counts = {
        model.__name__: model.objects.count()
        for model in (
            Project,
            Membership,
            UploadBatch,
            UploadedFile,
            Study,
            Series,
            Image,
            AuditEvent,
            DeidProfile,
            MaskTemplate,
            PatientLink,
        )
    }
    held = Image.objects.get(pk=world["held"].pk)
    upload = UploadedFile.objects.get(pk=world["file_id"])
    counts.update(
        held=(held.status, held.mask_request),
        batch_finished=UploadBatch.objects.get(pk=world["batch_id"]).finished_at,
        upload=(upload.status, upload.received),
        roles=sorted(Membership.objects.values_list("user_id", "role")),
        projects=sorted(Project.objects.values_list("name", "description", "class_names")),
    )
    return counts


def _url(name, world) -> str:
    kwargs = {
        "studies:upload_batch_create": {"project_id": world["project"].pk},
        "studies:upload_file_create": {"batch_id": world["batch_id"]},
        "studies:upload_chunk": {"batch_id": world["batch_id"], "file_id": world["file_id"]},
        "studies:upload_batch_finish": {"batch_id": world["batch_id"]},
        "studies:upload_batch_status": {"batch_id": world["batch_id"]},
        "studies:upload_labels_csv": {"batch_id": world["batch_id"]},
        "deidentification:image_mask_preview": {"image_id": world["held"].pk},
        "deidentification:image_mask_release": {"image_id": world["held"].pk},
        "accounts:project_detail": {"project_id": world["project"].pk},
        "accounts:project_update": {"project_id": world["project"].pk},
        "accounts:member_set": {"project_id": world["project"].pk},
        "accounts:member_remove": {
            "project_id": world["project"].pk,
            "membership_id": world["admin_membership"].pk,
        },
        "studies:study_detail": {"study_id": world["released"].study.pk},
        "studies:image_detail": {"image_id": world["released"].pk},
        "studies:image_preview": {"image_id": world["released"].pk},
        "studies:image_pixels": {"image_id": world["released"].pk, "frame": 0},
        "studies:image_original": {"image_id": world["held"].pk},
        "studies:upload_create": {"project_id": world["project"].pk},
        "deidentification:image_mask": {"image_id": world["held"].pk},
        "deidentification:image_mask_source": {"image_id": world["held"].pk},
        "deidentification:patient_links": {"project_id": world["project"].pk},
        "deidentification:audit_list": {"project_id": world["project"].pk},
        "deidentification:audit_export": {"project_id": world["project"].pk},
        "deidentification:image_mask_thumbnail": {"image_id": world["held"].pk},
        "deidentification:profile_update": {"project_id": world["project"].pk},
        "inference:image_inference": {"image_id": world["released"].pk},
        "inference:image_inference_rerun": {"image_id": world["released"].pk},
        "inference:result_heatmap": {"result_id": uuid.uuid4(), "name": "ensemble"},
        "inference:registry": {"project_id": world["project"].pk},
        "inference:project_queue": {"project_id": world["project"].pk},
        "inference:project_progress": {"project_id": world["project"].pk},
        "inference:ensemble_activate": {"ensemble_id": uuid.uuid4()},
        "labelling:project_labelling": {"project_id": world["project"].pk},
        "labelling:settings_update": {"project_id": world["project"].pk},
        "labelling:label_queue": {"project_id": world["project"].pk},
        "labelling:queue_api": {"project_id": world["project"].pk},
        "labelling:label_api": {"project_id": world["project"].pk},
        "labelling:undo_api": {"project_id": world["project"].pk},
        "labelling:adjudication_list": {"project_id": world["project"].pk},
        "labelling:adjudicate": {"project_id": world["project"].pk, "image_id": world["released"].pk},
        "labelling:label_export": {"project_id": world["project"].pk, "fmt": "csv"},
        "review:worklist": {"project_id": world["project"].pk},
        "review:review_image": {"project_id": world["project"].pk, "image_id": world["released"].pk},
        "review:decide": {"project_id": world["project"].pk, "image_id": world["released"].pk},
        "performance:dashboard": {"project_id": world["project"].pk},
        "performance:dashboard_csv": {"project_id": world["project"].pk},
        "performance:prediction_list": {"project_id": world["project"].pk},
        "performance:prediction_csv": {"project_id": world["project"].pk},
    }.get(name, {})
    return reverse(name, kwargs=kwargs)


def _assert_json_refusal(response, label):
    assert 400 <= response.status_code < 500, (label, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), (label, response["Content-Type"])
    error = response.json().get("error")
    assert isinstance(error, str) and 10 < len(error) < 300, (label, error)
    assert error.isprintable() and "Traceback" not in error, (label, error)


BODY_ENDPOINTS = sorted(FIELD_PAYLOADS)


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_hostile_json_bodies_get_a_readable_4xx_and_change_nothing(client, world, radiologist, name):
    client.force_login(radiologist)  # the uploader: the right role for every one of these
    url = _url(name, world)
    payloads = [(label, body, ctype) for label, body, ctype in BODY_PAYLOADS]
    payloads += [(f"field payload {body[:80]!r}", body, JSON) for body in FIELD_PAYLOADS[name]]
    for label, body, content_type in payloads:
        if not FIELD_PAYLOADS[name] and label in ("empty", "whitespace"):
            continue  # finish takes no fields: an empty body is a valid request (checked below)
        before = _snapshot(world)
        response = client.post(url, data=body, content_type=content_type, headers={"Accept": JSON})
        _assert_json_refusal(response, label)
        assert _snapshot(world) == before, label
    # The endpoint still works with a proper request afterwards.
    good = {
        "studies:upload_batch_create": _j({"study": str(world["released"].study.pk)}),
        "studies:upload_file_create": _j({"name": "b.dcm", "size": 3}),
        "studies:upload_batch_finish": b"",
        "deidentification:image_mask_preview": _j({"boxes": [[0, 0, 10, 10]]}),
        "deidentification:image_mask_release": _j({"boxes": [[0, 0, 10, 10]]}),
    }.get(name)
    if good is not None:  # the inference endpoints need an ensemble: tests/inference runs them
        assert client.post(url, data=good, content_type=JSON).status_code in (200, 201)


def test_each_refusal_says_what_is_wrong(client, world, radiologist):
    client.force_login(radiologist)
    files = _url("studies:upload_file_create", world)
    mask = _url("deidentification:image_mask_release", world)

    def error(url, body, content_type=JSON):
        return client.post(url, data=body, content_type=content_type).json()["error"]

    assert "not valid Unicode" in error(files, b'{"name": "\\ud800.dcm", "size": 3}')
    assert "not valid UTF-8" in error(files, b'{"name": "\xff", "size": 3}')
    assert "nested too deeply" in error(files, DEEP_SMALL)
    assert "larger than the server accepts" in error(files, DEEP)
    assert "not finite" in error(mask, b'{"boxes": [[NaN, 0, 10, 10]]}')
    assert "must be a JSON object" in error(files, b"[]")
    assert "empty" in error(files, b"")
    assert "Content-Type: application/json" in error(files, b"{}", "text/plain")
    assert "file size must be a whole number" in error(files, _j({"name": "a", "size": True}))
    assert "over the 1 GB limit" in error(files, _j({"name": "a", "size": 10**400}))
    assert "four numbers of pixels" in error(mask, _j({"boxes": [[0, 0, 10**400, 10]]}))


# CSVs of labels that cannot be used, sent as text/csv to an upload started with mode "csv".
CSV_PAYLOADS = [
    ("empty", b""),
    ("blank lines", b"\n\r\n  \n"),
    ("invalid UTF-8", b"a.png,normal\n\xff\xfe.png,normal\n"),
    ("an encoded lone surrogate", b"\xed\xa0\x80.png,normal\n"),
    ("UTF-16", "a.png,normal\n".encode("utf-16")),
    ("NUL", b"a.png,normal\x00\n"),
    ("a PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20),
    ("a zip", b"PK\x03\x04" + b"\x00" * 40),
    ("one column", b"a.png\nb.png\n"),
    ("three columns", b"a.png,normal,extra\n"),
    ("header only", b"file,label\n"),
    ("unknown classes", b"a.png,cat\nb.png,dog\n"),
    ("two classes in a binary project", b"a.png,normal;pneumonia\n"),
    ("ungradable with a class", b"a.png,ungradable|normal\n"),
    ("no file name", b",normal\n"),
    ("an unclosed quote", b'a.png,"normal\n'),
    ("quotes everywhere", b'"' * 5000),
    ("a cell past the csv module's limit", b"a.png," + b"n" * 200_000),
    ("a name past 1024 characters", b"a" * 2000 + b".png,normal\n"),
    ("only separators", b",,,,\n;;;;\n"),
    ("JSON", b'{"a.png": "normal"}'),
]


def test_hostile_label_csvs_get_a_readable_4xx_and_change_nothing(client, world, radiologist, settings):
    client.force_login(radiologist)
    batch = client.post(
        _url("studies:upload_batch_create", world), data=_j({"labels": {"mode": "csv"}}), content_type=JSON
    ).json()
    url = reverse("studies:upload_labels_csv", kwargs={"batch_id": batch["id"]})
    cases = [(label, body, content_type) for label, body, content_type in BODY_PAYLOADS]
    cases += [(f"CSV {label}", body, "text/csv") for label, body in CSV_PAYLOADS]
    for label, body, content_type in cases:
        before = _snapshot(world)
        response = client.post(url, data=body, content_type=content_type, headers={"Accept": JSON})
        _assert_json_refusal(response, label)
        assert _snapshot(world) == before, label
        assert UploadBatch.objects.get(pk=batch["id"]).label_csv_report == {}, label
    settings.UPLOAD_LABEL_CSV_MAX_SIZE = 64
    response = client.post(url, data=b"a.png,normal\n" * 10, content_type="text/csv")
    assert response.status_code == 413 and "over the 64 bytes limit" in response.json()["error"]
    settings.UPLOAD_LABEL_CSV_MAX_SIZE = 1024 * 1024
    # The endpoint still works with a proper CSV afterwards.
    response = client.post(url, data=b"a.png,normal\n", content_type="text/csv")
    assert response.status_code == 200 and response.json()["labelled"] == 1


def test_hostile_chunks_get_a_readable_4xx(client, world, radiologist, settings):
    client.force_login(radiologist)
    url = _url("studies:upload_chunk", world)

    def send(data, offset="0", content_type="application/octet-stream"):
        headers = {"Accept": JSON} if offset is None else {"Accept": JSON, "X-Chunk-Offset": offset}
        return client.post(url, data=data, content_type=content_type, headers=headers)

    cases = [(f"offset {offset[:20]!r}", send(b"abc", offset)) for offset in CHUNK_OFFSETS]
    cases.append(("no offset header", send(b"abc", None)))
    cases.append(("JSON instead of bytes", send(b'{"data": "abc"}', content_type=JSON)))
    cases.append(("form instead of bytes", send(b"data=abc", content_type="application/x-www-form-urlencoded")))
    cases.append(("past the declared size", send(b"x" * 11)))
    probe = send(b"", "5")  # the page asking where to resume: told, with any content type
    assert probe.status_code == 409 and probe.json()["received"] == 0
    cases.append(("at the wrong offset", send(b"abc", "5")))
    settings.UPLOAD_CHUNK_SIZE = 4
    cases.append(("over the chunk size", send(b"x" * 5)))
    # Past DATA_UPLOAD_MAX_MEMORY_SIZE, Django refuses the body itself (RequestDataTooBig).
    settings.UPLOAD_CHUNK_SIZE = 1024 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 8
    cases.append(("over DATA_UPLOAD_MAX_MEMORY_SIZE", send(b"x" * 10)))
    for label, response in cases:
        _assert_json_refusal(response, label)
    too_large = [response for label, response in cases if "over" in label]
    assert [r.status_code for r in too_large] == [413, 413]
    upload = UploadedFile.objects.get(pk=world["file_id"])
    assert upload.received == 0


def test_a_body_django_refuses_before_our_view_still_gets_json(world, radiologist, settings):
    """With CSRF checks on (as in a browser), the CSRF middleware reads a form-encoded body before
    any view of ours: past DATA_UPLOAD_MAX_MEMORY_SIZE that is Django's RequestDataTooBig, answered
    by our handler400 as a JSON 413 when JSON is wanted."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(radiologist)
    assert browser.get(_url("studies:upload_create", world)).status_code == 200  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 8
    response = browser.post(
        _url("studies:upload_file_create", world),
        data="name=" + "a" * 100,
        content_type="application/x-www-form-urlencoded",
        headers={"Accept": JSON, "X-CSRFToken": token},
    )
    assert response.status_code == 413
    _assert_json_refusal(response, "body too large for Django")


def test_json_endpoints_refuse_other_methods_with_json(client, world, radiologist):
    client.force_login(radiologist)
    for name in JSON_ENDPOINTS:
        method = client.post if name == "studies:upload_batch_status" else client.get
        response = method(_url(name, world), headers={"Accept": JSON})
        assert response.status_code == 405, name
        _assert_json_refusal(response, name)
    response = client.post(_url("studies:upload_batch_status", world), data=DEEP, content_type=JSON)
    assert response.status_code == 405


# --- Forms ------------------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"
VALID_PROJECT = "name=Fractures&task_type=binary&class_names=no%0Afracture"
# (label, body, content type, the text the refusal shows)
FORM_PAYLOADS = {
    "accounts:project_create": [
        ("empty", b"", FORM, "This field is required"),
        ("NUL in the name", b"name=a%00b&task_type=binary&class_names=x", FORM, "Null characters are not allowed"),
        ("long name", b"name=" + b"a" * 5000 + b"&task_type=binary&class_names=x", FORM, "at most 200 characters"),
        ("unknown task", b"name=X&task_type=%ED%A0%80&class_names=x", FORM, "Select a valid choice"),
        ("invalid UTF-8", b"name=\xff\xfe&task_type=\xff&class_names=\xff", FORM, "Select a valid choice"),
        ("JSON body", b'{"name": "X", "task_type": "binary"}', JSON, "This field is required"),
        ("NUL in classes", b"name=Y&task_type=binary&class_names=a%00", FORM, "Null characters are not allowed"),
    ],
    "accounts:member_set": [
        ("empty", b"", FORM, "This field is required"),
        ("NUL in the username", b"username=a%00&role=admin", FORM, "Null characters are not allowed"),
        ("unknown role", b"username=x&role=%00", FORM, "Select a valid choice"),
        ("surrogate", b"username=%ED%A0%80&role=clinician", FORM, "No active user"),
        ("invalid UTF-8", b"username=\xff&role=\xfe", FORM, "Select a valid choice"),
        ("JSON body", b'{"username": "x", "role": "admin"}', JSON, "This field is required"),
    ],
}
FORM_PAYLOADS["accounts:project_update"] = FORM_PAYLOADS["accounts:project_create"]


@pytest.mark.parametrize("name", sorted(FORM_PAYLOADS))
def test_hostile_forms_get_a_400_with_the_form_error(client, world, project_admin, name):
    user = UserFactory(is_superuser=True, is_staff=True) if name == "accounts:project_create" else project_admin
    client.force_login(user)
    for label, body, content_type, message in FORM_PAYLOADS[name]:
        before = _snapshot(world)
        response = client.post(_url(name, world), data=body, content_type=content_type)
        assert response.status_code == 400, (label, response.status_code)
        assert message in response.content.decode(), label
        assert _snapshot(world) == before, label


def test_the_last_admin_cannot_be_removed_whatever_the_body(client, world, project_admin):
    client.force_login(project_admin)
    url = _url("accounts:member_remove", world)
    for label, body, content_type in BODY_PAYLOADS:
        before = _snapshot(world)
        response = client.post(url, data=body, content_type=content_type)
        assert response.status_code == 400, label
        assert "at least one admin" in response.content.decode(), label
        assert _snapshot(world) == before, label


def test_too_many_or_too_large_form_fields_get_a_4xx_page(client, world, project_admin, settings):
    client.force_login(project_admin)
    url = _url("accounts:member_set", world)
    response = client.post(url, data="&".join(f"f{i}=1" for i in range(2000)), content_type=FORM)
    assert response.status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    response = client.post(url, data="username=" + "a" * 100 + "&role=admin", content_type=FORM)
    assert response.status_code == 413 and "larger than the server accepts" in response.content.decode()


HARMLESS_FORM_BODIES = [
    (body, content_type)
    for _, body, content_type in BODY_PAYLOADS
    if len(body) < 50_000  # the large ones are above
] + [(b"ocr_enabled=%00&clean_descriptors=%ED%A0%80&retain_modified_dates=\xff", FORM)]


@pytest.mark.parametrize(
    "name",
    [
        "login",
        "password_change",
        "deidentification:profile_update",
        "logout",
        "inference:registry",
        "inference:ensemble_activate",
        "labelling:settings_update",
        "labelling:adjudicate",
        "review:decide",
    ],
)
def test_hostile_bodies_on_the_other_forms_never_get_a_500(client, world, project_admin, name):
    """Login and password forms answer their own form errors; the options form has only checkboxes
    (anything sent reads as on or off); logout takes no fields."""
    for body, content_type in HARMLESS_FORM_BODIES:
        client.force_login(project_admin)
        response = client.post(_url(name, world), data=body, content_type=content_type)
        assert response.status_code in (200, 302, 400, 404, 429), (name, body[:40], response.status_code)
        if name in ("login", "password_change") and response.status_code != 302:
            page = response.content.decode()
            assert "errorlist" in page or "invalid-feedback" in page or "alert" in page, (name, body[:40])


# --- Pages ------------------------------------------------------------------------------------------

HOSTILE_QUERIES = [
    "page=1e400",
    "page=-1",
    "page=NaN",
    "page=" + "9" * 5000,
    "frame=1e400",
    "frame=-1",
    "frame=%00",
    "frame=" + "9" * 5000,
    "voi=%00",
    "voi=99",
    "voi=-1",
    "voi=0&voi=%ED%A0%80",
    "voi=" + "9" * 5000,
    "project=%ED%A0%80",
    "project=not-a-uuid",
    "project=%00",
    "status=%00",
    "status=%FF%FE",
    "modality=%00",
    "date_from=99999-99-99",
    "date_to=%00",
    "action=%00",
    "action=%ED%A0%80",
    "next=%00",
    "priority=%00&state=%FF%FE",
    "rank_class=%ED%A0%80&modality=" + "x" * 5000,
    "ai_class=%00&ai_call=positive",
    "page=1&page=2&page=%FF",
    "ensemble=not-a-uuid",
    "ensemble=%00",
    "member=%ED%A0%80",
    "cls=%FF%FE",
    "decision=%00",
    "disagreement=%ED%A0%80",
    "patient=%00",
    "patient=%ED%A0%80",
    "patient=" + "A" * 5000,
    "sort=%00",
    "sort=__class__",
    "sort=-study_date%27",
    "user=%00",
    "user=not-a-number",
    "user=" + "9" * 5000,
    "user=-1",
    "date_from=2024-02-30",
    "date_to=0000-01-01",
]

# The pages added for readable worklists and the audit trail, as the project admin (who may read
# the audit trail and the link table: the radiologist above gets a 403 before any parameter is read).
ADMIN_PAGES = [
    "studies:worklist",
    "studies:study_detail",
    "deidentification:held_list",
    "deidentification:image_mask_thumbnail",
    "deidentification:audit_list",
    "deidentification:audit_export",
    "deidentification:patient_links",
]


def test_new_pages_never_answer_500_to_a_hostile_query_as_admin(client, world, project_admin):
    client.force_login(project_admin)
    for name in ADMIN_PAGES:
        url = _url(name, world)
        for query in HOSTILE_QUERIES:
            response = client.get(f"{url}?{query}")
            assert response.status_code in (200, 302, 403, 404), (name, query[:40], response.status_code)
            if response.streaming:
                b"".join(response.streaming_content)


def test_pages_never_answer_500_to_a_hostile_query(client, world, radiologist):
    client.force_login(radiologist)
    for name in sorted(PAGES):
        url = _url(name, world)
        for query in HOSTILE_QUERIES:
            response = client.get(f"{url}?{query}")
            assert response.status_code in (200, 302, 403, 404), (name, query[:40], response.status_code)


def test_hostile_review_decisions_get_a_400_or_a_refusal_and_store_nothing(client, world, radiologist):
    """The review form with a finished AI result to judge: whatever the body, nothing is stored
    unless it is a whole, valid decision; the review pages with hostile queries still answer."""
    from clinic_ai.inference.models import Ensemble, InferenceResult, ResultStatus
    from clinic_ai.labelling.models import Label
    from clinic_ai.review.models import Review

    ensemble = Ensemble.objects.create(project=world["project"], slug="hostile-review", name="H", is_active=True)
    result = InferenceResult.objects.create(
        image=world["released"],
        ensemble=ensemble,
        status=ResultStatus.DONE,
        labels=["pneumonia"],
        probabilities={"normal": 0.3, "pneumonia": 0.7},
        uncertainty={"entropy": "NaN", "member_std": None},
        members=[{"name": 5}, "not a member"],
        versions={"ensemble": 7},
    )
    client.force_login(radiologist)
    url = _url("review:decide", world)
    r = f"result={result.pk}".encode()
    bodies = [*HARMLESS_FORM_BODIES]
    bodies += [
        (r + b"&decision=disagree&values=%00", FORM),
        (r + b"&decision=disagree&values=fracture", FORM),
        (r + b"&decision=disagree&values=pneumonia", FORM),  # the AI's own call: refused
        (r + b"&decision=disagree&values=normal&values=pneumonia", FORM),
        (r + b"&decision=agree&comment=a%00b", FORM),
        (r + b"&decision=agree&comment=" + b"x" * 1001, FORM),
        (r + b"&decision=agree&request_id=%ED%A0%80", FORM),
        (r + b"&decision=%ED%A0%80", FORM),
        (r + b"&decision=agree&result=" + str(uuid.uuid4()).encode(), FORM),
        (f"result={uuid.uuid4()}&decision=agree".encode(), FORM),
        (b"result=\xff&decision=agree", FORM),
        (r + b"&decision=agree", JSON),
    ]
    for body, content_type in bodies:
        response = client.post(url, data=body, content_type=content_type)
        assert response.status_code in (302, 400), (body[:60], response.status_code)
        assert not Review.objects.exists() and not Label.objects.exists(), body[:60]
    for name in ("review:worklist", "review:review_image"):
        for query in HOSTILE_QUERIES:
            response = client.get(f"{_url(name, world)}?{query}")
            assert response.status_code == 200, (name, query[:40], response.status_code)
    assert client.post(url, data=r + b"&decision=agree", content_type=FORM).status_code == 302
    assert Review.objects.count() == 1


ADMIN_PAGES = sorted(name for name in PAGES if name.startswith("performance:"))


def test_admin_pages_never_answer_500_to_a_hostile_query(client, world, project_admin):
    """The pages only admins may open, sent the same queries as an admin (a radiologist gets 403)."""
    client.force_login(project_admin)
    for name in ADMIN_PAGES:
        url = _url(name, world)
        for query in HOSTILE_QUERIES:
            response = client.get(f"{url}?{query}")
            assert response.status_code == 200, (name, query[:40], response.status_code)
