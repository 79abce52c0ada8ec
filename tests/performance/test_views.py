"""The dashboard and the predictions list: who may see them, what they count, filters, query caps
and the CSV downloads."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from clinic_ai.core.models import AuditEvent
from tests.factories import EnsembleFactory, ImageFactory, UserFactory
from tests.performance.conftest import add_result

pytestmark = pytest.mark.django_db

VIEWS = [
    "performance:dashboard",
    "performance:dashboard_csv",
    "performance:prediction_list",
    "performance:prediction_csv",
]


def _get(client, name, project, **query):
    return client.get(reverse(name, args=[project.pk]), query)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize(
    ("who", "status"),
    [("project_admin", 200), ("site_admin", 200), ("radiologist", 403), ("clinician", 403), ("outsider", 404)],
)
def test_only_admins_see_performance(client, world, view, who, status, request):
    user = UserFactory(is_superuser=True, is_staff=True) if who == "site_admin" else request.getfixturevalue(who)
    client.force_login(user)
    assert _get(client, view, world["project"]).status_code == status


@pytest.mark.parametrize("view", VIEWS)
def test_anonymous_users_are_sent_to_log_in(client, world, view):
    response = _get(client, view, world["project"])
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_project_is_404(client, project_admin):
    client.force_login(project_admin)
    assert client.get(reverse("performance:dashboard", args=[uuid.uuid4()])).status_code == 404


def test_dashboard_shows_the_hand_computed_figures(client, world, project_admin):
    client.force_login(project_admin)
    response = _get(client, "performance:dashboard", world["project"])
    page = response.content.decode()
    assert response.status_code == 200
    data = response.context["data"]
    # Ten results: eight with truth, one ungradable (excluded, counted), one without truth.
    assert (data["results"], data["used"], data["ungradable"], data["without_truth"]) == (10, 8, 1, 1)
    assert data["figures"]["auroc"] == 0.71875
    assert data["figures"]["confusion"] == {"tp": 2, "fp": 1, "tn": 3, "fn": 2}
    assert data["truth_sources"] == {"review": 2, "adjudication": 0, "consensus": 0, "upload": 7}
    assert data["truth_distribution"] == {"normal": 4, "pneumonia": 4, "ungradable": 1}
    assert data["reviews"]["agree"] == 1 and data["reviews"]["disagree"] == 1
    ci = data["figures"]["auroc_ci"]
    assert ci["low"] <= 0.71875 <= ci["high"]
    assert 'id="figure-auroc">0.719<' in page
    assert 'id="figure-cases-used">8<' in page
    assert 'id="figure-sensitivity">50.0%<' in page and 'id="figure-specificity">75.0%<' in page
    for svg in ("roc-curve", "calibration-plot", "confusion-matrix", "agreement-plot"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" id="{svg}"' in page
    # Both reviews were made today: one of two agreed with the ensemble.
    assert [(r["agreed"], r["total"]) for r in data["agreement"]] == [(1, 2)]


def test_dashboard_of_one_member_uses_its_own_probabilities(client, world, project_admin):
    client.force_login(project_admin)
    data = _get(client, "performance:dashboard", world["project"], member="beta").context["data"]
    assert data["figures"]["auroc"] == 1 - 0.71875  # beta says 1 - p
    data = _get(client, "performance:dashboard", world["project"], member="alpha").context["data"]
    assert data["figures"]["auroc"] == 0.71875
    # A name that is no member of this ensemble shows the ensemble.
    response = _get(client, "performance:dashboard", world["project"], member="gamma")
    assert response.context["member"] == "" and response.context["data"]["figures"]["auroc"] == 0.71875


def test_dashboard_of_an_older_ensemble_version(client, world, project_admin):
    client.force_login(project_admin)
    response = _get(client, "performance:dashboard", world["project"], ensemble=str(world["old"].pk))
    assert response.context["ensemble"] == world["old"]
    assert response.context["data"]["results"] == 1 and response.context["data"]["figures"]["auroc"] is None


def test_dashboard_without_an_ensemble_says_so(client, project, project_admin):
    client.force_login(project_admin)
    response = _get(client, "performance:dashboard", project)
    assert response.status_code == 200 and "no ensemble yet" in response.content.decode()
    assert _get(client, "performance:prediction_list", project).status_code == 200
    assert _get(client, "performance:dashboard_csv", project).content.decode().strip() == "figure,label,x,y,count"


def _image_ids(response) -> list[str]:
    return [str(case.image_id) for case, _ in response.context["rows"]]


@pytest.mark.parametrize(
    ("query", "cases"),
    [
        ({}, list(range(10))),
        ({"decision": "agree"}, [4]),
        ({"decision": "disagree"}, [2]),
        ({"decision": "unreviewed"}, [0, 1, 3, 5, 6, 7, 8, 9]),
        ({"decision": "ungradable"}, []),
        # The AI's call against the truth: case 2 (a negative called pneumonia), 5 and 7 (positives missed).
        ({"disagreement": "yes"}, [2, 5, 7]),
        ({"disagreement": "no"}, [0, 1, 3, 4, 6]),
        ({"disagreement": "yes", "decision": "disagree"}, [2]),
        # Without the reviews as truth, cases 2 and 4 (reviewed, no other label) have no truth.
        ({"disagreement": "yes", "reference": "without-reviews"}, [5, 7]),
        ({"disagreement": "no", "reference": "without-reviews"}, [0, 1, 3, 6]),
        ({"decision": "agree", "reference": "without-reviews"}, [4]),
    ],
)
def test_prediction_list_filters(client, world, project_admin, query, cases):
    client.force_login(project_admin)
    response = _get(client, "performance:prediction_list", world["project"], **query)
    assert response.status_code == 200
    assert _image_ids(response) == [str(world["images"][i].pk) for i in cases]  # newest first


def test_prediction_list_of_another_ensemble_version(client, world, project_admin):
    client.force_login(project_admin)
    response = _get(client, "performance:prediction_list", world["project"], ensemble=str(world["old"].pk))
    assert _image_ids(response) == [str(world["images"][0].pk)]


def test_prediction_list_ignores_an_ensemble_of_another_project(client, world, project_admin):
    other_image = ImageFactory()
    other = add_result(EnsembleFactory(project=other_image.project, is_active=True), other_image, 0.5).ensemble
    client.force_login(project_admin)
    response = _get(client, "performance:prediction_list", world["project"], ensemble=str(other.pk))
    assert response.context["ensemble"] == world["ensemble"] and len(_image_ids(response)) == 10


def _more_results(world, n):
    for i in range(n):
        add_result(world["ensemble"], ImageFactory(project=world["project"]), (i % 10) / 10)


def test_prediction_list_pages_and_caps_its_queries(client, world, project_admin, django_assert_max_num_queries):
    client.force_login(project_admin)
    url = reverse("performance:prediction_list", args=[world["project"].pk])
    with django_assert_max_num_queries(12):
        small = client.get(url)
    _more_results(world, 90)
    with django_assert_max_num_queries(12):
        first = client.get(url)
    with django_assert_max_num_queries(12):
        second = client.get(url, {"page": 2})
    assert len(small.context["rows"]) == 10
    assert len(first.context["rows"]) == 50 and len(second.context["rows"]) == 50
    assert first.context["page"].paginator.count == 100
    assert not set(_image_ids(first)) & set(_image_ids(second))


def test_dashboard_caps_its_queries(client, world, project_admin, django_assert_max_num_queries):
    client.force_login(project_admin)
    _more_results(world, 90)
    with django_assert_max_num_queries(12):
        assert _get(client, "performance:dashboard", world["project"]).status_code == 200
    with django_assert_max_num_queries(12):
        assert _get(client, "performance:dashboard_csv", world["project"]).status_code == 200


def _csv(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_predictions_csv_has_every_filtered_row_with_pseudonymised_ids_only(client, world, project_admin):
    client.force_login(project_admin)
    rows = _csv(_get(client, "performance:prediction_csv", world["project"], disagreement="yes"))
    images = world["images"]
    assert [r["image_id"] for r in rows] == [str(images[i].pk) for i in (2, 5, 7)]
    first = rows[0]
    assert first["study_id"] == str(images[2].study_id)
    assert first["ai_labels"] == "pneumonia" and first["p_pneumonia"] == "0.650000"
    assert first["member_beta_p_pneumonia"] == "0.350000"
    assert (first["truth"], first["truth_source"], first["decision"], first["review_labels"]) == (
        "normal",
        "review",
        "disagree",
        "normal",
    )
    assert first["disagreement"] == "yes"
    body = _get(client, "performance:prediction_csv", world["project"]).content.decode()
    assert len(_csv(_get(client, "performance:prediction_csv", world["project"]))) == 10
    # Nothing but our own ids: no DICOM UIDs, no usernames of readers.
    assert images[0].study.study_instance_uid not in body and project_admin.username not in body
    assert AuditEvent.objects.filter(action="performance.export", data__kind="predictions").count() == 3


def test_figures_csv_holds_the_dashboard(client, world, project_admin):
    client.force_login(project_admin)
    rows = _csv(_get(client, "performance:dashboard_csv", world["project"]))
    summary = {r["label"]: r["y"] for r in rows if r["figure"] == "summary"}
    assert float(summary["auroc"]) == 0.71875
    assert summary["cases_used"] == "8" and summary["ungradable_excluded"] == "1"
    assert float(summary["sensitivity"]) == 0.5 and float(summary["specificity"]) == 0.75
    assert float(summary["auroc_ci_low"]) <= 0.71875 <= float(summary["auroc_ci_high"])
    confusion = {r["label"]: int(r["count"]) for r in rows if r["figure"] == "confusion"}
    assert confusion == {"tp": 2, "fp": 1, "tn": 3, "fn": 2}
    roc = [(float(r["x"]), float(r["y"])) for r in rows if r["figure"] == "roc"]
    assert roc[0] == (0.0, 0.0) and roc[-1] == (1.0, 1.0) and len(roc) == 8
    assert len([r for r in rows if r["figure"] == "calibration"]) == 10
    assert {r["label"]: r["count"] for r in rows if r["figure"] == "truth_distribution"} == {
        "normal": "4",
        "pneumonia": "4",
        "ungradable": "1",
    }
    assert [r["y"] for r in rows if r["figure"].startswith("agreement_")] == ["0.5"]
    beta = _csv(_get(client, "performance:dashboard_csv", world["project"], member="beta"))
    assert float({r["label"]: r["y"] for r in beta if r["figure"] == "summary"}["auroc"]) == 0.28125
    assert AuditEvent.objects.filter(action="performance.export", data__kind="figures").count() == 2


HOSTILE = [
    "ensemble=not-a-uuid",
    "ensemble=%00",
    "ensemble=" + "9" * 5000,
    "member=%ED%A0%80",
    "member=%00",
    "cls=%FF%FE",
    "cls=ungradable",
    "decision=%00",
    "reference=%00",
    "reference=" + "x" * 5000,
    "disagreement=%ED%A0%80",
    "page=1e400",
    "page=-1",
    "page=" + "9" * 5000,
    "page=1&page=2&page=%FF",
]


@pytest.mark.parametrize("view", VIEWS)
def test_hostile_queries_fall_back_to_the_defaults(client, world, project_admin, view):
    client.force_login(project_admin)
    for query in HOSTILE:
        response = client.get(f"{reverse(view, args=[world['project'].pk])}?{query}")
        assert response.status_code == 200, (query[:40], response.status_code)


def test_the_project_page_and_the_registry_link_to_the_dashboard_for_admins_only(client, world, project_admin):
    dashboard = reverse("performance:dashboard", args=[world["project"].pk])
    client.force_login(project_admin)
    assert dashboard in client.get(world["project"].get_absolute_url()).content.decode()
    assert dashboard in client.get(reverse("inference:registry", args=[world["project"].pk])).content.decode()
    client.force_login(world["radiologist"])
    assert dashboard not in client.get(world["project"].get_absolute_url()).content.decode()


def test_a_multiclass_project_is_shown_one_class_against_the_rest(client, member_of):
    from clinic_ai.accounts.models import Role
    from tests.factories import InferenceResultFactory, LabelFactory, ProjectFactory

    project = ProjectFactory(task_type="multiclass", class_names=["a", "b", "c"])
    admin = member_of(project, Role.ADMIN)
    ensemble = EnsembleFactory(project=project, is_active=True)
    # Truth a, b, c, c; p(c) = 0.1, 0.3, 0.2, 0.8: for "c" against the rest, positives 0.2 and 0.8 over
    # negatives 0.1 and 0.3: (1 + 2) / 4.
    for truth, pc in zip("abcc", (0.1, 0.3, 0.2, 0.8), strict=True):
        image = ImageFactory(project=project)
        rest = (1 - pc) / 2
        call = "c" if pc > rest else "a"
        InferenceResultFactory(
            image=image, ensemble=ensemble, labels=[call], probabilities={"a": rest, "b": rest, "c": pc}
        )
        LabelFactory(image=image, source="upload", values=[truth])
    client.force_login(admin)
    response = _get(client, "performance:dashboard", project, cls="c")
    assert response.context["positive"] == "c" and response.context["negative"] == "not c"
    assert response.context["data"]["figures"]["auroc"] == 0.75
    assert _get(client, "performance:dashboard", project).context["positive"] == "a"


def test_csv_cells_a_spreadsheet_would_run_are_quoted(client, project, project_admin):
    from tests.factories import EnsembleMemberFactory, ModelVersionFactory

    ensemble = EnsembleFactory(project=project, is_active=True)
    EnsembleMemberFactory(ensemble=ensemble, model_version=ModelVersionFactory(project=project, name="=HYPERLINK(1)"))
    add_result(ensemble, ImageFactory(project=project), 0.7, members={"=HYPERLINK(1)": 0.6})
    client.force_login(project_admin)
    for name, query in (("performance:prediction_csv", {}), ("performance:dashboard_csv", {"member": "=HYPERLINK(1)"})):
        cells = [
            cell
            for row in csv.reader(io.StringIO(_get(client, name, project, **query).content.decode()))
            for cell in row
        ]
        assert not [cell for cell in cells if cell.startswith("=")], name
    figures = _get(client, "performance:dashboard_csv", project, member="=HYPERLINK(1)").content.decode()
    assert "summary,member,,'=HYPERLINK(1)," in figures


def test_the_dashboard_says_when_reviews_are_truth_and_can_leave_them_out(client, world, project_admin):
    client.force_login(project_admin)
    default = _get(client, "performance:dashboard", world["project"])
    body = default.content.decode()
    assert default.context["data"]["truth_sources"]["review"] == 2
    assert 'id="reference-caveat"' in body and "2 of 9 cases" in body
    assert "reference=without-reviews" in body  # the link to the figures without them

    without = _get(client, "performance:dashboard", world["project"], reference="without-reviews")
    data = without.context["data"]
    assert data["truth_sources"]["review"] == 0 and data["with_truth"] == 7 and data["without_truth"] == 3
    assert data["used"] == 6  # case 8 is ungradable
    assert 'id="reference-caveat"' not in without.content.decode()  # readers of this project label blind
    assert '<option value="without-reviews" selected>' in without.content.decode()  # the choice is kept
    listing = _get(client, "performance:prediction_list", world["project"], reference="without-reviews")
    assert '<option value="without-reviews" selected>' in listing.content.decode()
    assert f'<option value="{world["ensemble"].pk}" selected>' in listing.content.decode()
    assert data["reviews"]["agree"] == 1 and data["reviews"]["disagree"] == 1  # still the radiologist's decisions

    rows = _csv(_get(client, "performance:dashboard_csv", world["project"], reference="without-reviews"))
    summary = {r["label"]: r["y"] for r in rows if r["figure"] == "summary"}
    assert summary["reference_standard"] == "without-reviews" and summary["cases_used"] == "6"
    rows = _csv(_get(client, "performance:prediction_csv", world["project"], reference="without-reviews"))
    by_image = {r["image_id"]: r for r in rows}
    assert (
        by_image[str(world["images"][4].pk)]["truth"] == ""
        and by_image[str(world["images"][4].pk)]["decision"] == "agree"
    )


def test_without_reviews_a_project_whose_readers_see_the_ai_says_so(client, world, project_admin):
    from clinic_ai.labelling.models import LabellingSettings

    LabellingSettings.objects.create(project=world["project"], readers_see_ai_result=True)
    client.force_login(project_admin)
    body = _get(client, "performance:dashboard", world["project"], reference="without-reviews").content.decode()
    assert 'id="reference-caveat"' in body and "see the AI result while they label" in body
