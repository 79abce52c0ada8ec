"""Upload status and finish need the upload role; a study whose images are all held is nobody's but
its uploader's and the admins'. Each as the right role, a wrong role (an uploader moved to clinician)
and an outsider."""

import json

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Membership, Role
from clinic_ai.studies.models import UploadBatch
from tests.conftest import run_pipeline_inline

pytestmark = pytest.mark.django_db

PATIENT_FILE_NAME = "Doe^Jane 1961-02-03.dcm"


@pytest.fixture
def open_batch(client, project, radiologist):
    """An upload the radiologist started, one file declared (its name names a patient), not finished."""
    client.force_login(radiologist)
    batch = client.post(
        reverse("studies:upload_batch_create", args=[project.pk]), data="{}", content_type="application/json"
    ).json()
    declared = client.post(
        batch["files_url"], data=json.dumps({"name": PATIENT_FILE_NAME, "size": 3}), content_type="application/json"
    )
    assert declared.status_code == 201
    client.logout()
    return batch


def _demote(user, project):
    Membership.objects.filter(user=user, project=project).update(role=Role.CLINICIAN)


@pytest.mark.parametrize(("who", "status"), [("uploader", 200), ("demoted_uploader", 403), ("outsider", 404)])
def test_upload_status_needs_the_upload_role(client, project, radiologist, outsider, open_batch, who, status):
    if who == "demoted_uploader":
        _demote(radiologist, project)
    client.force_login(outsider if who == "outsider" else radiologist)
    response = client.get(open_batch["status_url"])
    assert response.status_code == status
    assert (PATIENT_FILE_NAME in response.content.decode()) == (status == 200)
    if status != 200:
        assert response.json()["error"]


@pytest.mark.parametrize(("who", "status"), [("uploader", 200), ("demoted_uploader", 403), ("outsider", 404)])
def test_finishing_an_upload_needs_the_upload_role(client, project, radiologist, outsider, open_batch, who, status):
    if who == "demoted_uploader":
        _demote(radiologist, project)
    client.force_login(outsider if who == "outsider" else radiologist)
    response = client.post(open_batch["finish_url"], data="{}", content_type="application/json")
    assert response.status_code == status
    finished = UploadBatch.objects.get(pk=open_batch["id"]).finished_at is not None
    assert finished == (status == 200)


def test_a_demoted_uploader_cannot_declare_or_send_either(client, project, radiologist, open_batch):
    _demote(radiologist, project)
    client.force_login(radiologist)
    response = client.post(
        open_batch["files_url"], data=json.dumps({"name": "b.dcm", "size": 3}), content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["error"]


@pytest.fixture
def held_study(held_image):
    """A study whose only image is held for masking."""
    return held_image.study


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("radiologist", True),  # the uploader, who masks it
        ("project_admin", True),
        ("clinician", False),
        ("other_radiologist", False),
        ("outsider", False),
    ],
)
def test_a_study_whose_images_are_all_held_is_hidden_from_everyone_else(client, held_study, who, visible, request):
    user = request.getfixturevalue(who)
    client.force_login(user)
    short = str(held_study.pk)[:8]
    assert client.get(reverse("studies:study_detail", args=[held_study.pk])).status_code == (200 if visible else 404)
    assert (short in client.get(reverse("studies:worklist")).content.decode()) == visible
    home = client.get(reverse("home")).content.decode()
    assert "0 studies" in home or who == "outsider"
    if who in ("radiologist", "project_admin", "other_radiologist"):
        upload_page = client.get(reverse("studies:upload_create", args=[held_study.project.pk])).content.decode()
        assert (short in upload_page) == visible


def test_a_study_shows_once_one_of_its_images_is_released(client, held_study, radiologist, clinician):
    client.force_login(radiologist)
    image = held_study.images.get()
    response = client.post(
        reverse("deidentification:image_mask_release", args=[image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    assert response.status_code == 200
    run_pipeline_inline()
    client.force_login(clinician)
    assert client.get(reverse("studies:study_detail", args=[held_study.pk])).status_code == 200
    assert "1 study" in client.get(reverse("home")).content.decode()
