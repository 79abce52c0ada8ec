"""Labels at source through the real upload page in Debian's Chromium: a zip of class folders, and a
CSV with a bad row. No ORM here (Playwright's event loop runs in this thread); the rows written are
checked in tests/studies/test_upload_labels.py."""

import io
import zipfile

import pytest
from PIL import Image

from tests.browser.conftest import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _png(shade: int, width: int = 64) -> bytes:
    # Plain grey squares: no text for the burned-in text check to hold, and distinct bytes per shade.
    buffer = io.BytesIO()
    Image.new("L", (width, 48), shade).save(buffer, format="PNG")
    return buffer.getvalue()


def _open_upload_page(page, live_server):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")


def test_a_zip_of_class_folders_uploads_with_its_labels(celery_worker_process, live_server, demo, page, tmp_path):
    archive = tmp_path / "chest-set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/NORMAL/n1.png", _png(10))
        zf.writestr("set/NORMAL/n2.png", _png(20))
        zf.writestr("set/pneumonia/p1.png", _png(30))
        zf.writestr("set/pneumonia/p2.png", _png(40))
        zf.writestr("set/pneumonia/p3.png", _png(50))
        zf.writestr("set/unsorted/u1.png", _png(60))

    _open_upload_page(page, live_server)
    page.check("#label-mode-folders")
    page.set_input_files("#file-input", [str(archive)])

    page.wait_for_selector("#upload-label-summary:not([hidden])", timeout=120_000)
    summary = page.locator("#upload-label-summary").inner_text()
    assert summary == "Labels: 2 labelled normal, 3 pneumonia, 1 file not in a class folder"
    assert "6 accepted" in page.locator("#upload-summary").inner_text()
    # Each member's row says its label; the one outside a class folder has none.
    assert page.locator("[data-file-name='chest-set.zip/set/NORMAL/n1.png'] .file-label").inner_text() == (
        "Label: normal"
    )
    assert page.locator("[data-file-name='chest-set.zip/set/pneumonia/p3.png']").get_attribute("data-label") == (
        "pneumonia"
    )
    assert page.locator("[data-file-name='chest-set.zip/set/unsorted/u1.png'] .file-label").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-labels-folders.png"), full_page=True)


def test_a_csv_labels_the_files_and_its_bad_rows_are_shown(celery_worker_process, live_server, demo, page, tmp_path):
    for name, shade in (("a.png", 70), ("b.png", 80), ("c.png", 90)):
        (tmp_path / name).write_bytes(_png(shade, width=72))
    (tmp_path / "labels.csv").write_text("file,label\na.png,Normal\nb.png,pneumonia\nx.png,cat\n")

    _open_upload_page(page, live_server)
    page.set_input_files("#label-csv", str(tmp_path / "labels.csv"))  # picking a CSV picks the mode
    assert page.is_checked("#label-mode-csv")
    page.set_input_files("#file-input", [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")])

    page.wait_for_selector("#upload-label-summary:not([hidden])", timeout=120_000)
    assert page.locator("#upload-label-summary").inner_text() == (
        "Labels: 1 labelled normal, 1 pneumonia, 1 name not in the CSV, 1 row of the CSV left out"
    )
    report = page.locator("#label-csv-report").inner_text()
    assert "gives labels for 2 file names" in report and "line 4: not a class of this project" in report
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-labels-csv.png"), full_page=True)


def test_a_csv_that_is_not_a_csv_stops_the_upload_with_the_servers_reason(live_server, demo, page, tmp_path):
    (tmp_path / "a.png").write_bytes(_png(100))
    (tmp_path / "labels.csv").write_bytes(_png(110))  # an image saved under a .csv name

    _open_upload_page(page, live_server)
    page.set_input_files("#label-csv", str(tmp_path / "labels.csv"))
    page.set_input_files("#file-input", [str(tmp_path / "a.png")])

    page.wait_for_selector("#upload-error:not([hidden])")
    assert "not a CSV" in page.locator("#upload-error").inner_text()
    assert page.locator("[data-file-name='a.png']").get_attribute("data-status") == "skipped"


def test_a_chosen_folder_is_labelled_by_its_class_folders_and_one_class_labels_a_whole_upload(
    celery_worker_process, live_server, demo, page, tmp_path
):
    folder = tmp_path / "xray"
    for relative, shade in (("Normal/n1.png", 120), ("pneumonia/p1.png", 130), ("misc/m1.png", 140)):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(_png(shade, width=80))
    _open_upload_page(page, live_server)
    page.check("#label-mode-folders")
    page.set_input_files("#folder-input", str(folder))  # the browser's relative paths: xray/Normal/n1.png …
    page.wait_for_selector("#upload-label-summary:not([hidden])", timeout=120_000)
    assert page.locator("#upload-label-summary").inner_text() == (
        "Labels: 1 labelled normal, 1 pneumonia, 1 file not in a class folder"
    )
    assert page.locator("[data-file-name='xray/Normal/n1.png']").get_attribute("data-label") == "normal"

    # A second upload from the same page: one class for all of it; none picked is refused on the page.
    (tmp_path / "one.png").write_bytes(_png(150, width=88))
    (tmp_path / "two.png").write_bytes(_png(160, width=88))
    page.check("#label-mode-batch")
    page.set_input_files("#file-input", [str(tmp_path / "one.png")])
    assert "Choose the label for the whole upload" in page.locator("#upload-error").inner_text()
    page.select_option("#label-batch-value", "pneumonia")
    page.set_input_files("#file-input", [str(tmp_path / "one.png"), str(tmp_path / "two.png")])
    page.wait_for_function(
        "() => document.querySelector(\"[data-file-name='two.png']\")?.dataset.label === 'pneumonia'"
        " && !document.getElementById('upload-label-summary').hidden",
        timeout=120_000,
    )
    assert page.locator("#upload-label-summary").inner_text() == (
        "Labels: 1 labelled normal, 1 pneumonia, 1 file not in a class folder; 2 labelled pneumonia"
    )
