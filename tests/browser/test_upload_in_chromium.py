"""A radiologist uploads through the real page in Debian's Chromium."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def demo(transactional_db):
    """The demo project and users, made before Playwright starts its event loop in this thread:
    ORM calls inside that loop would open a second connection that outlives the test."""
    call_command("demo_setup", stdout=io.StringIO())


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def test_radiologist_uploads_a_dicom_a_png_and_a_broken_file(
    celery_worker_process, live_server, demo, page, tmp_path, ct_bytes
):
    from PIL import Image

    (tmp_path / "chest.dcm").write_bytes(ct_bytes)
    Image.linear_gradient("L").resize((96, 64)).save(tmp_path / "photo.png")
    (tmp_path / "broken.dcm").write_bytes(ct_bytes[:400])

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "demo-radiologist")
    page.fill("#id_password", "clinic-ai-demo")
    page.click("button[type=submit]")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.set_input_files("#file-input", [str(tmp_path / n) for n in ("chest.dcm", "photo.png", "broken.dcm")])

    page.wait_for_function(
        "Array.from(document.querySelectorAll('#upload-files img'))"
        ".filter(img => img.complete && img.naturalWidth > 0).length === 2",
        timeout=90_000,
    )
    broken = page.locator("[data-file-name='broken.dcm']")
    reason = broken.locator(".file-reason").inner_text()
    assert "dicom" in reason.lower() and ("incomplete" in reason.lower() or "truncated" in reason.lower())
    for name in ("chest.dcm", "photo.png"):
        row = page.locator(f"[data-file-name='{name}']")
        assert "accepted" in row.locator(".file-status").inner_text().lower()
        assert row.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)

    # The image page shows the preview and de-identified metadata.
    page.locator("[data-file-name='chest.dcm'] a").first.click()
    page.wait_for_selector("#image-preview")
    assert page.locator("#image-preview").evaluate("img => img.naturalWidth > 0")
    assert "CT" in page.locator("#image-metadata").inner_text()
    page.screenshot(path=str(ARTIFACTS / "image.png"), full_page=True)
