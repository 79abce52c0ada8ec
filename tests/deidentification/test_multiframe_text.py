"""Every frame is checked for burned-in text, cheaply: the pre-filter, the frame loop, the pipeline.

Tesseract runs are counted by wrapping pytesseract's entry point (the library boundary): the real
Tesseract still runs, nothing of ours is replaced.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytesseract
import pytest
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

from clinic_ai.deid import process as pipeline
from clinic_ai.deid.ocr import ScanStats, find_text_in_frames
from clinic_ai.deid.textscan import text_candidates
from clinic_ai.deidentification import services
from clinic_ai.studies import imaging
from clinic_ai.studies.models import Image as ImageRow
from clinic_ai.studies.models import ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api

from .synthetic import _font, angio_frame, multiframe_xa_bytes, text_box
from .test_ocr import SCENES, coverage

NAME = "DOE^JANE"
ORIGIN = (130, 200)  # lower right of the 256x256 angiogram, across a vessel
LABEL, LABEL_ORIGIN = "LAO 30 CRA 20", (8, 8)


@pytest.fixture
def tesseract_runs(monkeypatch) -> list[int]:
    runs: list[int] = []
    real = pytesseract.image_to_data

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pytesseract, "image_to_data", counting)
    return runs


def _frames(data: bytes) -> list[np.ndarray]:
    return list(pydicom.dcmread(io.BytesIO(data)).pixel_array)


# ------------------------------------------------------------------------------------ pre-filter
def test_a_plain_ct_slice_gives_no_candidate_and_tesseract_is_not_called(tesseract_runs) -> None:
    path = get_testdata_file("CT_small.dcm", download=False)
    (frame,) = list(imaging.iter_frames(path, "dicom"))
    candidates = text_candidates(np.asarray(frame))
    assert candidates.regions == [] and not candidates.whole_frame
    assert services.detect_text(path, "dicom") == []  # the upload/CLI detector
    assert tesseract_runs == []


@pytest.mark.parametrize("face", ["pillow", "dejavu"])
@pytest.mark.parametrize("scene", list(SCENES))
def test_the_pre_filter_keeps_every_planted_line(scene: str, face: str) -> None:
    picture, truth = SCENES[scene](face)
    grey = np.asarray(picture.convert("L"))
    candidates = text_candidates(grey)
    if candidates.whole_frame:  # the frame is read whole: nothing can be cut off
        return
    for text, target in truth.items():
        assert coverage(target, [r.box for r in candidates.regions]) == 1.0, text


def test_a_device_templates_known_boxes_are_always_candidates() -> None:
    flat = np.full((100, 200), 40, np.uint8)
    assert text_candidates(flat).regions == []
    boxes = {r.box for r in text_candidates(flat, known_boxes=[(10, 10, 60, 30), (150, 80, 400, 120)]).regions}
    assert boxes == {(10, 10, 60, 30), (150, 80, 200, 100)}


# ------------------------------------------------------------------------------------ the frames
@pytest.mark.parametrize("frame", [0, 3, 6])
def test_a_name_on_one_frame_of_seven_is_found_wherever_it_is(frame: int, tesseract_runs) -> None:
    data = multiframe_xa_bytes(text_on={frame: (NAME, ORIGIN)})
    stats = ScanStats()
    boxes = find_text_in_frames(_frames(data), stats=stats)
    assert coverage(text_box(NAME, ORIGIN, 16), boxes) >= 0.9
    assert stats.frames == 7 and stats.frames_read == 1
    assert len(tesseract_runs) == 1  # the six frames without text never reach Tesseract


def test_seven_frames_without_text_give_no_box_and_no_tesseract_run(tesseract_runs) -> None:
    assert find_text_in_frames(_frames(multiframe_xa_bytes())) == []
    assert tesseract_runs == []


def _with_text(frame: np.ndarray, *writes: tuple[str, tuple[int, int]]) -> np.ndarray:
    picture = Image.fromarray(frame)
    for text, origin in writes:
        ImageDraw.Draw(picture).text(origin, text, fill=255, font=_font(16))
    return np.asarray(picture)


def test_a_static_label_is_read_once_and_a_new_region_on_a_later_frame_is_read(tesseract_runs) -> None:
    frames = [_with_text(angio_frame(seed=i), (LABEL, LABEL_ORIGIN)) for i in range(7)]
    frames[4] = _with_text(frames[4], (NAME, ORIGIN))
    stats = ScanStats()
    boxes = find_text_in_frames(frames, stats=stats)
    assert coverage(text_box(LABEL, LABEL_ORIGIN, 16), boxes) >= 0.9
    assert coverage(text_box(NAME, ORIGIN, 16), boxes) >= 0.9
    assert len(tesseract_runs) == 2  # frame 0 (the label), frame 4 (only the new region)
    assert stats.regions_reused == 6 and stats.regions_read == 2


def test_text_that_changes_in_place_is_read_again(tesseract_runs) -> None:
    """Same box, other ink: a name written where a label stood on the earlier frames."""
    frames = [_with_text(angio_frame(seed=i), ("ROOM 3 LAB", ORIGIN)) for i in range(7)]
    frames[5] = _with_text(angio_frame(seed=5), (NAME + "X", ORIGIN))
    boxes = find_text_in_frames(frames)
    assert coverage(text_box(NAME + "X", ORIGIN, 16), boxes) >= 0.9
    assert len(tesseract_runs) == 2


def test_frames_are_decoded_one_at_a_time(tmp_path) -> None:
    path = tmp_path / "xa.dcm"
    path.write_bytes(multiframe_xa_bytes(frames=5))
    frames = imaging.iter_frames(path, "dicom")
    first = next(frames)
    assert first.size == (256, 256) and first.mode == "L"
    assert len(list(frames)) == 4


# --------------------------------------------------------------------------------- failing closed
def test_a_frame_that_cannot_be_decoded_holds_the_image(tmp_path) -> None:
    data = multiframe_xa_bytes(text_on={6: (NAME, ORIGIN)})
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 256 * 256 // 2])  # the last frames are cut off
    with pytest.raises(pipeline.TextCheckFailed):
        services.detect_text(path, "dicom")


def test_tesseract_failing_on_a_later_frame_holds_the_image(tmp_path, monkeypatch) -> None:
    path = tmp_path / "xa.dcm"
    path.write_bytes(multiframe_xa_bytes(text_on={6: (NAME, ORIGIN)}))
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(pipeline.TextCheckFailed):
        services.detect_text(path, "dicom")


# ------------------------------------------------------------------------ uploads and the command
@pytest.mark.django_db
@pytest.mark.parametrize("frame", [0, 3, 6])
def test_an_uploaded_seven_frame_xa_with_a_name_on_one_frame_is_held_with_a_box_over_it(
    client, project, radiologist, frame: int
) -> None:
    client.force_login(radiologist)
    upload_through_api(client, project, {"xa.dcm": multiframe_xa_bytes(text_on={frame: (NAME, ORIGIN)})})
    run_pipeline_inline()
    image = ImageRow.objects.get()
    assert image.frames == 7
    assert image.status == ImageStatus.HELD
    assert image.hold_reason == pipeline.REASON_TEXT_FOUND
    assert coverage(text_box(NAME, ORIGIN, 16), [tuple(b) for b in image.suggested_boxes]) >= 0.9


@pytest.mark.django_db
def test_an_uploaded_seven_frame_xa_without_text_is_released(client, project, radiologist) -> None:
    client.force_login(radiologist)
    upload_through_api(client, project, {"xa.dcm": multiframe_xa_bytes()})
    run_pipeline_inline()
    image = ImageRow.objects.get()
    assert image.status == ImageStatus.RELEASED, image.hold_reason


@pytest.mark.django_db
def test_the_command_line_holds_a_name_on_the_last_frame(tmp_path) -> None:
    from django.core.management import call_command

    source = tmp_path / "in"
    source.mkdir()
    (source / "last.dcm").write_bytes(multiframe_xa_bytes(text_on={6: (NAME, ORIGIN)}))
    (source / "none.dcm").write_bytes(multiframe_xa_bytes(patient_id="MRN55509999"))
    report = tmp_path / "report.json"
    call_command("deidentify", str(source), str(tmp_path / "out"), "--report", str(report), stdout=io.StringIO())
    rows = {row["input"]: row for row in json.loads(report.read_text())["files"]}
    assert rows["last.dcm"]["status"] == "held" and rows["last.dcm"]["output"] is None
    assert rows["none.dcm"]["status"] == "released"
