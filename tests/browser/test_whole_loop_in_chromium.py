"""The whole human loop around the AI, in Debian's Chromium, with a real worker and the real demo ensemble:

1. the demo radiologist uploads a zip of class folders (``normal/``, ``pneumonia/``): the upload's labels;
2. the demo clinician labels an image from the queue with one key;
3. the demo radiologist reviews an AI result with the keyboard and corrects it;
4. the demo admin's dashboard and predictions list then count that case.
"""

import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connections

from tests.browser.conftest import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _xray_png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((256, 256), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def _labels():
    """(image id, reader, source, values, current) of every label, read in a thread of its own:
    Playwright's event loop runs in the test's thread."""

    def read():
        from clinic_ai.labelling.models import Label

        try:
            rows = Label.objects.order_by("created").values_list(
                "image_id", "reader__username", "source", "values", "is_current"
            )
            return [(str(i), r, s, v, c) for i, r, s, v, c in rows]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def _switch_user(page, live_server, username):
    page.context.clear_cookies()
    log_in(page, live_server, username=username)


def test_upload_with_labels_label_review_and_the_dashboard_counts_it(
    celery_worker_process, live_server, demo, page, tmp_path
):
    from clinic_ai.inference.demo import DEMO_DIR

    data = np.load(DEMO_DIR / "pneumoniamnist_trainval.npz")
    images, classes = data["val_images"], data["val_labels"].ravel()
    archive = tmp_path / "ward-7.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cls, folder in ((0, "normal"), (1, "pneumonia")):
            for k, i in enumerate(np.flatnonzero(classes == cls)[:2]):
                zf.writestr(f"ward-7/{folder}/{k}.png", _xray_png(images[i]))

    # 1. The upload, labelled by its folders.
    log_in(page, live_server, username="demo-radiologist")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")
    page.check("#label-mode-folders")
    page.set_input_files("#file-input", [str(archive)])
    page.wait_for_selector("#upload-label-summary:not([hidden])", timeout=120_000)
    assert page.locator("#upload-label-summary").inner_text() == "Labels: 2 labelled normal, 2 pneumonia"
    upload_labels = [row for row in _labels() if row[2] == "upload"]
    assert sorted(row[3][0] for row in upload_labels) == ["normal", "normal", "pneumonia", "pneumonia"]
    assert {row[1] for row in upload_labels} == {"demo-radiologist"}

    # The worker releases the images and runs the ensemble: the review worklist fills as it does.
    project_url = page.url.split("/upload/")[0]
    for _ in range(120):
        page.goto(f"{project_url}/review/")
        if page.locator("#review-worklist tbody tr").count() == 4:
            break
        page.wait_for_timeout(2_000)
    assert page.locator("#review-worklist tbody tr").count() == 4

    # 2. The clinician labels one image from the queue with one key.
    _switch_user(page, live_server, "demo-clinician")
    page.click("#nav-label")
    page.click("#start-labelling")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => !!document.getElementById('label-stage')?.dataset.imageId")
    labelled = page.locator("#label-stage").get_attribute("data-image-id")
    page.keyboard.press("2")
    page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId !== '{labelled}'")
    page.wait_for_function("() => document.getElementById('label-save-state')?.textContent === 'all saved'")
    assert (labelled, "demo-clinician", "reader", ["pneumonia"], True) in _labels()

    # 3. The radiologist disagrees with the AI on the first image of the worklist and corrects it.
    _switch_user(page, live_server, "demo-radiologist")
    page.goto(f"{project_url}/review/")
    page.click("#start-review")
    page.wait_for_selector("html[data-review-ready]")
    reviewed = page.locator("#review-page").get_attribute("data-image-id")
    ai_call = page.locator("#review-ai-call").inner_text()
    corrected = "normal" if "pneumonia" in ai_call else "pneumonia"
    page.keyboard.press("d")
    page.wait_for_function("() => document.getElementById('disagree-fields')?.classList.contains('is-active')")
    page.keyboard.press("1" if corrected == "normal" else "2")
    page.wait_for_function(f"() => document.getElementById('review-page')?.dataset.imageId !== '{reviewed}'")
    assert (reviewed, "demo-radiologist", "review", [corrected], True) in _labels()

    # 4. The admin's figures count it: four cases with a reference standard (the upload's labels,
    # the review's correction winning for the reviewed one), one review, one disagreement.
    _switch_user(page, live_server, "demo-admin")
    page.goto(project_url + "/")
    page.click("#performance-link")
    page.wait_for_selector("#roc-curve")
    assert page.locator("#figure-cases-used").inner_text() == "4"
    assert page.locator("#confusion-matrix text").count() >= 8
    assert page.locator("#agreement-plot circle").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "whole-loop-dashboard.png"), full_page=True)
    with page.expect_navigation():
        page.click("#predictions-link")
    page.select_option("#f-decision", "disagree")
    with page.expect_navigation():
        page.click("#prediction-filters button[type=submit]")
    page.wait_for_selector("#prediction-table tbody tr[data-image]")
    rows = page.locator("#prediction-table tbody tr[data-image]")
    assert rows.count() == 1
    assert rows.nth(0).get_attribute("data-image") == reviewed
