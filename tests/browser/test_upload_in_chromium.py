"""A radiologist uploads through the real page in Debian's Chromium."""

import pytest

from tests.browser.conftest import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_radiologist_uploads_a_dicom_a_png_and_a_broken_file(
    celery_worker_process, live_server, demo, page, tmp_path, ct_bytes
):
    from PIL import Image

    (tmp_path / "chest.dcm").write_bytes(ct_bytes)
    Image.linear_gradient("L").resize((96, 64)).save(tmp_path / "photo.png")
    (tmp_path / "broken.dcm").write_bytes(ct_bytes[:400])

    log_in(page, live_server)
    page.goto(f"{live_server.url}/")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")
    page.set_input_files("#file-input", [str(tmp_path / n) for n in ("chest.dcm", "photo.png", "broken.dcm")])

    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#upload-files img'))"
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
    page.wait_for_url("**/images/*/")
    page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerSource === 'pixels'")
    assert page.locator("#image-viewer canvas").evaluate("c => c.width > 0")
    assert "CT" in page.locator("#image-metadata").inner_text()
    page.screenshot(path=str(ARTIFACTS / "image.png"), full_page=True)
