"""The Django admin shows clinical rows but cannot change them; options changed there are audited."""

import pytest
from django.contrib import admin
from django.urls import reverse

from clinic_ai.accounts.models import Membership, Project, Role
from clinic_ai.core.models import AuditEvent
from clinic_ai.deidentification.models import DeidProfile, MaskTemplate
from clinic_ai.deidentification.services import PROFILE_OPTIONS, profile_for
from clinic_ai.studies.models import Image, ImageStatus, Series, Study, UploadBatch
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

READ_ONLY = [Image, Study, Series, UploadBatch, AuditEvent, MaskTemplate]


@pytest.fixture
def site_admin():
    return UserFactory(username="site-admin", is_staff=True, is_superuser=True)


@pytest.fixture
def template(project):
    return MaskTemplate.objects.create(
        project=project, manufacturer="ACME", rows=300, columns=400, boxes=[[0, 0, 9, 9]]
    )


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_a_site_admin_cannot_release_a_held_image_in_the_admin(client, site_admin, held_image):
    client.force_login(site_admin)
    page = client.get(_url(Image, "change", held_image.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view-only page

    form = {f.name: getattr(held_image, f.attname) or "" for f in Image._meta.concrete_fields if f.editable}
    form.update(status=ImageStatus.RELEASED, released_path="released/x.dcm", preview_status="ready")
    response = client.post(_url(Image, "change", held_image.pk), form)
    assert response.status_code == 403
    held_image.refresh_from_db()
    assert held_image.status == ImageStatus.HELD
    assert held_image.released_path == ""


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_clinical_rows_cannot_be_added_changed_or_bulk_deleted_in_the_admin(
    client, site_admin, held_image, template, model
):
    client.force_login(site_admin)
    row = model.objects.first()
    assert row is not None
    count = model.objects.count()
    assert client.get(_url(model, "changelist")).status_code == 200
    assert client.get(_url(model, "change", row.pk)).status_code == 200
    assert client.get(_url(model, "add")).status_code == 403
    assert client.post(_url(model, "add"), {}).status_code == 403
    assert client.post(_url(model, "change", row.pk), {}).status_code == 403
    if model is not MaskTemplate:  # deleted through its service, below
        assert client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
        client.post(
            _url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
        )
    assert model.objects.count() == count


def test_every_admin_of_a_clinical_model_is_locked_down(rf, site_admin):
    request = rf.get("/admin/")
    request.user = site_admin
    clinical = {"studies", "deidentification", "core"}
    registered = {m for m in admin.site._registry if m._meta.app_label in clinical}
    assert registered == {*READ_ONLY, DeidProfile}
    for model in registered:
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        if model is not DeidProfile:
            assert not model_admin.has_change_permission(request), model
        if model is not MaskTemplate:
            assert not model_admin.has_delete_permission(request), model
    project_admin = admin.site._registry[Project]
    assert not project_admin.has_add_permission(request)
    assert not project_admin.has_delete_permission(request)


def test_deleting_a_mask_template_in_the_admin_is_audited(client, site_admin, template):
    client.force_login(site_admin)
    response = client.post(_url(MaskTemplate, "delete", template.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not MaskTemplate.objects.exists()
    event = AuditEvent.objects.get(action="mask_template.delete")
    assert (event.actor, event.object_id, event.project_id) == (site_admin, str(template.pk), template.project_id)


def _options_form(profile, **changes):
    values = {name: getattr(profile, name) for name in PROFILE_OPTIONS} | changes
    return {name: "on" for name, on in values.items() if on}


def test_changing_deidentification_options_in_the_admin_is_audited_with_old_and_new(client, site_admin, project):
    profile = profile_for(project)
    assert profile.ocr_enabled and not profile.clean_descriptors
    client.force_login(site_admin)
    assert client.get(_url(DeidProfile, "add")).status_code == 403
    assert client.post(_url(DeidProfile, "delete", profile.pk), {"post": "yes"}).status_code == 403

    response = client.post(
        _url(DeidProfile, "change", profile.pk), _options_form(profile, ocr_enabled=False, clean_descriptors=True)
    )
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.ocr_enabled, profile.clean_descriptors) == (False, True)
    event = AuditEvent.objects.get(action="deid_profile.update")
    assert event.actor == site_admin and event.project == project
    assert event.data["changed"] == ["clean_descriptors", "ocr_enabled"]
    assert event.data["old"]["ocr_enabled"] is True and event.data["new"]["ocr_enabled"] is False
    assert event.data["old"]["clean_descriptors"] is False and event.data["new"]["clean_descriptors"] is True


def test_changing_options_on_the_project_page_is_audited_the_same_way(client, project, project_admin):
    profile = profile_for(project)
    client.force_login(project_admin)
    url = reverse("deidentification:profile_update", args=[project.pk])
    assert client.post(url, _options_form(profile, retain_modified_dates=False)).status_code == 302
    event = AuditEvent.objects.get(action="deid_profile.update")
    assert event.actor == project_admin
    assert event.data["changed"] == ["retain_modified_dates"]
    assert (event.data["old"]["retain_modified_dates"], event.data["new"]["retain_modified_dates"]) == (True, False)

    # Saving the same options again changes nothing and writes nothing.
    client.post(url, _options_form(profile, retain_modified_dates=False))
    assert AuditEvent.objects.filter(action="deid_profile.update").count() == 1


def test_roles_cannot_be_changed_through_the_admin_project_page(client, site_admin, project, radiologist):
    client.force_login(site_admin)
    membership = Membership.objects.get(user=radiologist, project=project)
    form = {
        "name": "Renamed",
        "description": "",
        "task_type": project.task_type,
        "class_names": '["normal", "pneumonia"]',
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(membership.pk),
        "memberships-0-project": str(project.pk),
        "memberships-0-user": str(radiologist.pk),
        "memberships-0-role": Role.ADMIN,
    }
    response = client.post(_url(Project, "change", project.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    membership.refresh_from_db()
    assert membership.role == Role.RADIOLOGIST
    project.refresh_from_db()
    assert project.name == "Renamed"
    assert AuditEvent.objects.filter(action="project.update", actor=site_admin, project=project).exists()
