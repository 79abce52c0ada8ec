"""The viewer in Debian's Chromium: window/level, invert and frames change the pixels on the canvas."""

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.browser.conftest import ARTIFACTS, demo_project_without_ensemble, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def ct_phantom_bytes(size: int = 384) -> bytes:
    """A CT-like 16-bit slice (Hounsfield units through a rescale intercept): air, a body of soft
    tissue, two lungs and a spine, with a header window (soft tissue, 40/400)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    y, x = np.mgrid[0:size, 0:size] / size
    hu = np.full((size, size), -1000.0)
    hu[((x - 0.5) / 0.42) ** 2 + ((y - 0.5) / 0.32) ** 2 < 1] = 40
    for cx in (0.33, 0.67):
        lung = ((x - cx) / 0.13) ** 2 + ((y - 0.47) / 0.2) ** 2 < 1
        hu[lung] = (-800 + 150 * np.sin(40 * x + 30 * y))[lung]
    hu[((x - 0.5) / 0.06) ** 2 + ((y - 0.72) / 0.06) ** 2 < 1] = 900
    hu += np.random.default_rng(3).normal(0, 12, hu.shape)
    ds.Rows = ds.Columns = size
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = np.clip(hu + 1024, -2000, 4000).astype("<i2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.fixture
def released(transactional_db, client):
    """The demo project and users, a released CT-like slice and a released 10-frame MR, made before
    Playwright starts (see conftest's `demo`)."""
    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api

    project = demo_project_without_ensemble(client)
    multiframe = Path(get_testdata_file("emri_small.dcm")).read_bytes()
    upload_through_api(
        client, project, {"ct.dcm": ct_phantom_bytes(), "mr.dcm": multiframe, "colour.png": colour_png_bytes()}
    )
    run_pipeline_inline()
    return {
        "ct": str(Image.objects.get(modality="CT", status="released").pk),
        "mr": str(Image.objects.get(modality="MR", status="released").pk),
        "colour": str(Image.objects.get(kind="png", status="released").pk),
    }


def colour_png_bytes() -> bytes:
    from PIL import Image as Picture

    y, x = np.mgrid[0:120, 0:160]
    rgb = np.stack([x * 255 // 159, y * 127 // 119, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Picture.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


# A digest of what the canvas shows: the sum of its red channel and its centre pixel.
CANVAS = """() => {
  const c = document.querySelector('#image-viewer canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i];
  const at = (Math.floor(c.height / 2) * c.width + Math.floor(c.width / 2)) * 4;
  return { sum, centre: d[at], drawn: Number(c.closest('#image-viewer').dataset.viewerDrawn) };
}"""


def _open(page, live_server, image_id):
    page.goto(f"{live_server.url}/images/{image_id}/")
    page.wait_for_function(
        "() => document.getElementById('image-viewer')?.dataset.viewerSource === 'pixels'"
        " && Number(document.getElementById('image-viewer')?.dataset.viewerDrawn) > 0"
    )


def _wait_drawn_after(page, drawn):
    page.wait_for_function(f"() => Number(document.getElementById('image-viewer')?.dataset.viewerDrawn) > {drawn}")


def test_window_level_drag_and_invert_change_the_canvas(live_server, released, page):
    log_in(page, live_server)
    _open(page, live_server, released["ct"])
    before = page.evaluate(CANVAS)
    state = page.evaluate("window.clinicImageViewer.state()")
    assert (state["center"], state["width"]) == (40, 400)  # the header's window
    assert {"Lung", "Mediastinum", "Bone"} <= {p["name"] for p in state["presets"]}

    box = page.locator("#image-viewer canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 150, box["y"] + box["height"] / 2 - 60, steps=5)
    page.mouse.up()
    _wait_drawn_after(page, before["drawn"])
    dragged = page.evaluate(CANVAS)
    state = page.evaluate("window.clinicImageViewer.state()")
    assert state["width"] > 400 and state["center"] < 40  # right: wider; up: lower
    assert dragged["sum"] != before["sum"]

    page.keyboard.press("i")
    _wait_drawn_after(page, dragged["drawn"])
    inverted = page.evaluate(CANVAS)
    assert inverted["centre"] == 255 - dragged["centre"]
    assert inverted["sum"] != dragged["sum"]

    # A non-default window for the record: the lung preset.
    page.keyboard.press("r")
    page.select_option(
        "#image-viewer .cv-preset",
        label=next(
            f"{p['name']} (W {round(p['width'])} L {round(p['center'])})"
            for p in page.evaluate("window.clinicImageViewer.state()")["presets"]
            if p["name"] == "Lung"
        ),
    )
    page.wait_for_function("() => window.clinicImageViewer.state().center === -600")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-ct-lung-window.png"), full_page=True)


def test_frames_change_without_a_reload(live_server, released, page):
    log_in(page, live_server)
    _open(page, live_server, released["mr"])
    page.evaluate("window.__notReloaded = true")
    first = page.evaluate(CANVAS)
    assert page.locator("#image-viewer .cv-frame-text").inner_text() == "Frame 1 of 10"

    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerFrame === '1'")
    _wait_drawn_after(page, first["drawn"])
    second = page.evaluate(CANVAS)
    assert second["sum"] != first["sum"]
    assert page.locator("#image-viewer .cv-frame-text").inner_text() == "Frame 2 of 10"
    assert page.url.endswith("?frame=1")

    page.fill("#image-viewer .cv-frame-slider", "7")
    page.wait_for_function("() => document.getElementById('image-viewer')?.dataset.viewerFrame === '7'")
    page.wait_for_function("() => window.clinicImageViewer.state().source === 'pixels'")
    assert page.evaluate("window.__notReloaded === true")
    assert page.url.endswith("?frame=7")


def test_the_labelling_queue_draws_full_depth_pixels_and_labels_with_one_key(live_server, released, page):
    log_in(page, live_server, username="demo-clinician")
    page.goto(f"{live_server.url}/")
    page.click("#nav-label")
    page.click("#start-labelling")
    page.wait_for_selector("html[data-labelling-ready]")
    page.wait_for_function("() => document.getElementById('label-viewer')?.dataset.viewerSource === 'pixels'")
    first = page.locator("#label-stage").get_attribute("data-image-id")
    assert first in released.values()
    # The viewer's keys work here too, and are not labelling keys: nothing is labelled by them.
    page.keyboard.press("i")
    page.wait_for_function("() => document.getElementById('label-viewer')?.dataset.viewerInverted === '1'")
    assert page.locator("#label-count").inner_text() == "0"

    page.keyboard.press("1")  # one key: labelled, and the next image is drawn
    page.wait_for_function(f"() => document.getElementById('label-stage')?.dataset.imageId !== '{first}'")
    assert page.locator("#label-stage").get_attribute("data-image-id") in released.values()
    page.wait_for_function("() => document.getElementById('label-viewer')?.dataset.viewerInverted === '0'")
    page.wait_for_function("() => document.getElementById('label-save-state')?.textContent === 'all saved'")
    assert page.locator("#label-count").inner_text() == "1"
    assert page.evaluate("window.clinicLabelling.timings.length") == 1


@pytest.fixture
def held_multiframe(transactional_db, client):
    """A 4-frame XA with a name burned into every frame, held for masking (OCR on), made before
    Playwright starts."""
    from clinic_ai.accounts.management.commands.demo_setup import DEMO_PROJECT, DEMO_USERS
    from clinic_ai.accounts.models import TaskType, User
    from clinic_ai.accounts.services import membership_set, project_create
    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api
    from tests.deidentification.synthetic import BURNED_TEXT, TEXT_ORIGIN, multiframe_xa_bytes

    project = project_create(
        actor=None, name=DEMO_PROJECT, task_type=TaskType.BINARY, class_names=["normal", "pneumonia"]
    )
    for username, role, _ in DEMO_USERS:
        user = User.objects.create_user(username=username, password="clinic-ai-demo")
        membership_set(actor=None, project=project, user=user, role=role)
    client.force_login(User.objects.get(username="demo-radiologist"))
    text = {i: (BURNED_TEXT, TEXT_ORIGIN) for i in range(4)}
    upload_through_api(client, project, {"xa.dcm": multiframe_xa_bytes(frames=4, text_on=text, size=18)})
    run_pipeline_inline()
    image = Image.objects.get()
    assert image.status == "held"
    return str(image.pk)


# The brightest red value over a rectangle of the masking page's viewer, given in image pixels.
REGION_MAX = """([x0, y0, x1, y1]) => {
  const c = document.querySelector('#mask-image canvas');
  const k = c.width / 256;
  const d = c.getContext('2d').getImageData(Math.ceil(x0 * k), Math.ceil(y0 * k),
    Math.floor((x1 - x0) * k), Math.floor((y1 - y0) * k)).data;
  let max = 0;
  for (let i = 0; i < d.length; i += 4) max = Math.max(max, d[i]);
  return max;
}"""


def test_the_masked_result_is_checked_on_every_frame_without_a_reload(live_server, held_multiframe, page):
    from tests.deidentification.synthetic import text_box

    log_in(page, live_server)
    page.goto(f"{live_server.url}/images/{held_multiframe}/mask/")
    page.wait_for_selector("html[data-mask-ready]")
    page.wait_for_function("() => document.getElementById('mask-image')?.dataset.viewerShownFrame === '0'")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("#mask-viewer-tools .cv-frame-text").inner_text() == "Frame 1 of 4"
    posts = []
    page.on("request", lambda r: posts.append(r.post_data_json) if r.url.endswith("/mask/preview.png") else None)
    x0, y0, x1, y1 = text_box(size=18)
    inside = [x0 + 2, y0 + 2, x1 - 2, y1 - 2]
    assert page.evaluate(REGION_MAX, inside) > 200  # the burned-in text, white

    canvas = page.locator("#mask-canvas").bounding_box()
    scale = canvas["width"] / 256
    page.click("#mask-clear-btn")
    page.mouse.move(canvas["x"] + (x0 - 3) * scale, canvas["y"] + (y0 - 3) * scale)
    page.mouse.down()
    page.mouse.move(canvas["x"] + (x1 + 3) * scale, canvas["y"] + (y1 + 3) * scale, steps=6)
    page.mouse.up()
    assert len(page.evaluate("window.clinicMask.boxes()")) == 1
    page.click("#mask-preview-btn")
    page.wait_for_selector("#mask-view-badge:not([hidden])")
    page.wait_for_function("() => document.getElementById('mask-image')?.dataset.viewerDrawn > 1")

    for frame in (0, 1, 2, 3):
        page.fill("#mask-viewer-tools .cv-frame-slider", str(frame))
        page.wait_for_function(f"() => document.getElementById('mask-image')?.dataset.viewerShownFrame === '{frame}'")
        # The box drawn once is black on this frame of the masked result.
        assert page.evaluate(REGION_MAX, inside) == 0, frame
    assert page.evaluate("window.__notReloaded === true")
    assert sorted({body["frame"] for body in posts}) == [0, 1, 2, 3]
    assert len({str(body["boxes"]) for body in posts}) == 1

    page.click("#mask-preview-btn")  # back to the original: the text is there on the frame shown
    page.wait_for_selector("#mask-view-badge", state="hidden")
    page.wait_for_function("() => document.getElementById('mask-image')?.dataset.viewerShownFrame === '3'")
    page.wait_for_function(f"() => ({REGION_MAX})({inside}) > 200")


def test_a_colour_image_is_drawn_in_colour_and_inverts_per_channel(live_server, released, page):
    log_in(page, live_server)
    _open(page, live_server, released["colour"])
    pixel = """() => {
      const c = document.querySelector('#image-viewer canvas');
      return Array.from(c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data);
    }"""
    before = page.evaluate(pixel)
    assert before[0] != before[1] and before[2] in (89, 90, 91)  # colour, not grey
    drawn = page.evaluate(CANVAS)["drawn"]
    page.click("#image-viewer .cv-invert")
    _wait_drawn_after(page, drawn)
    after = page.evaluate(pixel)
    assert [255 - v for v in after[:3]] == before[:3]


# --- VOI LUT Sequence and VOILUTFunction ------------------------------------------------------------

BLOCK = 32  # the test images are 8 x 8 blocks of one value each: block centres are exact on the canvas

# The canvas's red value at the centre of every block of an image of `blocks` x `blocks` blocks of
# BLOCK pixels, wherever the viewer fitted it (placement as viewer.js: fit, centred, no zoom/pan).
BLOCK_CENTRES = """([blocks, block]) => {
  const c = document.querySelector('#image-viewer canvas');
  const stage = c.parentElement;
  const ratio = c.width / stage.clientWidth;
  const size = blocks * block;
  const fit = Math.min(stage.clientWidth / size, stage.clientHeight / size);
  const x0 = (stage.clientWidth - size * fit) / 2;
  const y0 = (stage.clientHeight - size * fit) / 2;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const out = [];
  for (let by = 0; by < blocks; by += 1) {
    const row = [];
    for (let bx = 0; bx < blocks; bx += 1) {
      const x = Math.floor((x0 + (bx + 0.5) * block * fit) * ratio);
      const y = Math.floor((y0 + (by + 0.5) * block * fit) * ratio);
      row.push(d[(y * c.width + x) * 4]);
    }
    out.push(row);
  }
  return out;
}"""


def block_pixels(blocks: int = 8) -> np.ndarray:
    """Stored values 0..4095 in blocks, every block its own value, spread over the 12 bits."""
    values = (np.arange(blocks * blocks) * 4095 // (blocks * blocks - 1)).reshape(blocks, blocks)
    return np.kron(values, np.ones((BLOCK, BLOCK), dtype=np.int64)).astype(np.uint16)


@pytest.fixture
def voi_images(transactional_db, client):
    """A DX whose only VOI is a non-linear VOI LUT, and two DX with the same pixels and window, one
    with VOILUTFunction SIGMOID and one LINEAR, released before Playwright starts."""
    import hashlib

    from clinic_ai.studies.models import Image
    from tests.conftest import run_pipeline_inline, upload_through_api
    from tests.studies.dicom_variants import dx_with_voi_lut

    project = demo_project_without_ensemble(client)
    window = ((2148.0, 1000.0),)
    files = {
        "lut.dcm": dx_with_voi_lut(pixels=block_pixels()),
        "sigmoid.dcm": dx_with_voi_lut(pixels=block_pixels(), luts=[], windows=window, voi_function="SIGMOID"),
        "linear.dcm": dx_with_voi_lut(pixels=block_pixels(), luts=[], windows=window, voi_function="LINEAR"),
    }
    upload_through_api(client, project, files)
    run_pipeline_inline()
    ids = {}
    for name, data in files.items():
        image = Image.objects.get(sha256=hashlib.sha256(data).hexdigest())
        assert image.status == "released", name
        ids[name.removesuffix(".dcm")] = str(image.pk)
    return ids


def test_a_voi_lut_only_image_is_first_drawn_through_its_lut_as_the_preview(live_server, voi_images, page):
    from tests.studies.dicom_variants import voi_lut_gamma

    log_in(page, live_server)
    _open(page, live_server, voi_images["lut"])
    drawn = np.array(page.evaluate(BLOCK_CENTRES, [8, BLOCK]))
    # Independently of the server: modality = stored + 100, the LUT's inputs start at 100, and its
    # output range 200..3800 is black..white.
    table = np.array(voi_lut_gamma())
    mapped = table[np.clip(block_pixels()[BLOCK // 2 :: BLOCK, BLOCK // 2 :: BLOCK] + 100 - 100, 0, 4095)]
    expected = np.floor((mapped - 200) / 3600 * 255 + 0.5)
    assert np.abs(drawn - expected).max() <= 1, (drawn, expected)
    # Not what a straight window would draw: the LUT is a curve (the middle block is well above grey).
    straight = np.floor(block_pixels()[BLOCK // 2 :: BLOCK, BLOCK // 2 :: BLOCK] / 4095 * 255 + 0.5)
    assert np.abs(drawn - straight).max() > 40

    state = page.evaluate("window.clinicImageViewer.state()")
    assert state["voi"] == 0
    names = [p["name"] for p in state["presets"]]
    assert names[0] == "Header LUT" and "favourite" not in str(state["presets"])
    assert page.locator("#image-viewer .cv-readout").inner_text().startswith("LUT 1 ")

    # Dragging windows the LUT's output: narrower than its range, so the canvas changes.
    before = page.evaluate(CANVAS)
    box = page.locator("#image-viewer canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 100, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    _wait_drawn_after(page, before["drawn"])
    state = page.evaluate("window.clinicImageViewer.state()")
    assert state["voi"] == 0 and state["width"] < 3600
    assert page.evaluate(CANVAS)["sum"] != before["sum"]

    # The automatic window is on the modality values again; R goes back to the LUT.
    page.select_option(
        "#image-viewer .cv-preset",
        label=next(
            f"{p['name']} (W {round(p['width'])} L {round(p['center'])})"
            for p in state["presets"]
            if p["name"].startswith("Auto")
        ),
    )
    page.wait_for_function("() => window.clinicImageViewer.state().voi === null")
    auto = page.evaluate(CANVAS)
    page.keyboard.press("r")
    page.wait_for_function("() => window.clinicImageViewer.state().voi === 0")
    _wait_drawn_after(page, auto["drawn"])
    assert np.abs(np.array(page.evaluate(BLOCK_CENTRES, [8, BLOCK])) - expected).max() <= 1


def test_a_sigmoid_header_window_is_drawn_with_the_sigmoid(live_server, voi_images, page):
    log_in(page, live_server)
    modality = block_pixels()[BLOCK // 2 :: BLOCK, BLOCK // 2 :: BLOCK].astype(np.float64) + 100
    c, w = 2148.0, 1000.0
    # PS3.3 C.11.2.1.3.1 (SIGMOID) and the viewer's straight line for LINEAR, to 0..255.
    sigmoid = np.floor(255 / (1 + np.exp(-4 * (modality - c) / w)) + 0.5)
    linear = np.floor(np.clip((modality - (c - w / 2)) * 255 / w, 0, 255) + 0.5)
    drawn = {}
    for name in ("sigmoid", "linear"):
        _open(page, live_server, voi_images[name])
        drawn[name] = np.array(page.evaluate(BLOCK_CENTRES, [8, BLOCK]))
        state = page.evaluate("window.clinicImageViewer.state()")
        assert (state["center"], state["width"], state.get("voi")) == (c, w, None)
    assert np.abs(drawn["linear"] - linear).max() <= 1
    assert np.abs(drawn["sigmoid"] - sigmoid).max() <= 1, (drawn["sigmoid"], sigmoid)
    # The curve's tails are not clipped: blocks a straight window draws black or white are not.
    assert np.abs(drawn["sigmoid"] - drawn["linear"]).max() > 20
