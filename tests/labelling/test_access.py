"""Every labelling view as the right role, a member without it, and an outsider."""

import json

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(released_images):
    return released_images(1)[0]


def _post_label(client, project, image, values=("normal",), **extra):
    body = {"image": str(image.pk), "values": list(values), "seconds": 1.5, **extra}
    return client.post(
        reverse("labelling:label_api", args=[project.pk]), data=json.dumps(body), content_type="application/json"
    )


READ_VIEWS = ["labelling:project_labelling", "labelling:label_queue", "labelling:queue_api"]


@pytest.mark.parametrize("view", READ_VIEWS)
@pytest.mark.parametrize(("who", "status"), [("clinician", 200), ("radiologist", 200), ("project_admin", 200)])
def test_every_role_of_the_project_may_label(client, project, image, view, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse(view, args=[project.pk])).status_code == status


@pytest.mark.parametrize("view", READ_VIEWS + ["labelling:adjudication_list"])
def test_outsider_gets_404_on_every_read_view(client, project, image, outsider, view):
    client.force_login(outsider)
    assert client.get(reverse(view, args=[project.pk])).status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 200), ("radiologist", 403), ("clinician", 403), ("outsider", 404)]
)
def test_only_admins_export(client, project, image, who, status, fmt, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("labelling:label_export", args=[project.pk, fmt])).status_code == status


@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 200), ("radiologist", 200), ("clinician", 403), ("outsider", 404)]
)
def test_adjudication_list_is_for_radiologists_and_admins(client, project, image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("labelling:adjudication_list", args=[project.pk])).status_code == status


@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 302), ("radiologist", 302), ("clinician", 403), ("outsider", 404)]
)
def test_adjudication_is_for_radiologists_and_admins(client, project, image, who, status, request):
    from clinic_ai.labelling.models import Label

    client.force_login(request.getfixturevalue(who))
    url = reverse("labelling:adjudicate", args=[project.pk, image.pk])
    assert client.post(url, {"values": "pneumonia"}).status_code == status
    assert Label.objects.filter(adjudication=True).exists() == (status == 302)


@pytest.mark.parametrize(
    ("who", "status"), [("project_admin", 302), ("radiologist", 403), ("clinician", 403), ("outsider", 404)]
)
def test_only_admins_change_the_labelling_settings(client, project, image, who, status, request):
    from clinic_ai.labelling.selectors import labelling_settings_for

    client.force_login(request.getfixturevalue(who))
    url = reverse("labelling:settings_update", args=[project.pk])
    response = client.post(url, {"readers_per_image": 3, "readers_see_ai_result": "on"})
    assert response.status_code == status
    assert labelling_settings_for(project).readers_per_image == (3 if status == 302 else 1)


@pytest.mark.parametrize(("who", "status"), [("clinician", 201), ("radiologist", 201), ("project_admin", 201)])
def test_members_post_labels_and_undo(client, project, image, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert _post_label(client, project, image).status_code == status
    undo = client.post(
        reverse("labelling:undo_api", args=[project.pk]),
        data=json.dumps({"image": str(image.pk)}),
        content_type="application/json",
    )
    assert undo.status_code == 200 and undo.json() == {"undone": True}


def test_outsider_cannot_label_or_undo(client, project, image, outsider):
    client.force_login(outsider)
    assert _post_label(client, project, image).status_code == 404
    undo = client.post(
        reverse("labelling:undo_api", args=[project.pk]),
        data=json.dumps({"image": str(image.pk)}),
        content_type="application/json",
    )
    assert undo.status_code == 404


def test_an_image_of_another_project_cannot_be_labelled_through_this_one(client, project, image, member_of):
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    both = member_of(project, Role.CLINICIAN)
    member_of(other, Role.CLINICIAN, username=both.username)  # same user, clinician in both
    client.force_login(both)
    assert _post_label(client, other, image).status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, project, image):
    response = client.get(reverse("labelling:label_queue", args=[project.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert _post_label(client, project, image).status_code == 302


def test_the_label_home_lists_the_users_projects_or_goes_straight_to_the_only_one(client, project, clinician):
    client.force_login(clinician)
    response = client.get(reverse("labelling:label_home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("labelling:project_labelling", args=[project.pk])


def test_the_label_home_lists_every_project_of_the_user_in_a_bounded_number_of_queries(
    client, project, member_of, django_assert_max_num_queries
):
    from tests.factories import ProjectFactory

    user = member_of(project, Role.CLINICIAN)
    others = [ProjectFactory() for _ in range(4)]
    for other in others:
        member_of(other, Role.RADIOLOGIST, username=user.username)
    client.force_login(user)
    with django_assert_max_num_queries(6):
        page = client.get(reverse("labelling:label_home")).content.decode()
    for p in [project, *others]:
        assert reverse("labelling:project_labelling", args=[p.pk]) in page


def test_project_page_and_navbar_link_to_labelling(client, project, clinician):
    client.force_login(clinician)
    page = client.get(project.get_absolute_url()).content.decode()
    assert reverse("labelling:project_labelling", args=[project.pk]) in page
    assert reverse("labelling:label_home") in page


@pytest.mark.parametrize("image_id", [None, 12, {"pk": 1}, ["x"], "not-a-uuid"])
def test_a_malformed_image_id_is_a_404_not_an_error(client, project, image, clinician, image_id):
    client.force_login(clinician)
    body = {"image": image_id, "values": ["normal"], "seconds": 1}
    response = client.post(
        reverse("labelling:label_api", args=[project.pk]), data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 404
