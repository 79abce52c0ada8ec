"""The masking queue's thumbnails, the audit trail in sentences, and the patient link table as a table."""

import ast
import csv
import datetime
import io
import json
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from clinic_ai.core.audit_sentences import FALLBACK, SENTENCES, AuditRefs, sentence
from clinic_ai.core.models import AuditEvent
from clinic_ai.core.services import audit_record
from clinic_ai.deidentification.models import PatientLink
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api
from tests.factories import UserFactory

from .synthetic import ultrasound_bytes

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site_admin(db):
    return UserFactory(is_superuser=True, is_staff=True)


# --- Masking queue thumbnails -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("radiologist", 200),  # the uploader
        ("project_admin", 200),
        ("site_admin", 200),
        ("other_radiologist", 404),
        ("clinician", 404),
        ("outsider", 404),
    ],
)
def test_a_held_thumbnail_is_for_the_uploader_and_admins_only(client, held_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("deidentification:image_mask_thumbnail", args=[held_image.pk]))
    assert response.status_code == status
    views = AuditEvent.objects.filter(action="quarantine.view", object_id=str(held_image.pk))
    if status == 200:
        from PIL import Image as PILImage

        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"
        picture = PILImage.open(io.BytesIO(response.content))
        assert max(picture.size) <= 160
        assert views.get().data == {"masked": False, "frame": 0, "thumbnail": True}
        listed = client.get(reverse("deidentification:held_list")).content.decode()
        assert reverse("deidentification:image_mask_thumbnail", args=[held_image.pk]) in listed
        assert held_image.hold_reason and held_image.hold_reason in listed
    else:
        assert not views.exists()


def test_a_released_image_has_no_thumbnail_in_the_queue(client, held_image, radiologist):
    client.force_login(radiologist)
    client.post(
        reverse("deidentification:image_mask_release", args=[held_image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    run_pipeline_inline()
    held_image.refresh_from_db()
    assert held_image.status == ImageStatus.RELEASED
    assert client.get(reverse("deidentification:image_mask_thumbnail", args=[held_image.pk])).status_code == 404


# --- Audit sentences ----------------------------------------------------------------------------


def _actions_in_code() -> set[str]:
    """Every action string passed to audit_record(...) anywhere in the code base."""
    found = set()
    for path in (REPO / "clinic_ai").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_record"
            ):
                continue
            for keyword in node.keywords:
                if keyword.arg == "action":
                    found |= {
                        c.value
                        for c in ast.walk(keyword.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    }
    return found


def test_every_action_written_in_the_code_has_a_sentence():
    actions = _actions_in_code()
    assert len(actions) > 30 and {"image.release", "label.create", "label.change"} <= actions
    assert sorted(actions - set(SENTENCES)) == []


@pytest.mark.parametrize("action", sorted(SENTENCES))
def test_each_sentence_reads_as_words_even_with_odd_data(project, radiologist, action):
    """Whatever the event's data (a dict where a count was expected, say), the sentence shows no
    raw Python or JSON and no unfilled placeholder."""
    radiologist.first_name, radiologist.last_name = "Ada", "Lovelace"
    for data in ({}, {"reason": {"nested": ["x"]}, "boxes": {"a": 1}, "values": [{"k": 1}], "files": "x"}):
        for actor in (radiologist, None):
            event = AuditEvent(action=action, actor=actor, project=project, data=data)
            html, text = sentence(event, AuditRefs())
            for output in (html, text):
                assert "{" not in output and "}" not in output and "[" not in output, (action, output)
            if event.actor is None or not SENTENCES[action].startswith("{actor}"):
                assert text[0].isupper(), (action, text)


def test_an_unknown_action_falls_back_to_its_name(project, radiologist):
    event = AuditEvent(action="review.teleport", actor=radiologist, project=project, data={"secret": {"a": 1}})
    html, text = sentence(event, AuditRefs())
    assert text == FALLBACK.format(actor=radiologist.username, action="review.teleport", object="").strip()
    assert "review.teleport" in html
    assert "secret" not in text and "{" not in text


def test_audit_sentences_name_the_people_and_link_the_image_and_its_study(
    client, project, held_image, radiologist, project_admin
):
    radiologist.first_name, radiologist.last_name = "Ada", "Lovelace"
    radiologist.save()
    client.force_login(radiologist)
    client.post(
        reverse("deidentification:image_mask_release", args=[held_image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    run_pipeline_inline()
    held_image.refresh_from_db()
    study = held_image.study
    client.force_login(project_admin)
    response = client.get(reverse("deidentification:audit_list", args=[project.pk]))
    assert response.status_code == 200
    sentences = {event.action: str(text) for event, text in response.context["page"]}
    image_url = reverse("studies:image_detail", args=[held_image.pk])
    study_url = reverse("studies:study_detail", args=[study.pk])
    short = str(held_image.pk)[:8]
    release = sentences["image.release"]
    assert release.startswith("Ada Lovelace released ")
    assert f'<a href="{image_url}">image {short}</a>' in release and f'<a href="{study_url}">' in release
    assert study.patient_pseudonym and study.patient_pseudonym in release
    assert "drew 1 box on" in sentences["image.mask_request"]
    assert "was held for masking: " in sentences["image.hold"]
    assert sentences["image.hold"].startswith(f'<a href="{image_url}">Image {short}</a> of ')  # a capital, in the link
    page = response.content.decode()
    assert "{'" not in page and "&#x27;" not in page.split('id="audit-events"')[1]


def _event(action, *, actor=None, project=None, when=None, **data):
    event = audit_record(action=action, actor=actor, project=project, data=data)
    if when is not None:  # events are append-only; a test moves one in time below the ORM
        with connection.cursor() as cursor:
            cursor.execute("UPDATE core_auditevent SET created = %s WHERE id = %s", [when, event.pk])
    return event


@pytest.fixture
def trail(project, radiologist, project_admin):
    old = timezone.make_aware(datetime.datetime(2024, 3, 10, 12, 0))
    _event("label.export", actor=radiologist, project=project, when=old, format="csv", labels=3)
    _event("project.update", actor=project_admin, project=project, fields=["description"])
    for _ in range(55):
        _event("label.export", actor=project_admin, project=project, format="json", labels=1)
    return project


def _listed(client, project, query=""):
    response = client.get(reverse("deidentification:audit_list", args=[project.pk]) + query)
    assert response.status_code == 200
    return response


def test_audit_filters_by_user_action_and_dates_and_paginates(client, trail, radiologist, project_admin):
    client.force_login(project_admin)
    assert _listed(client, trail).context["page"].paginator.count == 57
    by_radiologist = _listed(client, trail, f"?user={radiologist.pk}").context["page"]
    assert [e.actor for e, _ in by_radiologist] == [radiologist]
    assert _listed(client, trail, "?action=project.update").context["page"].paginator.count == 1
    march = _listed(client, trail, "?date_from=2024-03-01&date_to=2024-03-31").context["page"]
    assert [str(t) for _, t in march] == [f"{radiologist.username} exported 3 labels as csv"]
    assert _listed(client, trail, "?date_to=2024-03-09").context["page"].paginator.count == 0
    first = _listed(client, trail, "?action=label.export")
    assert len(first.context["page"]) == 50 and first.context["page"].paginator.num_pages == 2
    assert "action=label.export&amp;page=2" in first.content.decode()
    second = _listed(client, trail, "?action=label.export&page=2").context["page"]
    assert len(second) == 6


def test_audit_page_queries_are_capped(client, trail, project_admin, django_assert_max_num_queries):
    import uuid

    # Events that send the page looking up images, results, members and ensembles, many of each.
    for _ in range(10):
        for object_type in (
            "studies.image",
            "inference.inferenceresult",
            "inference.ensemble",
            "inference.modelversion",
        ):
            AuditEvent.objects.create(action="x.y", project=trail, object_type=object_type, object_id=str(uuid.uuid4()))
        _event("membership.update", actor=project_admin, project=trail, user_id=project_admin.pk, role="admin")
        _event("label.create", actor=project_admin, project=trail, image_id=str(uuid.uuid4()), values=["normal"])
    client.force_login(project_admin)
    _listed(client, trail)
    with django_assert_max_num_queries(13):
        response = _listed(client, trail)
    assert len(response.context["page"]) == 50
    with django_assert_max_num_queries(13):
        _listed(client, trail, "?page=2")


def test_audit_csv_has_the_same_filters_and_no_formulas(client, trail, radiologist, project_admin):
    radiologist.first_name = "=HYPERLINK(1)"
    radiologist.save()
    client.force_login(project_admin)
    response = client.get(reverse("deidentification:audit_export", args=[trail.pk]) + f"?user={radiologist.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["when", "user", "event", "sentence", "object_type", "object_id"]
    assert len(rows) == 2
    assert rows[1][1].startswith("'=") and rows[1][3].startswith("'=")
    export = AuditEvent.objects.get(action="audit.export")
    assert export.actor == project_admin and export.data == {"filters": ["actor"]}
    everything = client.get(reverse("deidentification:audit_export", args=[trail.pk]))
    # 57 events and both exports: each writes its own row before the trail is read.
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))) == 1 + 57 + 2


@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 200), ("site_admin", 200), ("radiologist", 403), ("outsider", 404)]
)
def test_the_audit_trail_and_its_csv_are_for_admins(client, trail, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("deidentification:audit_list", args=[trail.pk])).status_code == status
    assert client.get(reverse("deidentification:audit_export", args=[trail.pk])).status_code == status


# --- Patient link table ---------------------------------------------------------------------------


def test_the_patient_link_table_is_a_table_of_issuer_id_pseudonym_and_images(
    client, project, radiologist, project_admin
):
    from tests.studies.dicom_variants import ct_variant

    client.force_login(radiologist)
    upload_through_api(
        client,
        project,
        {
            "a.dcm": ct_variant(patient_id="MRN-77", issuer="HOSP-B"),
            "b.dcm": ct_variant(patient_id="MRN-77", issuer="HOSP-B"),
        },
    )
    run_pipeline_inline()
    link = PatientLink.objects.get()
    client.force_login(project_admin)
    response = client.get(reverse("deidentification:patient_links", args=[project.pk]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    table = html.split('id="patient-links"')[1]
    assert "<td>HOSP-B</td>" in table and '<td class="original-id">MRN-77</td>' in table
    assert f"<code>{link.pseudonym}</code>" in table and "2 images" in table
    assert f"patient={link.pseudonym}" in table
    assert "[&quot;pid&quot;" not in table and '["pid"' not in table  # no raw JSON
    # The link goes to the patient's studies.
    client.force_login(radiologist)
    listed = client.get(reverse("studies:worklist") + f"?project={project.pk}&patient={link.pseudonym}")
    assert len(listed.context["page"]) >= 1


def test_patient_key_parts_reads_every_key_form():
    from clinic_ai.deid.pseudonyms import patient_key_parts

    assert patient_key_parts('["pid","HOSP","123"]') == ("Patient ID", "HOSP", "123")
    assert patient_key_parts('["name-dob","DOE^JANE","19790312"]') == (
        "Name and birth date",
        "",
        "DOE JANE, born 19790312",
    )
    assert patient_key_parts('["study","1.2.3"]') == ("Study (no patient ID)", "", "1.2.3")
    assert patient_key_parts("not json") == ("unknown", "", "not json")
    assert patient_key_parts('{"a": 1}') == ("unknown", "", '{"a": 1}')


def test_the_masking_queue_and_the_link_table_cap_their_queries(
    client, project, radiologist, project_admin, django_assert_max_num_queries
):
    client.force_login(radiologist)
    upload_through_api(client, project, {f"us{i}.dcm": ultrasound_bytes(seed=20 + i) for i in range(3)})
    run_pipeline_inline()
    assert Image.objects.filter(status=ImageStatus.HELD).count() == 3
    client.force_login(project_admin)
    client.get(reverse("deidentification:held_list"))
    with django_assert_max_num_queries(6):
        listed = client.get(reverse("deidentification:held_list"))
    assert len(listed.context["page"]) == 3
    with django_assert_max_num_queries(8):
        links = client.get(reverse("deidentification:patient_links", args=[project.pk]))
    assert [row["link"].image_count for row in links.context["rows"]] == [3]  # one patient, three images
