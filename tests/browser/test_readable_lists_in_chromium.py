"""The worklist, the masking queue and the audit trail as an admin reads them in Chromium.

Screenshots go to test-artifacts/ (worklist.png, audit.png, held.png, patient-links.png)."""

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Role
from clinic_ai.deidentification.models import DeidProfile
from clinic_ai.inference.models import Ensemble, InferenceResult, ResultStatus
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.studies.models import Image, ImageStatus
from tests.browser.conftest import ARTIFACTS, log_in
from tests.conftest import run_pipeline_inline, upload_through_api
from tests.deidentification.synthetic import ultrasound_bytes
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.studies.dicom_variants import ct_variant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests"


@pytest.fixture
def world(transactional_db, client):
    """Four CT studies of three patients, one held ultrasound, AI results and one review; made
    before Playwright starts its loop (this fixture is listed before `page`)."""
    project = ProjectFactory(name="Pneumonia (chest X-ray)")
    admin = MembershipFactory(
        project=project, role=Role.ADMIN, user=UserFactory(username="admin", first_name="Grace", last_name="Hopper")
    ).user
    radiologist = MembershipFactory(
        project=project, role=Role.RADIOLOGIST, user=UserFactory(username="rad", first_name="Ada", last_name="Lovelace")
    ).user
    DeidProfile.objects.create(project=project, clean_descriptors=True, ocr_enabled=True)
    client.force_login(radiologist)
    upload_through_api(
        client,
        project,
        {
            "a.dcm": ct_variant(patient_id="P-1", age="067Y", sex="F", study_date="20240105"),
            "b.dcm": ct_variant(
                patient_id="P-2", age="034Y", sex="M", study_date="20231120", series_description="PA CHEST"
            ),
            "c.dcm": ct_variant(
                patient_id="P-3",
                age="008Y",
                sex="F",
                body_part="ABDOMEN",
                study_description="CT ABDOMEN",
                series_description="AXIAL",
            ),
            "d.dcm": ct_variant(patient_id="P-1", age="068Y", sex="F", study_date="20250211"),
            "us.dcm": ultrasound_bytes(seed=5),
        },
    )
    run_pipeline_inline()
    released = list(Image.objects.filter(status=ImageStatus.RELEASED))
    held = Image.objects.get(status=ImageStatus.HELD)
    assert len(released) == 4
    ensemble = Ensemble.objects.create(project=project, slug="demo", name="Demo ensemble", is_active=True)
    for i, image in enumerate(released):
        InferenceResult.objects.create(
            image=image, ensemble=ensemble, status=ResultStatus.DONE, labels=["pneumonia" if i % 2 else "normal"]
        )
    Label.objects.create(
        project=project, image=released[0], reader=radiologist, values=["normal"], source=LabelSource.REVIEW
    )
    client.logout()
    return {"project": project, "admin": admin, "held": held, "released": released}


def test_an_admin_reads_the_worklist_the_queue_and_the_audit_trail(live_server, world, page):
    ARTIFACTS.mkdir(exist_ok=True)
    project, held = world["project"], world["held"]
    log_in(page, live_server, "admin", PASSWORD)

    page.goto(f"{live_server.url}{reverse('studies:worklist')}?sort=-study_date")
    rows = page.locator("#worklist tbody tr")
    assert rows.count() == 5  # the held ultrasound's study too: an admin sees it
    first = rows.filter(has_text="68 y")
    assert first.locator(".patient-pseudonym").inner_text().startswith("ANON-")
    assert "68 y · female" in first.inner_text()
    text = page.locator("#worklist").inner_text()
    assert "ABDOMEN" in text and "PA CHEST" in text and "1 of 1 reviewed" in text and "pneumonia" in text
    page.screenshot(path=str(ARTIFACTS / "worklist.png"), full_page=True)
    page.fill("#id_patient", first.locator(".patient-pseudonym").inner_text()[:12])
    with page.expect_navigation():
        page.click("input[type=submit][value=Filter]")
    assert page.locator("#worklist tbody tr").count() == 2  # both studies of patient P-1

    page.goto(f"{live_server.url}{reverse('deidentification:held_list')}")
    thumb = page.locator("img.held-thumb")
    assert thumb.count() == 1
    page.wait_for_function(
        "() => { const i = document.querySelector('img.held-thumb'); return i.complete && i.naturalWidth > 0; }"
    )
    assert held.hold_reason in page.locator(".hold-reason").inner_text()
    page.screenshot(path=str(ARTIFACTS / "held.png"), full_page=True)

    page.goto(f"{live_server.url}{reverse('deidentification:audit_list', args=[project.pk])}")
    sentences = page.locator(".audit-sentence")
    assert sentences.count() > 10
    all_text = page.locator("#audit-events").inner_text()
    assert "Ada Lovelace uploaded image" in all_text and "was held for masking" in all_text
    assert "{" not in all_text
    page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)
    page.select_option("#id_action", "image.release")
    with page.expect_navigation():
        page.click("input[type=submit][value=Filter]")
    assert page.locator(".audit-sentence").count() == 4
    with page.expect_navigation():
        page.locator(".audit-sentence a", has_text="image").first.click()
    assert "/images/" in page.url

    page.goto(f"{live_server.url}{reverse('deidentification:patient_links', args=[project.pk])}")
    assert page.locator("#patient-links tbody tr").count() == 4  # the ultrasound is a fourth patient
    page.screenshot(path=str(ARTIFACTS / "patient-links.png"), full_page=True)
