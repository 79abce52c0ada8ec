"""A held ultrasound is masked in Chromium by drawing a box; the saved template releases the next one."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, log_in
from tests.deidentification.synthetic import text_box, ultrasound_bytes

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _upload(page, live_server, path):
    page.goto(f"{live_server.url}/")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")
    page.set_input_files("#file-input", [str(path)])
    row = page.locator(f"[data-file-name='{path.name}']")
    page.wait_for_function(
        f"() => document.querySelector(\"[data-file-name='{path.name}']\")?.dataset.status === 'held'"
        f" || document.querySelector(\"[data-file-name='{path.name}']\")?.dataset.status === 'accepted'",
        timeout=90_000,
    )
    return row


def test_a_held_ultrasound_is_masked_in_the_browser_and_its_template_releases_the_next(
    celery_worker_process, live_server, demo, page, tmp_path
):
    first, second = tmp_path / "us-first.dcm", tmp_path / "us-second.dcm"
    first.write_bytes(ultrasound_bytes(seed=1))
    second.write_bytes(ultrasound_bytes(seed=2))

    log_in(page, live_server)

    row = _upload(page, live_server, first)
    assert row.get_attribute("data-status") == "held"
    assert "masking" in row.locator(".file-status").inner_text().lower()
    row.locator(".file-link").click()

    page.wait_for_selector("html[data-mask-ready]")
    page.wait_for_function(
        "() => Number(document.getElementById('mask-image')?.dataset.viewerDrawn) > 0"
        " && document.getElementById('mask-canvas').width > 10"
    )
    canvas = page.locator("#mask-canvas").bounding_box()
    x0, y0, x1, y1 = text_box()
    scale = canvas["width"] / 400
    # Start the drag outside any suggested box: delete suggestions first so the drawn box is ours.
    page.click("#mask-clear-btn")
    page.mouse.move(canvas["x"] + (x0 - 6) * scale, canvas["y"] + (y0 - 6) * scale)
    page.mouse.down()
    page.mouse.move(canvas["x"] + (x1 + 6) * scale, canvas["y"] + (y1 + 6) * scale, steps=8)
    page.mouse.up()
    boxes = page.evaluate("window.clinicMask.boxes()")
    assert len(boxes) == 1
    bx0, by0, bx1, by1 = boxes[0]
    assert bx0 <= x0 and by0 <= y0 and bx1 >= x1 and by1 >= y1

    page.click("#mask-preview-btn")
    page.wait_for_selector("#mask-view-badge:not([hidden])")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mask.png"), full_page=True)
    page.check("#save-template")
    page.click("#mask-release-btn")
    page.wait_for_url("**/masking/")
    # The worker masks it; the list refreshes itself while an image is being masked.
    expect(page.locator("#held-list")).to_contain_text("Nothing is waiting to be masked", timeout=60_000)

    row = _upload(page, live_server, second)
    assert row.get_attribute("data-status") == "accepted"
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#upload-files img')).some(i => i.complete && i.naturalWidth > 0)",
        timeout=90_000,
    )
    page.screenshot(path=str(ARTIFACTS / "template-released.png"), full_page=True)
