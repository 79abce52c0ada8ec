"""The upload page stops waiting when the server says a file is abandoned or stuck, and says why.

No ORM here: Playwright's event loop runs in this thread (see conftest); the server's side of both
is tested in tests/studies/test_housekeeping.py."""

import json

import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_upload_page(page, live_server):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")


def test_a_file_whose_connection_dies_is_rejected_at_finish_and_the_page_says_so(
    live_server, demo, page, tmp_path, settings, ct_bytes
):
    settings.UPLOAD_CHUNK_SIZE = 4096  # the page reads it: the CT goes in several chunks
    (tmp_path / "chest.dcm").write_bytes(ct_bytes)
    _open_upload_page(page, live_server)
    # The network drops every chunk after the first: the file stays half-sent on the server.
    page.route(
        "**/chunks/",
        lambda route: route.abort() if route.request.headers.get("x-chunk-offset") != "0" else route.continue_(),
    )
    page.set_input_files("#file-input", [str(tmp_path / "chest.dcm")])
    page.wait_for_selector("#skip-failed:not([hidden])", timeout=90_000)
    page.click("#skip-failed")
    page.wait_for_selector("#upload-summary:not([hidden])", timeout=30_000)
    row = page.locator("[data-file-name='chest.dcm']")
    assert row.get_attribute("data-status") == "rejected"
    # The server's reason (the page itself only knows "failed"): rejected when the upload finished.
    assert "not finished" in row.locator(".file-reason").inner_text()


def test_a_file_the_server_calls_stuck_ends_the_wait_with_the_reason(live_server, demo, page, tmp_path):
    """The server marks a file stuck after UPLOAD_STUCK_MINUTES (tested in test_housekeeping); here
    its answer is rewritten in the browser, so the page's handling is checked without the wait."""
    from PIL import Image

    Image.linear_gradient("L").resize((32, 32)).save(tmp_path / "photo.png")
    reason = "Not processed after 15 minutes. It will be processed when the server's worker runs again."

    def stuck(route):
        answer = route.fetch().json()
        for row in answer["files"]:
            row.update(status="stuck", status_display="Still waiting", reason=reason, preview_url=None)
        answer["complete"] = True
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    _open_upload_page(page, live_server)
    page.route("**/status/", stuck)
    page.set_input_files("#file-input", [str(tmp_path / "photo.png")])
    page.wait_for_selector("#upload-summary:not([hidden])", timeout=30_000)
    row = page.locator("[data-file-name='photo.png']")
    assert row.get_attribute("data-status") == "stuck"
    assert row.locator(".file-reason").inner_text() == reason
    assert "Still waiting" in row.locator(".file-status").inner_text()
    assert "1 not processed yet" in page.locator("#upload-summary").inner_text()
