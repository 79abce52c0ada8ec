"""The demo admin reads the demo project's ROC curve and confusion matrix, from `demo_setup --images`
(labelled PneumoniaMNIST images through the real pipeline and the real ensemble)."""

import io
import re

import pytest
from django.core.management import call_command

from clinic_ai.accounts.models import Project, User
from clinic_ai.inference.models import InferenceResult, ResultStatus
from clinic_ai.labelling.models import Label
from clinic_ai.review.services import review_decide
from clinic_ai.studies.models import Image, ImageStatus
from tests.browser.conftest import ARTIFACTS, log_in
from tests.conftest import run_inference_inline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_with_images(transactional_db):
    out = io.StringIO()
    call_command("demo_setup", images=16, stdout=out)
    assert "16 released and labelled at upload, 16 queued" in out.getvalue()
    project = Project.objects.get()
    # The labels are the dataset's, from the class folders the files were sent in.
    labels = list(Label.objects.filter(project=project, source="upload").values_list("values", flat=True))
    assert sorted(v[0] for v in labels) == ["normal"] * 8 + ["pneumonia"] * 8
    assert Image.objects.filter(project=project, status=ImageStatus.RELEASED).count() == 16
    call_command("demo_setup", images=16, stdout=io.StringIO())  # once only
    assert Image.objects.filter(project=project).count() == 16
    run_inference_inline()  # what the gpu worker does after `make run`
    assert InferenceResult.objects.filter(status=ResultStatus.DONE).count() == 16
    # A radiologist reviewed two results: agreed with one, corrected the other.
    radiologist = User.objects.get(username="demo-radiologist")
    first, second = InferenceResult.objects.select_related("image").order_by("image__created")[:2]
    review_decide(actor=radiologist, project=project, image=first.image, result=first, decision="agree")
    other = "normal" if second.labels == ["pneumonia"] else "pneumonia"
    review_decide(
        actor=radiologist, project=project, image=second.image, result=second, decision="disagree", values=[other]
    )
    return project


def test_the_demo_admin_reads_roc_and_confusion_matrix_of_the_demo_project(live_server, demo_with_images, page):
    log_in(page, live_server, username="demo-admin")
    page.goto(f"{live_server.url}{demo_with_images.get_absolute_url()}")
    page.click("#performance-link")
    page.wait_for_selector("#roc-curve")
    assert page.locator("#figure-cases-used").inner_text() == "16"
    assert re.fullmatch(r"0\.\d{3}|1\.000", page.locator("#figure-auroc").inner_text())
    assert "95% CI" in page.locator("#summary").inner_text()
    assert page.locator("#confusion-matrix text").count() >= 8
    assert page.locator("#agreement-plot circle").count() == 1  # both reviews today
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "performance-dashboard.png"), full_page=True)

    with page.expect_navigation():
        page.click("#predictions-link")
    page.select_option("#f-decision", "disagree")
    with page.expect_navigation():
        page.click("#prediction-filters button[type=submit]")
    page.wait_for_selector("#prediction-table tbody tr[data-image]")
    assert page.locator("#prediction-table tbody tr[data-image]").count() == 1
    page.screenshot(path=str(ARTIFACTS / "performance-predictions.png"), full_page=True)
