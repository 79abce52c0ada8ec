"""A radiologist uploads a chest X-ray and sees the ensemble's opinion and heatmap appear, no reload."""

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The sum of every channel the viewer's canvas shows (the heatmap is in colour).
CANVAS_SUM = """() => {
  const c = document.querySelector('#image-viewer canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 1) sum += d[i];
  return sum;
}"""


def test_the_prediction_and_heatmap_appear_beside_the_image_without_a_reload(
    celery_worker_process, live_server, demo, page, tmp_path
):
    from PIL import Image

    from clinic_ai.inference.demo import DEMO_DIR

    data = np.load(DEMO_DIR / "pneumoniamnist_trainval.npz")
    xray = Image.fromarray(data["val_images"][0]).resize((256, 256), Image.Resampling.BILINEAR)
    xray.save(tmp_path / "chest.png")

    log_in(page, live_server)
    page.goto(f"{live_server.url}/")
    page.click("text=Pneumonia (chest X-ray)")
    page.click("#upload-link")
    page.wait_for_selector("html[data-uploader-ready]")
    page.set_input_files("#file-input", [str(tmp_path / "chest.png")])
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#upload-files img')).some(i => i.complete && i.naturalWidth > 0)",
        timeout=90_000,
    )
    page.locator("[data-file-name='chest.png'] a").first.click()
    page.wait_for_selector("#image-viewer canvas")
    page.evaluate("window.__notReloaded = true")
    # The result arrives by polling: the page is never reloaded.
    page.wait_for_selector("#ai-members tbody tr", timeout=120_000)
    assert page.evaluate("window.__notReloaded === true")
    assert page.locator("#ai-state").inner_text() == "Done"
    assert page.locator("#ai-members tbody tr").count() >= 3
    assert "where the model looked" in page.locator("#ai-heatmap-controls").inner_text()
    # The viewer draws the heatmap over the image: the canvas changes when it is on, and with its opacity.
    page.wait_for_function(
        "() => { const o = window.clinicImageViewer.state().overlay; return o.visible && o.url !== null; }"
    )
    page.wait_for_function("() => window.clinicImageViewer.state().source === 'pixels'")
    with_map = page.evaluate(CANVAS_SUM)
    page.fill("#heatmap-opacity", "30")
    page.dispatch_event("#heatmap-opacity", "input")
    assert page.evaluate("window.clinicImageViewer.state().overlay.opacity") == 0.3
    page.wait_for_function(f"() => ({CANVAS_SUM})() !== {with_map}")
    page.click("label[for=heatmap-toggle]")
    assert page.evaluate("window.clinicImageViewer.state().overlay.visible") is False
    page.wait_for_function(f"() => ({CANVAS_SUM})() !== {with_map}")
    without_map = page.evaluate(CANVAS_SUM)
    page.click("label[for=heatmap-toggle]")
    page.wait_for_function(f"() => ({CANVAS_SUM})() !== {without_map}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inference.png"), full_page=True)
