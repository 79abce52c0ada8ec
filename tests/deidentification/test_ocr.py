"""Burned-in text detection with the real Tesseract (clinic_ai.deid.ocr).

Text is drawn into pixels here, so the tests know exactly where it is: every planted string must
be covered (>= 90 % of its bounding box) and pictures without text must give no box at all.
The corpus goes through the production path (:func:`find_text_in_frames`: the pre-filter, then
Tesseract on candidate regions); :func:`find_text_regions` (the whole picture, the fallback when
the pre-filter cannot narrow a frame down) keeps its own tests.
Nothing is downloaded: pydicom-data and deid-data are local packages (``download=False``).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

from clinic_ai.deid import apply_pixel_mask, decode_frames, deidentify_dataset, read_dicom
from clinic_ai.deid.ocr import (
    OcrUnavailable,
    TesseractTextDetector,
    find_text_in_frames,
    find_text_regions,
    frame_to_grey,
    merge_boxes,
)
from clinic_ai.deid.options import DeidOptions
from clinic_ai.deid.pixels import Box, TextRegionDetector
from clinic_ai.studies.imaging import render_preview

from .corpus import UID_SECRET
from .synthetic import text_box, ultrasound_bytes

NAME, MRN, DATE, HOSPITAL = "DOE^JANE", "MRN 12345678", "2024-03-01", "ST MARY HOSPITAL"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _font(face: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if face == "dejavu":
        if not DEJAVU.exists():
            pytest.skip("DejaVu fonts are not installed")
        return ImageFont.truetype(str(DEJAVU), size)
    return ImageFont.load_default(size=size)


def detect(picture: Image.Image | np.ndarray) -> list[Box]:
    """One picture through the production path: pre-filter, then Tesseract on the candidates."""
    return find_text_in_frames([picture])


@pytest.fixture
def tesseract_runs(monkeypatch) -> list[int]:
    """Tesseract runs, counted by wrapping pytesseract's entry point (the library boundary); Tesseract still runs."""
    runs: list[int] = []
    real = pytesseract.image_to_data

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pytesseract, "image_to_data", counting)
    return runs


def coverage(target: Box, boxes: list[Box]) -> float:
    """Fraction of ``target``'s pixels inside the union of ``boxes``."""
    x0, y0, x1, y1 = target
    covered = np.zeros((y1 - y0, x1 - x0), bool)
    for bx0, by0, bx1, by1 in boxes:
        cx0, cy0, cx1, cy1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
        if cx1 > cx0 and cy1 > cy0:
            covered[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = True
    return float(covered.mean())


def fan(rows: int = 480, columns: int = 640, *, seed: int = 0, depth: int = 60) -> np.ndarray:
    """An ultrasound-like 8-bit frame: a speckled sector on black, corners free for annotations."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:columns]
    apex_x, apex_y = columns / 2, 40
    angle = np.degrees(np.arctan2(xx - apex_x, yy - apex_y + 1e-6))
    radius = np.hypot(xx - apex_x, yy - apex_y)
    sector = (np.abs(angle) < 40) & (radius > 30) & (radius < rows - depth)
    pixels = np.zeros((rows, columns), np.uint8)
    pixels[sector] = np.clip(rng.gamma(2.0, 30.0, size=int(sector.sum())), 0, 230).astype(np.uint8)
    return pixels


Placement = tuple[str, tuple[int, int], int]  # text, origin, font size


def draw(picture: Image.Image, face: str, placements: list[Placement], fill) -> dict[str, Box]:
    pen = ImageDraw.Draw(picture)
    truth = {}
    for text, origin, size in placements:
        font = _font(face, size)
        truth[text] = tuple(int(v) for v in pen.textbbox(origin, text, font=font))
        pen.text(origin, text, fill=fill, font=font)
    return truth


def scene_ultrasound_small(face):
    """10-12 px white annotations in the corners of a 640x480 ultrasound."""
    picture = Image.fromarray(fan())
    placements = [(NAME, (8, 6), 11), (MRN, (8, 20), 11), (DATE, (556, 6), 11), (HOSPITAL, (8, 456), 12)]
    return picture, draw(picture, face, placements, 255)


def scene_ultrasound_grey(face):
    """Mid-grey 14 px text (a dimmed annotation layer)."""
    picture = Image.fromarray(fan(seed=1))
    placements = [(NAME, (10, 8), 14), (MRN, (10, 26), 14), (DATE, (520, 8), 14), (HOSPITAL, (470, 450), 14)]
    return picture, draw(picture, face, placements, 170)


def scene_ultrasound_yellow(face):
    """Yellow 16 px text on an RGB ultrasound."""
    picture = Image.fromarray(fan(seed=2)).convert("RGB")
    placements = [(NAME, (12, 10), 16), (MRN, (12, 32), 16), (DATE, (500, 10), 16), (HOSPITAL, (12, 446), 16)]
    return picture, draw(picture, face, placements, (255, 220, 0))


def scene_yellow_on_black(face):
    """12 px yellow text on a black 512x512 secondary capture."""
    picture = Image.new("RGB", (512, 512))
    placements = [(NAME, (6, 4), 12), (MRN, (6, 20), 12), (DATE, (420, 4), 12), (HOSPITAL, (330, 494), 12)]
    return picture, draw(picture, face, placements, (255, 255, 0))


def scene_big_text(face):
    """40-48 px white text on black."""
    picture = Image.new("L", (640, 480))
    placements = [(NAME, (20, 20), 48), (MRN, (20, 100), 40), (DATE, (20, 200), 40), (HOSPITAL, (20, 300), 40)]
    return picture, draw(picture, face, placements, 255)


def scene_black_on_white(face):
    """20 px black text on white (a scanned form, a screenshot)."""
    picture = Image.new("L", (640, 480), 255)
    placements = [(NAME, (30, 30), 20), (MRN, (30, 80), 20), (DATE, (400, 30), 20), (HOSPITAL, (30, 420), 20)]
    return picture, draw(picture, face, placements, 0)


def scene_light_banner(face):
    """Dark 12 px text on light banners across a dark ultrasound (mixed polarity)."""
    picture = Image.fromarray(fan(seed=4))
    pen = ImageDraw.Draw(picture)
    pen.rectangle([0, 0, 639, 22], fill=200)
    pen.rectangle([0, 457, 639, 479], fill=200)
    placements = [(NAME, (8, 5), 12), (MRN, (110, 5), 12), (DATE, (540, 5), 12), (HOSPITAL, (8, 462), 12)]
    return picture, draw(picture, face, placements, 20)


SCENES: dict[str, Callable] = {
    "ultrasound-11px-white": scene_ultrasound_small,
    "ultrasound-14px-grey": scene_ultrasound_grey,
    "ultrasound-16px-yellow": scene_ultrasound_yellow,
    "yellow-on-black-12px": scene_yellow_on_black,
    "big-white-on-black": scene_big_text,
    "black-on-white-20px": scene_black_on_white,
    "light-banner-dark-text": scene_light_banner,
}


@pytest.mark.parametrize("face", ["pillow", "dejavu"])
@pytest.mark.parametrize("scene", list(SCENES))
def test_planted_text_is_covered(scene: str, face: str) -> None:
    picture, truth = SCENES[scene](face)
    boxes = detect(picture)
    for text, target in truth.items():
        assert coverage(target, boxes) >= 0.9, f"{text!r} not covered in {scene}/{face}"
    # Boxes stay around the text: not the whole picture.
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
    assert area <= 0.3 * picture.width * picture.height
    for box in boxes:
        assert all(isinstance(v, int) for v in box)
        assert 0 <= box[0] < box[2] <= picture.width and 0 <= box[1] < box[3] <= picture.height


def test_arrays_and_pictures_give_the_same_boxes() -> None:
    picture, _ = scene_yellow_on_black("pillow")
    assert find_text_regions(np.asarray(picture)) == find_text_regions(picture)


# ------------------------------------------------------------------------------- no text at all
def _xray(seed: int, size: int = 512) -> Image.Image:
    """A chest-radiograph-like picture: soft body, darker lungs, rib bands, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    body = np.exp(-((((xx - 0.5) / 0.32) ** 2 + ((yy - 0.55) / 0.42) ** 2) ** 2))
    lungs = np.exp(-(((np.abs(xx - 0.5) - 0.17) / 0.11) ** 2 + ((yy - 0.45) / 0.22) ** 2))
    ribs = 0.12 * (np.sin(yy * 60 + np.abs(xx - 0.5) * 8) > 0.6) * body
    pixels = 200 * body - 120 * lungs + 255 * ribs + rng.normal(0, 6, (size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _testdata(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not in the local pydicom test data")
    return str(path)


SYNTHETIC_NEGATIVES: dict[str, Callable[[], Image.Image]] = {
    "uniform-grey-noise": lambda: Image.fromarray(np.random.default_rng(7).integers(0, 256, (512, 512), np.uint8)),
    "xray-like": lambda: _xray(0),
    "gradient": lambda: Image.fromarray(np.tile(np.linspace(0, 255, 512), (512, 1)).astype(np.uint8)),
    "ultrasound-without-text": lambda: Image.fromarray(fan(seed=3)),
}


@pytest.mark.parametrize("name", list(SYNTHETIC_NEGATIVES))
def test_synthetic_pictures_without_text_give_no_box_and_are_not_sent_to_tesseract(name: str, tesseract_runs) -> None:
    assert detect(SYNTHETIC_NEGATIVES[name]()) == []
    assert tesseract_runs == []


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "693_J2KR.dcm", "RG1_J2KR.dcm"],
)
def test_real_images_without_text_give_no_box(name: str) -> None:
    """CT, MR, a head CT and a radiograph, rendered as the preview is."""
    assert detect(render_preview(_testdata(name), "dicom", max_size=1024)) == []


# ------------------------------------------------------------------------------ real ultrasounds
US1_ANNOTATIONS = {
    "institution line": (20, 26, 168, 38),
    "left block": (20, 26, 168, 104),
    "right block": (500, 25, 624, 104),
    "label": (250, 362, 358, 374),
    "output line": (400, 458, 618, 470),
}


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US1_J2KR.dcm", "US1_J2KI.dcm"])
def test_real_ultrasound_annotations_are_found(name: str) -> None:
    """pydicom's GE ultrasound (uncompressed, lossless and lossy JPEG 2000): institution name,
    identifiers, clip label and output indices are burned in at the top and bottom."""
    picture = render_preview(_testdata(name), "dicom", max_size=1024)
    assert picture.size == (640, 480)
    boxes = detect(picture)
    for label, target in US1_ANNOTATIONS.items():
        assert coverage(target, boxes) >= 0.9, label
    # ... and the boxes stay out of the image area (rows 110-340), except the colour-bar labels at the edges.
    inside = [b for b in boxes if b[3] > 110 and b[1] < 340 and b[0] > 60 and b[2] < 580]
    assert inside == []


def test_palette_ultrasound_annotations_are_found() -> None:
    picture = render_preview(_testdata("gdcm-US-ALOKA-16.dcm"), "dicom", max_size=1024)
    boxes = detect(picture)
    for label, target in {
        "institution": (81, 1, 245, 14),
        "date": (541, 1, 638, 14),
        "exam": (21, 457, 98, 467),
    }.items():
        assert coverage(target, boxes) >= 0.9, label


# ------------------------------------------------------------------------------ the frames seam
def _multiframe_ultrasound(frames: int = 7) -> tuple[Dataset, dict[str, Box]]:
    """Static annotations on every frame, a label burned into the last frame only."""
    stack = []
    for i in range(frames):
        picture = Image.fromarray(fan(300, 400, seed=10 + i, depth=40))
        truth = draw(picture, "pillow", [(NAME, (6, 4), 12), (MRN, (6, 20), 12)], 255)
        if i == frames - 1:
            truth.update(draw(picture, "pillow", [(DATE, (300, 276), 12)], 255))
        stack.append(np.asarray(picture))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN12345678"
    ds.set_pixel_data(np.stack(stack), "MONOCHROME2", 8, generate_instance_uid=False)
    return ds, truth


def test_the_detector_reads_every_frame_and_masking_removes_the_text() -> None:
    detector: TextRegionDetector = TesseractTextDetector()
    ds, truth = _multiframe_ultrasound()
    frames, photometric = decode_frames(ds)
    assert frames.shape == (7, 300, 400)
    boxes = detector(frames, photometric)
    for text, target in truth.items():
        assert coverage(target, boxes) >= 0.9, text

    masked = apply_pixel_mask(ds, boxes)
    frames, photometric = decode_frames(masked)
    for x0, y0, x1, y1 in boxes:
        assert not frames[:, y0:y1, x0:x1].any()
    assert detector(frames, photometric) == []


def test_masking_a_deidentified_ultrasound_leaves_no_text() -> None:
    src = read_dicom(ultrasound_bytes())
    ds = deidentify_dataset(
        src, options=DeidOptions(), uid_secret=UID_SECRET, patient_pseudonym="ANON-OCR", date_shift_days=-100
    ).dataset
    detector = TesseractTextDetector()
    frames, photometric = decode_frames(ds)
    boxes = detector(frames, photometric)
    assert coverage(text_box(), boxes) >= 0.9
    masked = pydicom.dcmread(io.BytesIO(_bytes(apply_pixel_mask(ds, boxes))))
    assert masked.BurnedInAnnotation == "NO"
    assert detector(*decode_frames(masked)) == []


def _bytes(ds: Dataset) -> bytes:
    from clinic_ai.deid import dicom_to_bytes

    return dicom_to_bytes(ds)


def test_real_multiframe_ultrasound_through_the_seam() -> None:
    deid_data = pytest.importorskip("deid_data")
    path = Path(deid_data.__file__).parent / "data" / "ultrasounds" / "ultrasound-multiframe.dcm"
    frames, photometric = decode_frames(read_dicom(path))
    assert frames.ndim == 4 and frames.shape[0] == 30 and photometric == "RGB"
    boxes = TesseractTextDetector()(frames, photometric)
    assert coverage((736, 569, 791, 584), boxes) >= 0.9  # heart rate, bottom right
    assert coverage((12, 77, 51, 89), boxes) >= 0.9  # depth, top left
    assert len(boxes) >= 5


def test_sixteen_bit_monochrome_frames() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:512, 0:512]
    body = (((xx - 256) / 200) ** 2 + ((yy - 256) / 230) ** 2 < 1) * 1200 + rng.normal(0, 30, (512, 512)) + 1000
    frame = np.clip(body, 0, 4095).astype(np.uint16)
    label = Image.new("L", (512, 512))
    truth = draw(label, "pillow", [(NAME + " " + DATE, (10, 10), 14)], 255)[NAME + " " + DATE]
    ink = np.asarray(label) > 128
    detector = TesseractTextDetector()
    assert detector(frame[None], "MONOCHROME2") == []
    monochrome2 = frame.copy()
    monochrome2[ink] = 4095
    assert coverage(truth, detector(monochrome2[None], "MONOCHROME2")) >= 0.9
    monochrome1 = 4095 - frame  # MONOCHROME1: the lowest value is displayed white
    monochrome1[ink] = 0
    assert coverage(truth, detector(monochrome1[None], "MONOCHROME1")) >= 0.9


def test_frame_to_grey() -> None:
    mono = np.array([[0, 2048], [4095, 1024]], np.uint16)
    assert frame_to_grey(mono, "MONOCHROME2").tolist() == [[0, 128], [255, 64]]
    assert frame_to_grey(mono, "MONOCHROME1").tolist() == [[255, 127], [0, 191]]
    ybr = np.zeros((2, 2, 3), np.uint8)
    ybr[..., 0] = 200
    ybr[..., 1:] = 17
    assert (frame_to_grey(ybr, "YBR_FULL") == 200).all()
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[0, 0] = (255, 255, 0)
    assert frame_to_grey(rgb, "RGB")[0, 0] == 226  # yellow stays bright
    with pytest.raises(ValueError):
        TesseractTextDetector()(np.zeros((2, 3, 4, 5, 6), np.uint8), "RGB")


def test_merge_boxes() -> None:
    assert merge_boxes([(0, 0, 10, 10), (20, 0, 30, 10), (9, 5, 21, 6)]) == [(0, 0, 30, 10)]
    assert merge_boxes([(0, 0, 5, 5), (10, 10, 15, 15)]) == [(0, 0, 5, 5), (10, 10, 15, 15)]


def test_flat_and_tiny_pictures_are_not_sent_to_tesseract(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("tesseract should not run")

    monkeypatch.setattr(pytesseract, "image_to_data", fail)
    assert find_text_regions(Image.new("L", (300, 300), 17)) == []
    assert find_text_regions(np.zeros((4, 400), np.uint8)) == []


# ---------------------------------------------------------------------------- failing safe
@pytest.fixture
def text_picture() -> Image.Image:
    return scene_yellow_on_black("pillow")[0]


@pytest.mark.parametrize("command", ["/nonexistent/tesseract", "false"])
def test_a_missing_or_failing_tesseract_raises(monkeypatch, text_picture, command: str) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", command)
    with pytest.raises(OcrUnavailable):
        find_text_regions(text_picture)
    with pytest.raises(OcrUnavailable):
        detect(text_picture)
    with pytest.raises(OcrUnavailable):
        TesseractTextDetector()(np.asarray(text_picture)[None], "RGB")


def test_a_timeout_raises(text_picture) -> None:
    with pytest.raises(OcrUnavailable):
        find_text_regions(text_picture, timeout=0.0001)
    with pytest.raises(OcrUnavailable):
        find_text_in_frames([text_picture], timeout=0.0001)


@pytest.mark.parametrize("output", [{}, {"text": ["x"], "conf": []}, {"text": None}])
def test_unreadable_output_raises(monkeypatch, text_picture, output) -> None:
    monkeypatch.setattr(pytesseract, "image_to_data", lambda *a, **k: output)
    with pytest.raises(OcrUnavailable):
        find_text_regions(text_picture)
    with pytest.raises(OcrUnavailable):
        detect(text_picture)


def test_recognised_text_is_never_logged_printed_or_returned(caplog, capfd, text_picture) -> None:
    with caplog.at_level(logging.DEBUG):
        boxes = find_text_regions(text_picture) + detect(text_picture)
    assert boxes
    out, err = capfd.readouterr()
    for fragment in ("JANE", "12345678", "2024", "HOSPITAL", "MARY"):
        assert fragment not in caplog.text and fragment not in out and fragment not in err
    assert all(isinstance(v, int) for box in boxes for v in box)


def test_tesseract_runs_single_threaded_without_touching_our_environment(monkeypatch) -> None:
    view = pytesseract.pytesseract.environ
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    assert view["OMP_THREAD_LIMIT"] == "1" and "OMP_THREAD_LIMIT" not in os.environ
    assert dict(view)["PATH"] == os.environ["PATH"]
    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")
    assert view["OMP_THREAD_LIMIT"] == "2" and len(view) == len(os.environ)


def test_min_confidence_and_min_chars(text_picture) -> None:
    everything = find_text_regions(text_picture)
    assert find_text_regions(text_picture, min_confidence=101) == []
    assert len(find_text_regions(text_picture, min_chars=30)) == 0
    assert everything
    with pytest.raises(ValueError):
        find_text_regions(text_picture, min_chars=0)
