"""Masking, link table, audit trail and options: the right role, a wrong role, an outsider."""

import json

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Role
from clinic_ai.core.models import AuditEvent
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


WHO = [
    ("radiologist", 200),  # the uploader
    ("project_admin", 200),
    ("other_radiologist", 404),
    ("clinician", 404),
    ("outsider", 404),
]


@pytest.mark.parametrize(("who", "status"), WHO)
def test_the_masking_pages_are_for_the_uploader_and_admins(client, held_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("deidentification:image_mask", args=[held_image.pk])).status_code == status
    source = client.get(reverse("deidentification:image_mask_source", args=[held_image.pk]))
    assert source.status_code == status
    preview = client.post(
        reverse("deidentification:image_mask_preview", args=[held_image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    assert preview.status_code == status
    if status == 200:
        assert source["Content-Type"] == preview["Content-Type"] == "image/png"
        assert source.content != preview.content
        assert AuditEvent.objects.filter(action="quarantine.view", object_id=str(held_image.pk)).count() == 2
    listed = client.get(reverse("deidentification:held_list")).content.decode()
    assert (str(held_image.pk)[:8] in listed) == (status == 200)


@pytest.mark.parametrize(("who", "status"), WHO)
def test_only_the_uploader_and_admins_release_a_held_image(client, held_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.post(
        reverse("deidentification:image_mask_release", args=[held_image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    assert response.status_code == status
    held_image.refresh_from_db()
    assert (held_image.status == ImageStatus.MASKING) == (status == 200)
    run_pipeline_inline()  # the mask_image task
    held_image.refresh_from_db()
    assert (held_image.status == ImageStatus.RELEASED) == (status == 200)


@pytest.mark.parametrize(("who", "status"), [("project_admin", 200), ("radiologist", 403), ("outsider", 404)])
def test_the_patient_link_table_is_for_admins_and_every_read_is_audited(client, held_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("deidentification:patient_links", args=[held_image.project.pk]))
    assert response.status_code == status
    reads = AuditEvent.objects.filter(action="patient_link.view")
    assert reads.count() == (1 if status == 200 else 0)
    if status == 200:
        assert "MRN55501234" in response.content.decode()
        assert reads.get().actor == request.getfixturevalue(who)


@pytest.mark.parametrize(("who", "status"), [("project_admin", 200), ("radiologist", 403), ("outsider", 404)])
def test_the_audit_trail_is_for_admins(client, held_image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("deidentification:audit_list", args=[held_image.project.pk]))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        for action in ("upload.start", "image.quarantine", "image.deidentify", "image.hold"):
            assert action in page


@pytest.mark.parametrize(("who", "status"), [("project_admin", 302), ("radiologist", 403), ("outsider", 404)])
def test_only_admins_change_the_deidentification_options(client, project, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.post(
        reverse("deidentification:profile_update", args=[project.pk]),
        {"retain_modified_dates": "on", "clean_descriptors": "on", "ocr_enabled": "on"},
    )
    assert response.status_code == status
    from clinic_ai.deidentification.services import profile_for

    profile = profile_for(project)
    assert profile.clean_descriptors == (status == 302)


def test_an_uploader_moved_to_clinician_no_longer_sees_or_releases_their_held_image(client, held_image, radiologist):
    from clinic_ai.accounts.models import Membership

    Membership.objects.filter(user=radiologist, project=held_image.project).update(role=Role.CLINICIAN)
    client.force_login(radiologist)
    assert client.get(reverse("deidentification:image_mask", args=[held_image.pk])).status_code == 404
    response = client.post(
        reverse("deidentification:image_mask_release", args=[held_image.pk]),
        data=json.dumps({"boxes": [[0, 0, 100, 40]]}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert str(held_image.pk)[:8] not in client.get(reverse("deidentification:held_list")).content.decode()
    held_image.refresh_from_db()
    assert held_image.status == ImageStatus.HELD


@pytest.fixture
def held_multiframe(client, project, radiologist):
    from .synthetic import BURNED_TEXT, TEXT_ORIGIN, multiframe_xa_bytes

    client.force_login(radiologist)
    text = {i: (BURNED_TEXT, TEXT_ORIGIN) for i in range(3)}
    upload_through_api(client, project, {"xa.dcm": multiframe_xa_bytes(frames=3, text_on=text, size=18)})
    run_pipeline_inline()
    client.logout()
    image = Image.objects.get()
    assert (image.status, image.frames) == (ImageStatus.HELD, 3)
    return image


@pytest.mark.parametrize(("who", "status"), WHO)
def test_each_frame_of_a_held_image_and_of_its_masked_result_is_shown_to_the_same_people(
    client, held_multiframe, who, status, request
):
    from io import BytesIO

    from PIL import Image as Picture

    client.force_login(request.getfixturevalue(who))
    url = reverse("deidentification:image_mask_source", args=[held_multiframe.pk])
    preview_url = reverse("deidentification:image_mask_preview", args=[held_multiframe.pk])
    sources, masked = [], []
    for frame in range(3):
        source = client.get(url, {"frame": frame})
        preview = client.post(
            preview_url, data=json.dumps({"boxes": [[0, 0, 250, 40]], "frame": frame}), content_type="application/json"
        )
        assert (source.status_code, preview.status_code) == (status, status)
        sources.append(source.content)
        masked.append(preview.content)
    if status != 200:
        return
    assert len(set(sources)) == 3  # three different frames
    for content in masked:
        top = Picture.open(BytesIO(content)).convert("L").crop((2, 2, 248, 38))
        assert top.getextrema() == (0, 0)  # the box is black on every frame
    views = AuditEvent.objects.filter(action="quarantine.view", object_id=str(held_multiframe.pk))
    assert sorted(e.data["frame"] for e in views) == [0, 0, 1, 1, 2, 2]
    assert client.get(url, {"frame": 3}).status_code == 404
    past = client.post(preview_url, data=json.dumps({"boxes": [], "frame": 3}), content_type="application/json")
    assert past.status_code == 400
