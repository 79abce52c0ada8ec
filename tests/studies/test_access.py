"""Every clinical view as the right role, a member without it, and an outsider."""

import json

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Role
from clinic_ai.core.models import AuditEvent
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


@pytest.fixture
def released_image(client, project, radiologist, ct_bytes):
    client.force_login(radiologist)
    upload_through_api(client, project, {"a.dcm": ct_bytes})
    run_pipeline_inline()
    client.logout()
    return Image.objects.get()


@pytest.fixture
def quarantined_image(client, project, radiologist, png_bytes):
    """An image stopped before release, as the PII step will hold images for masking."""
    from clinic_ai.studies import services
    from clinic_ai.studies.models import UploadedFile

    client.force_login(radiologist)
    upload_through_api(client, project, {"b.png": png_bytes})
    upload = UploadedFile.objects.get(status="received")
    services.uploaded_file_process(upload_id=upload.pk)
    client.logout()
    image = Image.objects.get(status=ImageStatus.QUARANTINED)
    assert image.status == ImageStatus.QUARANTINED
    return image


@pytest.fixture
def clinician_elsewhere(member_of):
    from tests.factories import ProjectFactory

    return member_of(ProjectFactory(), Role.CLINICIAN)


@pytest.mark.parametrize(
    ("who", "status"),
    [("radiologist", 200), ("clinician", 200), ("project_admin", 200), ("outsider", 404), ("clinician_elsewhere", 404)],
)
@pytest.mark.parametrize("view", ["studies:study_detail", "studies:image_detail", "studies:image_preview"])
def test_released_images_by_role(client, released_image, who, status, view, request):
    client.force_login(request.getfixturevalue(who))
    target = released_image.study.pk if view == "studies:study_detail" else released_image.pk
    assert client.get(reverse(view, args=[target])).status_code == status


@pytest.mark.parametrize(
    ("who", "status"),
    [("radiologist", 200), ("project_admin", 200), ("other_radiologist", 404), ("clinician", 404), ("outsider", 404)],
)
def test_a_quarantined_original_is_for_its_uploader_and_admins_only(client, quarantined_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("studies:image_detail", args=[quarantined_image.pk])).status_code == status
    response = client.get(reverse("studies:image_original", args=[quarantined_image.pk]))
    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content).startswith(b"\x89PNG")
        assert str(quarantined_image.pk) in response["Content-Disposition"]
        assert AuditEvent.objects.filter(action="quarantine.view", object_id=str(quarantined_image.pk)).count() == 1


def test_a_released_image_has_no_original_to_download(client, released_image, radiologist):
    client.force_login(radiologist)
    assert client.get(reverse("studies:image_original", args=[released_image.pk])).status_code == 404


def test_the_worklist_hides_other_projects_and_others_quarantine(
    client, released_image, quarantined_image, other_radiologist, outsider
):
    client.force_login(other_radiologist)
    page = client.get(reverse("studies:worklist")).content.decode()
    assert str(released_image.study.pk)[:8] in page
    assert str(quarantined_image.study.pk)[:8] not in page
    client.force_login(outsider)
    page = client.get(reverse("studies:worklist")).content.decode()
    assert str(released_image.study.pk)[:8] not in page


def test_worklist_filters_and_a_bounded_number_of_queries(
    client, released_image, radiologist, django_assert_max_num_queries
):
    client.force_login(radiologist)
    url = reverse("studies:worklist")
    with django_assert_max_num_queries(12):
        assert client.get(url).status_code == 200
    assert str(released_image.study.pk)[:8] in client.get(url, {"modality": "CT"}).content.decode()
    assert str(released_image.study.pk)[:8] not in client.get(url, {"modality": "MR"}).content.decode()
    assert str(released_image.study.pk)[:8] not in client.get(url, {"status": "quarantined"}).content.decode()
    # Study dates are shifted by de-identification (by one to ten years, into the past).
    assert str(released_image.study.pk)[:8] in client.get(url, {"date_from": "1980-01-01"}).content.decode()
    assert str(released_image.study.pk)[:8] not in client.get(url, {"date_to": "1980-01-01"}).content.decode()


@pytest.mark.parametrize(
    ("who", "status"), [("radiologist", 200), ("project_admin", 200), ("clinician", 403), ("outsider", 404)]
)
def test_upload_page_by_role(client, project, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("studies:upload_create", args=[project.pk])).status_code == status
    response = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    )
    assert response.status_code == (201 if status == 200 else status)


@pytest.mark.parametrize("who", ["other_radiologist", "outsider", "project_admin"])
def test_nobody_else_follows_or_feeds_an_upload(client, project, radiologist, who, request):
    client.force_login(radiologist)
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    declared = client.post(
        batch["files_url"], data=json.dumps({"name": "Doe^John.dcm", "size": 3}), content_type="application/json"
    ).json()
    client.force_login(request.getfixturevalue(who))
    assert client.get(batch["status_url"]).status_code == 404
    assert (
        client.post(
            declared["chunk_url"], data=b"abc", content_type="application/octet-stream", headers={"X-Chunk-Offset": "0"}
        ).status_code
        == 404
    )
    assert client.post(batch["finish_url"], data="{}", content_type="application/json").status_code == 404


def test_uuid_urls_do_not_accept_guesses(client, radiologist):
    client.force_login(radiologist)
    assert client.get("/images/1/").status_code == 404
    assert client.get("/images/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_malformed_ids_in_a_request_body_get_a_clear_answer(client, project, radiologist):
    client.force_login(radiologist)
    url = reverse("studies:upload_batch_create", args=[project.pk])
    response = client.post(url, data=json.dumps({"study": "not-a-uuid"}), content_type="application/json")
    assert response.status_code == 404
    response = client.post(url, data=b"\xff\xfe not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]
    response = client.post(url, data="{}", content_type="application/json")
    files_url = response.json()["files_url"]
    for body in ({"name": "a.dcm"}, {"name": "", "size": 3}, {"name": "a", "size": "3"}, {"name": "a", "size": -1}):
        assert client.post(files_url, data=json.dumps(body), content_type="application/json").status_code == 400
