"""A project keeps at least one admin: the last one can be neither demoted nor removed (a form error,
not a 500), by themselves or by a site admin; with a second admin both work."""

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Membership, Role
from clinic_ai.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _member_set(client, project, user, role):
    return client.post(reverse("accounts:member_set", args=[project.pk]), {"username": user.username, "role": role})


def _member_remove(client, project, user):
    membership = Membership.objects.get(project=project, user=user)
    return client.post(reverse("accounts:member_remove", args=[project.pk, membership.pk]))


@pytest.mark.parametrize("actor", ["project_admin", "site_admin"])
@pytest.mark.parametrize("action", ["demote", "remove"])
def test_the_last_admin_stays(client, project, project_admin, actor, action):
    client.force_login(project_admin if actor == "project_admin" else UserFactory(is_superuser=True, is_staff=True))
    audited = AuditEvent.objects.count()
    if action == "demote":
        response = _member_set(client, project, project_admin, Role.CLINICIAN)
    else:
        response = _member_remove(client, project, project_admin)
    assert response.status_code == 400
    assert "at least one admin" in response.content.decode()
    assert Membership.objects.get(project=project, user=project_admin).role == Role.ADMIN
    assert AuditEvent.objects.count() == audited


@pytest.mark.parametrize("action", ["demote", "remove"])
def test_with_a_second_admin_the_first_can_step_down(client, project, project_admin, member_of, action):
    second = member_of(project, Role.ADMIN)
    client.force_login(second)
    if action == "demote":
        response = _member_set(client, project, project_admin, Role.RADIOLOGIST)
        assert Membership.objects.get(project=project, user=project_admin).role == Role.RADIOLOGIST
    else:
        response = _member_remove(client, project, project_admin)
        assert not Membership.objects.filter(project=project, user=project_admin).exists()
    assert response.status_code == 302
    # And now the second is the last one.
    response = _member_set(client, project, second, Role.CLINICIAN)
    assert response.status_code == 400
    assert Membership.objects.get(project=project, user=second).role == Role.ADMIN


@pytest.mark.parametrize(("who", "status"), [("radiologist", 403), ("clinician", 403), ("outsider", 404)])
def test_only_admins_change_members(client, project, project_admin, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert _member_set(client, project, project_admin, Role.CLINICIAN).status_code == status
    assert _member_remove(client, project, project_admin).status_code == status
    assert Membership.objects.get(project=project, user=project_admin).role == Role.ADMIN


def test_a_refused_member_form_says_why_with_a_400(client, project, project_admin):
    client.force_login(project_admin)
    response = client.post(reverse("accounts:member_set", args=[project.pk]), {"username": "nobody", "role": "pope"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "No active user with this username." in page and "Select a valid choice" in page
