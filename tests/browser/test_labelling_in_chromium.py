"""The demo clinician labels images from the queue with the keyboard in Debian's Chromium."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from tests.browser.conftest import ARTIFACTS, demo_project_without_ensemble, log_in
from tests.labelling.conftest import distinct_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_released(transactional_db, client):
    """The demo project and users (as `manage.py demo_setup` makes them, without the demo ensemble:
    this test is about labels, not inference) and two released images, made before Playwright starts
    (see conftest's `demo`)."""
    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api

    project = demo_project_without_ensemble(client)
    for seed in (1, 2):
        upload_through_api(client, project, {f"chest{seed}.png": distinct_png(seed, size=256)})
        run_pipeline_inline()
    return [str(pk) for pk in Image.objects.order_by("released_at").values_list("pk", flat=True)]


def _stored_labels(*, current_only=True):
    """Read the database from a thread of its own: Playwright's loop runs in the test's thread."""

    def read():
        from clinic_ai.labelling.models import Label

        rows = Label.objects.filter(is_current=True) if current_only else Label.objects.all()
        try:
            return list(rows.values_list("image_id", "reader__username", "values", "seconds"))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def test_the_demo_clinician_labels_from_the_queue_with_the_keyboard(live_server, two_released, page):
    first, second = two_released
    log_in(page, live_server, username="demo-clinician")
    page.click("#nav-label")  # one project: straight to its labelling page
    page.click("#start-labelling")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => Number(document.getElementById('label-viewer')?.dataset.viewerDrawn) > 0")
    assert page.locator("#label-stage").get_attribute("data-image-id") == first

    page.keyboard.press("2")  # pneumonia: labels the first and draws the second at once
    page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId === '{second}'")
    page.keyboard.press("z")  # undo: the first comes back
    page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId === '{first}'")
    page.keyboard.press("1")  # normal
    page.keyboard.press("s")  # skip the second
    page.wait_for_selector("html[data-labelling-empty]")
    page.wait_for_function("() => document.getElementById('label-save-state')?.textContent === 'all saved'")
    assert page.locator("#label-count").inner_text() == "1"
    assert page.locator("#label-error").inner_text() == ""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labelling.png"), full_page=True)

    labels = _stored_labels()
    assert len(labels) == 1
    image_id, reader, values, seconds = labels[0]
    assert (str(image_id), reader, values) == (first, "demo-clinician", ["normal"])
    assert 0 <= seconds <= 600
    # Each key press drew the next image from what was already loaded.
    assert page.evaluate("window.clinicLabelling.timings.length") >= 2


def test_a_save_lost_on_the_network_is_retried_and_stored_once(live_server, two_released, page):
    first, second = two_released
    log_in(page, live_server, username="demo-clinician")
    failed = []

    def flaky(route):
        # The first save reaches the server, but its answer is lost: the retry must not label twice.
        if not failed:
            failed.append(route.request.url)
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/label/labels/", flaky)
    page.goto(f"{live_server.url}/")
    page.click("#nav-label")
    page.click("#start-labelling")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => Number(document.getElementById('label-viewer')?.dataset.viewerDrawn) > 0")
    page.keyboard.press("2")
    page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId === '{second}'")
    page.wait_for_function("() => document.getElementById('label-save-state')?.textContent === 'all saved'")
    assert len(failed) == 1
    # One row in all, not a second one superseding the first: the retry carried the same request id.
    labels = _stored_labels(current_only=False)
    assert [(str(image_id), values) for image_id, _, values, _ in labels] == [(first, ["pneumonia"])]


@pytest.fixture
def nine_released(two_released, client):
    from clinic_ai.accounts.models import Project
    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api

    project = Project.objects.get()
    for seed in range(3, 10):
        upload_through_api(client, project, {f"chest{seed}.png": distinct_png(seed, size=256)})
        run_pipeline_inline()
    return [str(pk) for pk in Image.objects.order_by("released_at").values_list("pk", flat=True)]


def test_the_queue_keeps_four_images_ahead_one_per_key_not_in_batches(live_server, nine_released, page):
    """The images ahead arrive one per key: a batch of them (fetched, decoded and windowed together)
    held the main thread when the next key came (bench/labelling.py: p95 113-175 ms before, 8-13 after)."""
    import re

    fetched = []  # image ids whose full-depth pixels the page asked for, in order
    page.on(
        "request",
        lambda request: (
            fetched.append(m.group(1)) if (m := re.search(r"/images/([0-9a-f-]{36})/pixels/", request.url)) else None
        ),
    )
    log_in(page, live_server, username="demo-clinician")
    page.click("#nav-label")
    page.click("#start-labelling")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => Number(document.getElementById('label-viewer')?.dataset.viewerDrawn) > 0")
    page.wait_for_function("() => window.clinicLabelling !== undefined")
    page.wait_for_timeout(500)  # let the first refill settle: it must not reach past the four ahead
    assert len(set(fetched)) == 5  # the one shown and four ahead
    for labelled in range(1, 4):
        shown = page.locator("#label-stage").get_attribute("data-image-id")
        page.keyboard.press("1")
        page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId !== '{shown}'")
        page.wait_for_timeout(300)
        assert len(set(fetched)) <= labelled + 5, (labelled, len(set(fetched)))
    for _ in range(100):  # and it does keep four ahead (the last refill may still be on its way)
        if len(set(fetched)) == 8:
            break
        page.wait_for_timeout(100)
    assert len(set(fetched)) == 8
    assert set(fetched) <= set(nine_released)
