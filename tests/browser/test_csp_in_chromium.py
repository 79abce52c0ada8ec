"""The main pages, as every demo role, run in Chromium under the Content-Security-Policy without one violation."""

from pathlib import Path

import pytest
from django.urls import reverse

from clinic_ai.accounts.models import Project, User
from clinic_ai.studies.models import Image, ImageStatus, PreviewStatus
from tests.browser.conftest import log_in
from tests.conftest import upload_through_api, wait_for
from tests.deidentification.synthetic import ultrasound_bytes

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Records violations in the page itself; added before any page script runs (not subject to the CSP).
RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI || "inline"} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def pages(celery_worker_process, demo, client):
    """A released multi-frame MR and a held ultrasound, through the real worker; the URLs to visit.

    Made before Playwright starts (this fixture is listed before `page`), so no ORM call runs in its loop.
    """
    from pydicom.data import get_testdata_file

    project = Project.objects.get()
    client.force_login(User.objects.get(username="demo-radiologist"))
    multiframe = Path(get_testdata_file("emri_small.dcm")).read_bytes()
    batch, _ = upload_through_api(client, project, {"mr.dcm": multiframe, "us.dcm": ultrasound_bytes(seed=11)})
    wait_for(lambda: client.get(batch["status_url"]).json()["complete"], timeout=120, message="the upload")
    wait_for(
        lambda: Image.objects.filter(status=ImageStatus.RELEASED, preview_status=PreviewStatus.READY).exists(),
        timeout=120,
        message="the preview",
    )
    released = Image.objects.get(status=ImageStatus.RELEASED)
    held = Image.objects.get(status=ImageStatus.HELD)
    common = [
        reverse("home"),
        reverse("accounts:project_detail", args=[project.pk]),
        reverse("studies:worklist"),
        reverse("studies:study_detail", args=[released.study_id]),
        reverse("studies:image_detail", args=[released.pk]),
        reverse("deidentification:held_list"),
        reverse("password_change"),
    ]
    return {
        "demo-clinician": common,
        "demo-radiologist": [
            *common,
            reverse("studies:upload_create", args=[project.pk]),
            reverse("deidentification:image_mask", args=[held.pk]),
        ],
        "demo-admin": [
            *common,
            reverse("studies:upload_create", args=[project.pk]),
            reverse("deidentification:image_mask", args=[held.pk]),
            reverse("accounts:project_update", args=[project.pk]),
            reverse("deidentification:audit_list", args=[project.pk]),
            reverse("deidentification:profile_update", args=[project.pk]),
            reverse("deidentification:patient_links", args=[project.pk]),
            reverse("accounts:project_create"),
            reverse("admin:index"),
            reverse("admin:studies_image_changelist"),
            reverse("admin:studies_image_change", args=[released.pk]),
            reverse("admin:accounts_project_change", args=[project.pk]),
        ],
        "image": reverse("studies:image_detail", args=[released.pk]),
    }


def test_main_pages_run_without_a_csp_violation_for_every_role(live_server, pages, page):
    console = []
    page.on("console", lambda msg: console.append(msg.text))
    page.context.add_init_script(RECORDER)
    seen = {}
    for username in ("demo-clinician", "demo-radiologist", "demo-admin"):
        page.context.clear_cookies()
        log_in(page, live_server, username=username)
        page.wait_for_url(f"{live_server.url}/")
        for path in pages[username]:
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, (username, path)
            assert "unsafe-inline" not in response.headers["content-security-policy"]
            page.wait_for_load_state("networkidle")
            seen[(username, path)] = page.evaluate("window.__cspViolations")

        # The viewer's frame slider, from static scripts only: the frame changes without a reload.
        page.goto(f"{live_server.url}{pages['image']}")
        page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerShownFrame === '0'")
        page.fill("#image-viewer .cv-frame-slider", "2")
        page.wait_for_url("**?frame=2")
        page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerShownFrame === '2'")
        seen[(username, "frame picker")] = page.evaluate("window.__cspViolations")

    assert {where: found for where, found in seen.items() if found} == {}
    assert [text for text in console if "Content Security Policy" in text or "Refused to" in text] == []

    # The recorder does hear a violation when there is one: an injected inline script is refused.
    # (In a page of its own: the `page` fixture fails the test on any violation it sees.)
    probe = page.context.browser.new_page()
    probe.add_init_script(RECORDER)
    probe.goto(f"{live_server.url}/accounts/login/")
    probe.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.appendChild(s); }"
    )
    probe.wait_for_function("() => window.__cspViolations.length > 0")
    assert probe.evaluate("window.__ran") is None
    probe.close()
