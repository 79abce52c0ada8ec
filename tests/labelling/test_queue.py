"""The queue, labels and their history through the JSON API, with real images from the pipeline."""

import json
import uuid

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Role, TaskType
from clinic_ai.core.models import AuditEvent
from clinic_ai.labelling import services
from clinic_ai.labelling.models import Label

pytestmark = pytest.mark.django_db


def queue_ids(client, project, **params):
    response = client.get(reverse("labelling:queue_api", args=[project.pk]), params)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def post_label(client, project, image, values=("normal",), seconds=2.0, request_id=None):
    body = {"image": str(image.pk), "values": list(values), "seconds": seconds}
    if request_id:
        body["request_id"] = str(request_id)
    return client.post(
        reverse("labelling:label_api", args=[project.pk]), data=json.dumps(body), content_type="application/json"
    )


def post_undo(client, project, image):
    return client.post(
        reverse("labelling:undo_api", args=[project.pk]),
        data=json.dumps({"image": str(image.pk)}),
        content_type="application/json",
    )


def test_queue_is_oldest_first_and_drops_what_this_reader_labelled(client, project, clinician, released_images):
    images = released_images(3)
    client.force_login(clinician)
    assert queue_ids(client, project) == [str(i.pk) for i in images]
    assert post_label(client, project, images[0]).status_code == 201
    assert queue_ids(client, project) == [str(i.pk) for i in images[1:]]
    # Ids the browser already holds or skipped are left out; limit bounds the answer.
    assert queue_ids(client, project, exclude=f"{images[1].pk},not-a-uuid") == [str(images[2].pk)]
    assert queue_ids(client, project, limit=1) == [str(images[1].pk)]


def test_queue_items_carry_the_preview_url_and_never_another_readers_label(
    client, project, clinician, member_of, released_images
):
    from clinic_ai.labelling.services import labelling_settings_update

    image = released_images(1)[0]
    labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=False)
    first = member_of(project, Role.CLINICIAN)
    client.force_login(first)
    assert post_label(client, project, image, values=["pneumonia"]).status_code == 201
    client.force_login(clinician)
    body = client.get(reverse("labelling:queue_api", args=[project.pk])).json()
    assert body["items"] == [
        {
            "id": str(image.pk),
            "preview_url": reverse("studies:image_preview", args=[image.pk]),
            "pixels_url": reverse("studies:image_pixels", args=[image.pk, 0]),
        }
    ]
    assert "pneumonia" not in json.dumps(body)
    assert client.get(body["items"][0]["preview_url"]).status_code == 200


def test_an_image_leaves_the_queue_once_it_has_n_readers(client, project, member_of, released_images):
    image = released_images(1)[0]
    services.labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=False)
    readers = [member_of(project, Role.CLINICIAN) for _ in range(3)]
    client.force_login(readers[0])
    assert post_label(client, project, image).status_code == 201
    client.force_login(readers[1])
    assert queue_ids(client, project) == [str(image.pk)]
    assert post_label(client, project, image).status_code == 201
    client.force_login(readers[2])
    assert queue_ids(client, project) == []
    # A third reader who had it on screen already is refused: N stays N.
    refused = post_label(client, project, image)
    assert refused.status_code == 409 and "readers" in refused.json()["error"]
    assert Label.objects.filter(image=image, is_current=True).count() == 2


def test_the_same_request_sent_twice_stores_one_label(client, project, clinician, released_images):
    image = released_images(1)[0]
    client.force_login(clinician)
    request_id = uuid.uuid4()
    first = post_label(client, project, image, request_id=request_id)
    again = post_label(client, project, image, request_id=request_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Label.objects.count() == 1
    assert AuditEvent.objects.filter(action="label.create").count() == 1


def test_labelling_again_changes_the_label_and_keeps_the_old_one_as_history(
    client, project, clinician, released_images
):
    image = released_images(1)[0]
    client.force_login(clinician)
    assert post_label(client, project, image, values=["normal"]).status_code == 201
    assert post_label(client, project, image, values=["pneumonia"]).status_code == 201
    rows = list(Label.objects.filter(image=image).order_by("created").values_list("values", "is_current"))
    assert rows == [(["normal"], False), (["pneumonia"], True)]
    change = AuditEvent.objects.get(action="label.change")
    assert change.data["values"] == ["pneumonia"] and change.actor == clinician


def test_undo_withdraws_the_label_keeps_the_row_and_puts_the_image_back(client, project, clinician, released_images):
    image = released_images(1)[0]
    client.force_login(clinician)
    assert post_label(client, project, image, seconds=3.25).status_code == 201
    assert queue_ids(client, project) == []
    assert post_undo(client, project, image).json() == {"undone": True}
    assert post_undo(client, project, image).json() == {"undone": False}  # twice is harmless
    assert queue_ids(client, project) == [str(image.pk)]
    label = Label.objects.get()
    assert not label.is_current and label.withdrawn_at is not None and label.seconds == 3.25
    assert list(AuditEvent.objects.filter(action__startswith="label.").values_list("action", flat=True)) == [
        "label.undo",
        "label.create",
    ]


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        (["cat"], 1),  # not a class of the project
        (["normal", "pneumonia"], 1),  # binary: exactly one
        (["normal", "ungradable"], 1),
        ([], 1),
        ("normal", 1),
        (["normal"], -1),
        (["normal"], 601),  # beyond the bound: a reader who walked away
        (["normal"], "1"),
        (["normal"], None),
    ],
)
def test_bad_labels_and_times_are_refused(client, project, clinician, released_images, values, seconds):
    image = released_images(1)[0]
    client.force_login(clinician)
    body = {"image": str(image.pk), "values": values, "seconds": seconds}
    response = client.post(
        reverse("labelling:label_api", args=[project.pk]), data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert not Label.objects.exists()


def test_ungradable_is_a_choice_of_every_project(client, project, clinician, released_images):
    image = released_images(1)[0]
    client.force_login(clinician)
    assert post_label(client, project, image, values=["ungradable"]).status_code == 201
    assert Label.objects.get().values == ["ungradable"]


def test_multilabel_projects_take_several_classes_in_the_projects_order(client, project, clinician, released_images):
    project.task_type = TaskType.MULTILABEL
    project.class_names = ["effusion", "nodule", "pneumonia"]
    project.save()
    image = released_images(1)[0]
    client.force_login(clinician)
    assert post_label(client, project, image, values=["pneumonia", "effusion"]).status_code == 201
    assert Label.objects.get().values == ["effusion", "pneumonia"]


def test_the_ai_result_is_shown_only_when_the_project_allows_it(client, project, clinician, released_images):
    from clinic_ai.inference.models import Ensemble, InferenceResult, ResultStatus

    image = released_images(1)[0]
    ensemble = Ensemble.objects.create(project=project, slug="label-test", name="Test", is_active=True)
    InferenceResult.objects.create(
        image=image,
        ensemble=ensemble,
        status=ResultStatus.DONE,
        labels=["pneumonia"],
        probabilities={"normal": 0.2, "pneumonia": 0.8},
    )
    client.force_login(clinician)
    url = reverse("labelling:queue_api", args=[project.pk])
    assert "ai" not in client.get(url).json()["items"][0]
    services.labelling_settings_update(actor=None, project=project, readers_per_image=1, readers_see_ai_result=True)
    assert client.get(url).json()["items"][0]["ai"] == {
        "labels": ["pneumonia"],
        "probabilities": {"normal": 0.2, "pneumonia": 0.8},
    }


def test_queue_and_pages_need_a_bounded_number_of_queries(
    client, project, clinician, project_admin, member_of, released_images, django_assert_max_num_queries
):
    images = released_images(6)
    services.labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=True)
    readers = [member_of(project, Role.CLINICIAN) for _ in range(2)]
    for i, image in enumerate(images):
        for j, reader in enumerate(readers):
            services.label_create(
                actor=reader, project=project, image=image, values=["normal" if (i + j) % 2 else "pneumonia"], seconds=1
            )
    services.labelling_settings_update(actor=None, project=project, readers_per_image=3, readers_see_ai_result=True)
    client.force_login(clinician)
    with django_assert_max_num_queries(8):
        assert len(queue_ids(client, project, limit=20)) == 6
    services.labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=True)
    client.force_login(project_admin)
    for view in ("labelling:project_labelling", "labelling:adjudication_list"):
        with django_assert_max_num_queries(12):
            page = client.get(reverse(view, args=[project.pk]))
        assert page.status_code == 200
    assert page.content.decode().count("data-image-id=") == 6  # every pair disagrees
    with django_assert_max_num_queries(10):
        assert client.get(reverse("labelling:label_export", args=[project.pk, "csv"])).status_code == 200
