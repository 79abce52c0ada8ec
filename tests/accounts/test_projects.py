import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clinic_ai.accounts.models import Membership, Role
from clinic_ai.accounts.services import membership_remove, membership_set, project_create
from clinic_ai.core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_project_create_validates_the_label_schema():
    with pytest.raises(ValidationError):
        project_create(actor=None, name="Bad", task_type="binary", class_names=["only one"])
    with pytest.raises(ValidationError):
        project_create(actor=None, name="Dupes", task_type="multiclass", class_names=["a", "A"])
    project = project_create(actor=None, name="Good", task_type="multilabel", class_names=["effusion", "nodule"])
    assert AuditEvent.objects.filter(action="project.create", object_id=str(project.pk)).exists()


def test_membership_set_changes_a_role_without_a_second_row(project):
    user = UserFactory()
    membership_set(actor=None, project=project, user=user, role=Role.CLINICIAN)
    membership_set(actor=None, project=project, user=user, role=Role.RADIOLOGIST)
    assert Membership.objects.get(project=project, user=user).role == Role.RADIOLOGIST


def test_the_last_admin_cannot_be_removed(project, project_admin):
    membership = Membership.objects.get(project=project, user=project_admin)
    with pytest.raises(ValidationError):
        membership_remove(actor=project_admin, membership=membership)


def test_home_lists_only_the_users_projects(client, project, radiologist, outsider):
    client.force_login(radiologist)
    page = client.get(reverse("home")).content.decode()
    assert project.name in page
    other = outsider.memberships.get().project
    assert other.name not in page


@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 200), ("radiologist", 200), ("clinician", 200), ("outsider", 404)]
)
def test_project_page_by_role(client, project, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("accounts:project_detail", args=[project.pk])).status_code == status


@pytest.mark.parametrize(("who", "status"), [("project_admin", 302), ("radiologist", 403), ("outsider", 404)])
def test_only_project_admins_add_members(client, project, who, status, request):
    client.force_login(request.getfixturevalue(who))
    newcomer = UserFactory()
    response = client.post(
        reverse("accounts:member_set", args=[project.pk]), {"username": newcomer.username, "role": "clinician"}
    )
    assert response.status_code == status
    assert Membership.objects.filter(project=project, user=newcomer).exists() == (status == 302)


def test_only_site_admins_create_projects(client, radiologist):
    client.force_login(radiologist)
    assert client.get(reverse("accounts:project_create")).status_code == 403
    boss = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(boss)
    response = client.post(
        reverse("accounts:project_create"),
        {"name": "Fractures", "task_type": "binary", "class_names": "no fracture\nfracture"},
    )
    assert response.status_code == 302
    project = boss.projects.get(name="Fractures")
    assert project.class_names == ["no fracture", "fracture"]
    assert boss.memberships.get(project=project).role == Role.ADMIN


def test_anonymous_users_are_sent_to_login(client, project):
    response = client.get(reverse("accounts:project_detail", args=[project.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_and_logout_work(client):
    UserFactory(username="alice")
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_password_change(client):
    user = UserFactory(username="bob")
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "pw-for-tests",
            "new_password1": "a-much-longer-pass-9",
            "new_password2": "a-much-longer-pass-9",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-much-longer-pass-9")


def test_demo_setup_is_idempotent_and_gives_each_role(capsys):
    from django.core.management import call_command

    call_command("demo_setup")
    call_command("demo_setup")
    from clinic_ai.accounts.models import Project

    project = Project.objects.get(name="Pneumonia (chest X-ray)")
    assert project.class_names == ["normal", "pneumonia"]
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {"demo-admin": "admin", "demo-radiologist": "radiologist", "demo-clinician": "clinician"}
    assert "demo-radiologist / " in capsys.readouterr().out
