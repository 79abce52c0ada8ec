"""The demo radiologist reviews AI results with the keyboard in Debian's Chromium, and corrects one."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from tests.browser.conftest import ARTIFACTS, demo_project_without_ensemble, log_in
from tests.labelling.conftest import distinct_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_results(transactional_db, client):
    """The demo project and users (as `manage.py demo_setup` makes them, without the demo ensemble's
    TensorFlow run), two images released through the real pipeline, and a finished result of an active
    ensemble on each, stored as the worker stores it: P(pneumonia) 0.9 for the first, 0.3 for the
    second. Made before Playwright starts (see conftest's `demo`)."""
    from clinic_ai.studies import storage
    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api
    from tests.factories import EnsembleFactory, InferenceResultFactory

    project = demo_project_without_ensemble(client)
    for seed in (3, 4):
        upload_through_api(client, project, {f"chest{seed}.png": distinct_png(seed, size=256)})
        run_pipeline_inline()  # no ensemble yet: nothing for TensorFlow to run
    images = list(Image.objects.order_by("released_at"))
    ensemble = EnsembleFactory(project=project, name="Demo", version="1")
    heatmap = storage.media_path("heatmaps/review-test/ensemble.png")
    heatmap.parent.mkdir(parents=True, exist_ok=True)
    heatmap.write_bytes(distinct_png(99, size=256))
    for image, p in zip(images, (0.9, 0.3), strict=True):
        InferenceResultFactory(
            image=image, ensemble=ensemble, p=p, heatmaps={"ensemble": "heatmaps/review-test/ensemble.png"}
        )
    return [str(image.pk) for image in images]


def _review_labels():
    """Read the database from a thread of its own: Playwright's loop runs in the test's thread."""

    def read():
        from clinic_ai.labelling.models import Label, LabelSource

        try:
            rows = Label.objects.filter(source=LabelSource.REVIEW).order_by("created")
            return [
                (str(i), r, v, c)
                for i, r, v, c in rows.values_list("image_id", "reader__username", "values", "is_current")
            ]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def _shown(page, image_id):
    page.wait_for_function(f"() => document.getElementById('review-page')?.dataset.imageId === '{image_id}'")
    page.wait_for_selector("html[data-review-ready]")
    page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerSource === 'pixels'")


def test_the_demo_radiologist_reviews_with_the_keyboard_and_corrects_a_result(live_server, two_results, page):
    first, second = two_results
    log_in(page, live_server, username="demo-radiologist")
    page.click("text=Pneumonia (chest X-ray)")
    with page.expect_navigation():
        page.click("#review-link")
    rows = page.locator("#review-worklist tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-image-id") == first  # the higher probability first
    page.click("#start-review")
    _shown(page, first)
    assert "pneumonia" in page.locator("#review-ai-call").inner_text()
    assert "A" in page.locator("#review-keys").inner_text()
    overlay = "window.clinicImageViewer.state().overlay"
    assert page.evaluate(f"{overlay}.visible") is False
    page.keyboard.press("h")  # the ensemble's heatmap over the image (the shared viewer), and off again
    page.wait_for_function(f"() => {overlay}.visible && {overlay}.url.includes('/heatmaps/')")
    page.keyboard.press("h")
    page.wait_for_function(f"() => !{overlay}.visible")
    page.keyboard.press("i")  # the viewer's own keys work beside the review's
    page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerInverted === '1'")

    page.keyboard.press("a")  # agree: the first is saved and the next image is shown
    _shown(page, second)
    page.keyboard.press("d")  # disagree with "normal": the correct class is pneumonia
    page.wait_for_function("() => document.getElementById('disagree-fields')?.classList.contains('is-active')")
    page.keyboard.press("2")
    page.wait_for_selector("#review-worklist")  # nothing else to review: back to the worklist
    assert "Nothing else to review" in page.content()
    assert _review_labels() == [
        (first, "demo-radiologist", ["pneumonia"], True),
        (second, "demo-radiologist", ["pneumonia"], True),
    ]

    # Second thoughts on the first image: reopen it from the reviewed ones and correct it.
    page.select_option("#id_state", "reviewed")
    with page.expect_navigation():
        page.click("#review-filters button[type=submit]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-worklist.png"), full_page=True)
    page.click(f"#review-worklist tr[data-image-id='{first}'] a")
    _shown(page, first)
    page.keyboard.press("c")
    page.keyboard.type("Costophrenic angle only; no consolidation. ADN")  # typed keys are not shortcuts
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    page.keyboard.press("1")
    _shown(page, second)  # saved; the next reviewed image in the worklist's order
    page.goto(page.url.split("/review/")[0] + f"/review/{first}/")
    _shown(page, first)
    history = page.locator("#review-history tbody tr[data-current]")
    assert history.count() == 2
    assert history.nth(0).get_attribute("data-current") == "1" and "Disagree" in history.nth(0).inner_text()
    assert "Costophrenic" in page.locator("#review-history").inner_text()
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)

    labels = _review_labels()
    assert labels == [
        (first, "demo-radiologist", ["pneumonia"], False),
        (second, "demo-radiologist", ["pneumonia"], True),
        (first, "demo-radiologist", ["normal"], True),
    ]
