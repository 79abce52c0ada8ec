"""The review worklist, the review page and the decision form: every view as a radiologist, an
admin, a site admin, a clinician and an outsider; order, filters, paging, next image, double submit."""

import io
import uuid

import pytest
from django.core.management import call_command
from django.urls import reverse

from clinic_ai.accounts.models import Role, User
from clinic_ai.inference.models import ResultStatus
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.review.models import Review
from clinic_ai.review.services import review_decide
from tests.factories import EnsembleFactory, ImageFactory, InferenceResultFactory, UserFactory

pytestmark = pytest.mark.django_db


def worklist_url(project, **query):
    from urllib.parse import urlencode

    url = reverse("review:worklist", args=[project.pk])
    return f"{url}?{urlencode(query)}" if query else url


def listed(client, project, **query) -> list:
    """Image ids of the worklist page, in their order."""
    response = client.get(worklist_url(project, **query))
    assert response.status_code == 200
    return [str(row.image_id) for row in response.context["page"].object_list]


def post_decision(client, result, decision, values=(), request_id=None, query="", follow=False, **extra):
    url = reverse("review:decide", args=[result.image.project_id, result.image_id])
    data = {"result": str(result.pk), "decision": decision, "values": list(values), **extra}
    if request_id:
        data["request_id"] = str(request_id)
    return client.post(f"{url}?{query}" if query else url, data, follow=follow)


# --- Who ----------------------------------------------------------------------------------------------


@pytest.fixture
def site_admin(db):
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.mark.parametrize(
    ("who", "status"),
    [("radiologist", 200), ("project_admin", 200), ("site_admin", 200), ("clinician", 403), ("outsider", 404)],
)
def test_the_worklist_and_review_page_are_for_radiologists_and_admins(client, project, result, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(worklist_url(project)).status_code == status
    page = client.get(reverse("review:review_image", args=[project.pk, result.image_id]))
    assert page.status_code == status


@pytest.mark.parametrize(
    ("who", "status"),
    [("radiologist", 302), ("project_admin", 302), ("site_admin", 302), ("clinician", 403), ("outsider", 404)],
)
def test_only_radiologists_and_admins_decide(client, result, who, status, request):
    user = request.getfixturevalue(who)
    client.force_login(user)
    assert post_decision(client, result, "agree").status_code == status
    stored = list(Label.objects.filter(source=LabelSource.REVIEW).values_list("reader", "values"))
    assert stored == ([(user.pk, ["pneumonia"])] if status == 302 else [])


def test_anonymous_visitors_are_sent_to_the_login_page(client, project, result):
    for url in (worklist_url(project), reverse("review:review_image", args=[project.pk, result.image_id])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert post_decision(client, result, "agree").status_code == 302
    assert not Review.objects.exists()


def test_an_image_of_another_project_is_404_under_this_one(client, project, radiologist, member_of):
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    member_of(other, Role.RADIOLOGIST, username=radiologist.username)
    foreign = InferenceResultFactory(image=ImageFactory(project=other))
    client.force_login(radiologist)
    assert client.get(reverse("review:review_image", args=[project.pk, foreign.image_id])).status_code == 404
    url = reverse("review:decide", args=[project.pk, foreign.image_id])
    assert client.post(url, {"result": str(foreign.pk), "decision": "agree"}).status_code == 404
    assert not Review.objects.exists()


def test_an_image_without_a_finished_result_has_no_review_page(client, project, radiologist, make_result):
    running = make_result(status=ResultStatus.RUNNING)
    client.force_login(radiologist)
    assert client.get(reverse("review:review_image", args=[project.pk, running.image_id])).status_code == 404


# --- The worklist ---------------------------------------------------------------------------------------


def test_the_worklist_lists_only_finished_results_of_the_active_ensemble_on_released_images(
    client, project, radiologist, make_result
):
    shown = make_result(p=0.7)
    make_result(p=0.9, status=ResultStatus.FAILED)
    make_result(p=0.9, status=ResultStatus.QUEUED)
    make_result(p=0.9, ensemble=EnsembleFactory(project=project, is_active=False))
    held = make_result(p=0.9)
    held.image.status = "held"
    held.image.save()
    unrendered = make_result(p=0.9)
    unrendered.image.preview_status = "pending"
    unrendered.image.save()
    InferenceResultFactory(p=0.99)  # another project's
    client.force_login(radiologist)
    assert listed(client, project) == [str(shown.image_id)]


def test_the_worklist_puts_the_highest_probability_first_or_of_the_class_asked(
    client, project, radiologist, make_result
):
    low, high, middle = make_result(p=0.2), make_result(p=0.95), make_result(p=0.55)
    client.force_login(radiologist)
    expected = [str(r.image_id) for r in (high, middle, low)]
    assert listed(client, project) == expected
    assert listed(client, project, priority="probability", rank_class="pneumonia") == expected
    assert listed(client, project, rank_class="normal") == expected[::-1]


def test_the_worklist_puts_the_most_uncertain_first(client, project, radiologist, make_result):
    sure, unsure, fairly = make_result(p=0.99, spread=0.3), make_result(p=0.52, spread=0.0), make_result(p=0.8)
    client.force_login(radiologist)
    assert listed(client, project, priority="uncertainty") == [str(r.image_id) for r in (unsure, fairly, sure)]
    assert listed(client, project, priority="disagreement") == [str(r.image_id) for r in (sure, fairly, unsure)]


def test_the_worklist_filters_by_review_state_ai_call_and_modality(client, project, radiologist, make_result):
    positive = make_result(p=0.9)
    negative = make_result(p=0.1, modality="DX")
    reviewed = make_result(p=0.6)
    review_decide(actor=radiologist, project=project, image=reviewed.image, result=reviewed, decision="agree")
    client.force_login(radiologist)

    def ids(*results):
        return [str(r.image_id) for r in results]

    assert listed(client, project) == ids(positive, negative)  # unreviewed by default
    assert listed(client, project, state="reviewed") == ids(reviewed)
    assert listed(client, project, state="all") == ids(positive, reviewed, negative)
    assert listed(client, project, state="all", ai_class="pneumonia", ai_call="positive") == ids(positive, reviewed)
    assert listed(client, project, state="all", ai_class="pneumonia", ai_call="negative") == ids(negative)
    assert listed(client, project, state="all", ai_class="normal", ai_call="positive") == ids(negative)
    assert listed(client, project, state="all", modality="DX") == ids(negative)
    page = client.get(worklist_url(project, state="reviewed")).content.decode()
    assert "agree" in page and radiologist.username in page


def test_unknown_filter_values_fall_back_to_the_defaults(client, project, radiologist, make_result):
    first, second = make_result(p=0.9), make_result(p=0.3)
    client.force_login(radiologist)
    query = {"priority": "\x00", "state": "everything", "rank_class": "fracture", "modality": "XX", "page": "1e400"}
    assert listed(client, project, **query) == [str(first.image_id), str(second.image_id)]


def test_the_worklist_pages_with_a_bounded_number_of_queries(
    client, project, radiologist, make_result, django_assert_max_num_queries
):
    results = [make_result(p=i / 40, modality="CR" if i % 2 else "DX") for i in range(30)]
    for r in results[:5]:
        review_decide(actor=radiologist, project=project, image=r.image, result=r, decision="ungradable")
    client.force_login(radiologist)
    for query in (
        {},
        {"state": "all", "page": "2"},
        {"priority": "uncertainty", "ai_class": "normal", "ai_call": "positive"},
    ):
        with django_assert_max_num_queries(9):
            response = client.get(worklist_url(project, **query))
        assert response.status_code == 200
    # Called normal: the 20 with p < 0.5, of which the first 5 are reviewed.
    assert response.context["page"].paginator.count == 15
    page = client.get(worklist_url(project, state="all", page="2"))
    assert len(page.context["page"].object_list) == 5
    # Pseudonymised identifiers only: our random ids, shortened; nothing from the original files.
    assert (
        str(results[0].image_id)[:8]
        in client.get(worklist_url(project, state="all", rank_class="normal")).content.decode()
    )


# --- The review page and the decision ----------------------------------------------------------------


def test_the_review_page_shows_probabilities_members_uncertainty_versions_and_history(
    client, project, radiologist, result, django_assert_max_num_queries
):
    review_decide(actor=radiologist, project=project, image=result.image, result=result, decision="agree")
    review_decide(
        actor=radiologist,
        project=project,
        image=result.image,
        result=result,
        decision="disagree",
        values=["normal"],
        comment="Atelectasis",
    )
    client.force_login(radiologist)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("review:review_image", args=[project.pk, result.image_id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert '<div id="review-image">' in page and 'id="image-viewer"' in page and "js/viewer.js" in page
    assert reverse("studies:image_pixels", args=[result.image_id, 0]) in page  # full-depth pixels
    assert "0.800" in page and "0.850" in page and "0.750" in page  # ensemble, then each member
    assert "cnn-a v1" in page and "cnn-b v2" in page and "Test ensemble v1" in page
    assert "Entropy of the mean" in page and "0.500" in page  # the entropy of (0.8, 0.2)
    history = response.context["history"]
    assert [(r.decision, r.is_current) for r in history] == [("disagree", True), ("agree", False)]
    assert "Atelectasis" in page and "replaced" in page
    assert "js/review.js" in page and "<kbd>A</kbd>" in page and "onclick" not in page


def test_the_review_page_lays_the_ensembles_heatmap_over_the_image(client, project, radiologist, make_result):
    result = make_result(heatmaps={"ensemble": "heatmaps/x/ensemble.png", "cnn-a": "heatmaps/x/cnn-a.png"})
    client.force_login(radiologist)
    page = client.get(reverse("review:review_image", args=[project.pk, result.image_id])).content.decode()
    heatmap = reverse("inference:result_heatmap", args=[result.pk, "ensemble"])
    assert f'data-heatmap-url="{heatmap}"' in page  # the viewer draws it over the image
    assert 'id="heatmap-toggle"' in page and "<kbd>H</kbd>" in page
    without = make_result()
    page = client.get(reverse("review:review_image", args=[project.pk, without.image_id])).content.decode()
    assert "data-heatmap-url" not in page and "heatmap-toggle" not in page


def test_deciding_goes_to_the_next_image_in_the_worklist_order(client, project, radiologist, make_result):
    low, high, middle = make_result(p=0.2), make_result(p=0.95), make_result(p=0.55)
    client.force_login(radiologist)
    response = post_decision(client, high, "agree", query="priority=probability")
    assert response.status_code == 302
    assert response["Location"] == reverse("review:review_image", args=[project.pk, middle.image_id]) + (
        "?priority=probability&rank_class=pneumonia&state=unreviewed"
    )
    assert post_decision(client, middle, "disagree", ["normal"])["Location"].startswith(
        reverse("review:review_image", args=[project.pk, low.image_id])
    )
    last = post_decision(client, low, "ungradable")
    assert last["Location"].startswith(worklist_url(project))
    assert Label.objects.filter(source=LabelSource.REVIEW, is_current=True).count() == 3


def test_the_next_link_follows_the_order_and_wraps_to_the_first_unreviewed(client, project, radiologist, make_result):
    low, high, middle = make_result(p=0.2), make_result(p=0.95), make_result(p=0.55)
    client.force_login(radiologist)

    def next_of(result, **query):
        response = client.get(reverse("review:review_image", args=[project.pk, result.image_id]), query)
        return response.context["next_url"]

    assert str(middle.image_id) in next_of(high)
    assert str(low.image_id) in next_of(middle)
    assert str(high.image_id) in next_of(low)  # the last one: back to the first
    assert str(high.image_id) in next_of(middle, rank_class="normal")


def test_a_double_submitted_form_stores_the_decision_once(client, project, radiologist, result, make_result):
    make_result(p=0.1)
    client.force_login(radiologist)
    page = client.get(reverse("review:review_image", args=[project.pk, result.image_id]))
    request_id = page.context["form"].initial["request_id"]
    first = post_decision(client, result, "disagree", ["normal"], request_id=request_id)
    second = post_decision(client, result, "disagree", ["normal"], request_id=request_id)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert Review.objects.count() == 1 and Label.objects.count() == 1


def test_a_form_without_a_correction_is_refused_with_its_error(client, project, radiologist, result):
    client.force_login(radiologist)
    response = post_decision(client, result, "disagree", comment="kept")
    assert response.status_code == 400 and "Pick the corrected label." in response.content.decode()
    assert "kept" in response.content.decode()
    assert not Review.objects.exists()


def test_a_result_the_server_refuses_is_said_on_the_review_page(client, project, radiologist, result, make_result):
    other = make_result()
    client.force_login(radiologist)
    url = reverse("review:decide", args=[project.pk, result.image_id])
    response = client.post(url, {"result": str(other.pk), "decision": "agree"}, follow=True)
    assert "This AI result is not of this image." in response.content.decode()
    response = post_decision(client, result, "disagree", ["pneumonia"], follow=True)
    assert "the AI&#x27;s own call" in response.content.decode()
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"result": "not-a-uuid", "decision": "agree"},
        {"result": str(uuid.uuid4()), "decision": "agree"},
        {"result": "", "decision": "agree"},
        {"decision": "\x00"},
        {"decision": "agree", "comment": "a\x00b"},
        {"decision": "agree", "comment": "x" * 1001},
        {"decision": "agree", "request_id": "1"},
        {"decision": "disagree", "values": ["fracture"]},
        {"decision": "disagree", "values": "\x00"},
    ],
)
def test_hostile_decision_forms_store_nothing(client, project, radiologist, result, data):
    client.force_login(radiologist)
    data = {"result": str(result.pk), **data}
    response = client.post(reverse("review:decide", args=[project.pk, result.image_id]), data)
    assert response.status_code in (302, 400)
    assert not Review.objects.exists() and not Label.objects.exists()


# --- Links from elsewhere -----------------------------------------------------------------------------


def test_the_project_page_links_radiologists_and_admins_to_the_review(
    client, project, radiologist, clinician, project_admin
):
    for user, shown in ((radiologist, True), (project_admin, True), (clinician, False)):
        client.force_login(user)
        page = client.get(reverse("accounts:project_detail", args=[project.pk])).content.decode()
        assert ('id="review-link"' in page) is shown
        assert (worklist_url(project) in page) is shown


def test_the_image_page_shows_the_current_decision_in_one_line(client, project, radiologist, clinician, result):
    url = reverse("studies:image_detail", args=[result.image_id])
    review_url = reverse("review:review_image", args=[project.pk, result.image_id])
    client.force_login(radiologist)
    page = client.get(url).content.decode()
    assert "not reviewed yet" in page and review_url in page
    review_decide(
        actor=radiologist, project=project, image=result.image, result=result, decision="disagree", values=["normal"]
    )
    page = client.get(url).content.decode()
    assert f"<strong>disagree</strong> (normal) by {radiologist.username}" in page
    # A clinician labels blind (the project hides the AI result from readers): no review line, no link.
    client.force_login(clinician)
    page = client.get(url).content.decode()
    assert 'id="review-line"' not in page and "disagree" not in page and review_url not in page


def test_the_demo_radiologist_can_review_the_demo_project(client):
    from clinic_ai.accounts.models import Project
    from clinic_ai.inference.selectors import active_ensemble

    call_command("demo_setup", stdout=io.StringIO())
    project = Project.objects.get()
    radiologist = User.objects.get(username="demo-radiologist")
    assert project.memberships.get(user=radiologist).role == Role.RADIOLOGIST
    result = InferenceResultFactory(image=ImageFactory(project=project), ensemble=active_ensemble(project))
    client.force_login(radiologist)
    assert listed(client, project) == [str(result.image_id)]
    assert post_decision(client, result, "agree").status_code == 302
    assert Label.objects.get(source=LabelSource.REVIEW).reader == radiologist


def test_the_worklist_and_the_review_page_name_the_study_by_its_pseudonym(client, project, radiologist, make_result):
    """People tell studies apart by the patient's pseudonym, age and sex (when kept), not a hex id."""
    result = make_result()
    study = result.image.study
    study.patient_pseudonym, study.patient_age, study.patient_sex = "ANON-ABCDEFGHIJKLMNOPQRST", "067Y", "F"
    study.save()
    bare = make_result()  # a study without a pseudonym (a PNG upload): its short id
    client.force_login(radiologist)
    listed = client.get(worklist_url(project)).content.decode()
    assert "ANON-ABCDEFGHIJKLMNOPQRST" in listed and "67 y" in listed
    assert str(bare.image.study_id)[:8] in listed
    page = client.get(reverse("review:review_image", args=[project.pk, result.image_id])).content.decode()
    assert "ANON-ABCDEFGHIJKLMNOPQRST" in page and "67 y" in page
    image_page = client.get(result.image.get_absolute_url()).content.decode()
    assert "ANON-ABCDEFGHIJKLMNOPQRST" in image_page
