"""Tests for clinic_ai.studies.imaging: pure functions, no database.

The DICOM corpus is pydicom's own test data (pydicom + pydicom-data, installed locally). Only the
argument-less get_testdata_files() is used: pattern searches and get_testdata_file() may try to
download missing files, and the tests must never touch the network.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from clinic_ai.studies.imaging import (
    DicomInfo,
    ExtractedMember,
    RasterInfo,
    RejectedFile,
    RejectedMember,
    detect_kind,
    inspect_dicom,
    inspect_raster,
    render_preview,
    safe_extract_zip,
)

MAX_PIXELS = 100_000_000
PREVIEW_SIZE = 256

# ----------------------------------------------------------------------------------------------
# pydicom test corpus
# ----------------------------------------------------------------------------------------------

_DATA_ROOT = Path(pydicom.data.data_manager.DATA_ROOT)


@functools.cache
def _all_test_files() -> tuple[str, ...]:
    from pydicom.data import get_testdata_files

    return tuple(sorted(p for p in get_testdata_files() if os.path.isfile(p)))


def _is_dicom_by_content(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _label(path: str) -> str:
    """A short, unique, stable id: the path below the data directory."""
    for marker in ("/test_files/", "/data_store/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return os.path.basename(path)


DICOM_FILES = [p for p in _all_test_files() if _is_dicom_by_content(p)]


def corpus_file(name: str) -> str:
    matches = [p for p in _all_test_files() if os.path.basename(p) == name]
    assert matches, f"{name} is not in the local pydicom test data"
    return matches[0]


@functools.cache
def _outcome(path: str) -> tuple[str, str]:
    """("rendered", mode+size) or ("rejected", reason). Any other exception propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns a lot about non-conformant test files
        try:
            info = inspect_dicom(path, max_pixels=MAX_PIXELS)
            image = render_preview(path, "dicom", max_size=PREVIEW_SIZE)
        except RejectedFile as exc:
            return "rejected", exc.reason
    assert isinstance(info, DicomInfo)
    assert image.mode in ("L", "RGB")
    assert 0 < max(image.size) <= PREVIEW_SIZE and min(image.size) > 0
    pixels = np.asarray(image)
    assert pixels.dtype == np.uint8 and pixels.size > 0
    return "rendered", f"{image.mode} {image.size}"


def _header_strings(path: str) -> set[str]:
    """Values a reason must never repeat: names, IDs, dates and UIDs of the file, and its name."""
    found = {os.path.basename(path)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            for elem in ds.iterall():
                if elem.VR in ("PN", "LO", "SH", "UI", "DA", "DT", "TM") and elem.value:
                    text = str(elem.value)
                    if len(text) >= 6:
                        found.add(text)
        except Exception:
            pass  # unreadable headers have nothing more to leak
    return found


@pytest.mark.parametrize("path", DICOM_FILES, ids=[_label(p) for p in DICOM_FILES])
def test_every_pydicom_test_file_renders_or_is_rejected_cleanly(path):
    status, detail = _outcome(path)
    if status == "rejected":
        assert detail.strip(), "a rejection must carry a reason"
        for value in _header_strings(path):
            assert value not in detail, "the reason repeats a value from the file"


def test_corpus_totals(capsys):
    all_files = _all_test_files()
    outcomes = {p: _outcome(p) for p in DICOM_FILES}
    rendered = [p for p, (s, _) in outcomes.items() if s == "rendered"]
    rejected = [p for p, (s, _) in outcomes.items() if s == "rejected"]
    # 150 rendered with pydicom 3.0.2 + pydicom-data; a large drop means a regression.
    assert len(rendered) >= 140
    with capsys.disabled():
        print(
            f"\n[imaging corpus] files: {len(all_files)}, DICOM by content: {len(DICOM_FILES)}, "
            f"rendered: {len(rendered)}, rejected: {len(rejected)}, "
            f"not DICOM by content: {len(all_files) - len(DICOM_FILES)}"
        )
        for p in rejected:
            print(f"  rejected {_label(p)}: {outcomes[p][1]}")


MUST_RENDER = [
    "CT_small.dcm",  # CT, signed 16-bit, rescale
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "MR_small_RLE.dcm",  # RLE lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "emri_small_jpeg_ls_lossless.dcm",  # JPEG-LS, multi-frame
    "RG1_UNCR.dcm",  # MONOCHROME1, 15-bit
    "RG3_J2KR.dcm",  # MONOCHROME1, JPEG 2000
    "693_J2KR.dcm",  # signed 14-bit JPEG 2000
    "US1_J2KI.dcm",  # JPEG 2000 lossy, YBR_ICT
    "SC_rgb.dcm",  # RGB
    "SC_rgb_16bit.dcm",
    "SC_rgb_32bit.dcm",
    "SC_ybr_full_uncompressed.dcm",  # YBR_FULL
    "SC_ybr_full_422_uncompressed.dcm",  # YBR_FULL_422
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
    "SC_rgb_jpeg.dcm",  # JPEG baseline, RGB; pixel data written in implicit VR (fallback decode)
    "examples_ybr_color.dcm",  # JPEG baseline, YBR_FULL_422, multi-frame
    "JPGExtended.dcm",  # JPEG extended 12-bit
    "JPEG-LL.dcm",  # JPEG lossless SV1
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "examples_palette.dcm",  # PALETTE COLOR, 8-bit LUT
    "gdcm-US-ALOKA-16.dcm",  # PALETTE COLOR, 16-bit LUT
    "emri_small.dcm",  # multi-frame
    "SC_rgb_2frame.dcm",  # multi-frame RGB
    "liver.dcm",  # 1-bit, multi-frame
    "rtdose.dcm",  # 32-bit dose grid, multi-frame
    "eCT_Supplemental.dcm",  # enhanced CT: rescale/window in functional groups
    "vlut_04.dcm",  # VOI LUT sequence
    "mlut_18.dcm",  # modality LUT sequence
    "image_dfl.dcm",  # deflated explicit VR little endian
]


@pytest.mark.parametrize("name", MUST_RENDER)
def test_known_good_files_render(name):
    status, detail = _outcome(corpus_file(name))
    assert status == "rendered", detail


MUST_REJECT = {
    "MR_truncated.dcm": "truncated",
    "rtplan.dcm": "contains no image",
    "test-SR.dcm": "contains no image",
    "waveform_ecg.dcm": "contains no image",
    "DICOMDIR": "contains no image",
    "meta_missing_tsyntax.dcm": "transfer syntax",
    "badVR.dcm": "damaged",
}


@pytest.mark.parametrize("name", sorted(MUST_REJECT))
def test_known_bad_files_are_rejected(name):
    status, detail = _outcome(corpus_file(name))
    assert status == "rejected"
    assert MUST_REJECT[name] in detail


@pytest.mark.parametrize("name", ["rtstruct.dcm", "no_meta.dcm", "ExplVR_LitEndNoMeta.dcm", "OT-PAL-8-face.dcm"])
def test_dicom_without_preamble_is_refused_by_detect_kind(name):
    with pytest.raises(RejectedFile) as exc:
        detect_kind(corpus_file(name))
    assert "DICOM" in exc.value.reason


def test_ybr_and_jpeg_colour_conversions_match_rgb_reference():
    reference = np.asarray(render_preview(corpus_file("SC_rgb.dcm"), "dicom"), dtype=int)
    for name in (
        "SC_ybr_full_uncompressed.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG, YBR_FULL
        "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # JPEG, YBR_FULL_422
        "SC_rgb_rle.dcm",
        "SC_rgb_gdcm_KY.dcm",  # JPEG 2000
        "SC_rgb_expb_16bit.dcm",
    ):
        image = np.asarray(render_preview(corpus_file(name), "dicom"), dtype=int)
        assert image.shape == reference.shape, name
        assert np.abs(image - reference).mean() < 2, name


# ----------------------------------------------------------------------------------------------
# DICOM inspection
# ----------------------------------------------------------------------------------------------


def test_inspect_ct_small():
    path = corpus_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    info = inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert info.study_instance_uid == ds.StudyInstanceUID
    assert info.series_instance_uid == ds.SeriesInstanceUID
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.modality == "CT"
    assert info.study_date is not None and info.study_date.strftime("%Y%m%d") == ds.StudyDate
    assert info.series_number == int(ds.SeriesNumber)
    assert (info.rows, info.columns, info.frames) == (128, 128, 1)
    assert info.photometric_interpretation == "MONOCHROME2"
    assert info.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
    assert info.transfer_syntax_name == "Explicit VR Little Endian"

    meta = info.display_metadata
    assert meta["Modality"] == "CT"
    assert meta["Rows"] == "128"
    assert meta["SOP Class"] == "CT Image Storage"
    assert meta["Transfer Syntax"] == "Explicit VR Little Endian"
    assert "Manufacturer" in meta
    identifying = {
        str(ds.get(k))
        for k in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "StudyDate",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "InstitutionName",
            "ReferringPhysicianName",
            "StudyID",
            "AccessionNumber",
        )
        if ds.get(k)
    }
    for value in meta.values():
        assert value not in identifying
        assert not any(v in value for v in identifying if len(v) > 4)


def test_inspect_rejects_too_many_pixels():
    with pytest.raises(RejectedFile) as exc:
        inspect_dicom(corpus_file("CT_small.dcm"), max_pixels=128 * 128 - 1)
    assert "too large" in exc.value.reason
    # Frames count: a 10-frame 64x64 image is 40960 pixels.
    with pytest.raises(RejectedFile):
        inspect_dicom(corpus_file("emri_small.dcm"), max_pixels=64 * 64 * 9)
    assert inspect_dicom(corpus_file("emri_small.dcm"), max_pixels=64 * 64 * 10).frames == 10


def test_pixel_data_cut_short_is_truncated(tmp_path):
    data = Path(corpus_file("CT_small.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 10_000])  # CT_small's pixel data is its last 32 KB or so
    with pytest.raises(RejectedFile) as exc:
        inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert exc.value.reason == "The DICOM file is truncated: its pixel data is shorter than its header says."


def test_header_cut_short_is_truncated(tmp_path):
    src = corpus_file("CT_small.dcm")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    # Cut inside the value of an element in the middle of the header.
    cut_at = ds.get_item("SeriesInstanceUID").value_tell + 5
    path = tmp_path / "cut.dcm"
    path.write_bytes(Path(src).read_bytes()[:cut_at])
    with pytest.raises(RejectedFile) as exc:
        inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert exc.value.reason == "The DICOM file is truncated: it ends in the middle of its header."


def _cuts(data: bytes) -> dict[str, bytes]:
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    inside_value = header.get_item("SeriesInstanceUID").value_tell + 5
    return {
        "whole": data,
        "cut-in-value": data[:inside_value],
        "cut-in-pixels": data[: len(data) - 10_000],
        "cut-in-next-header": data + b"\x10\x00\x10",  # 3 bytes of another element's tag
        "trailing-garbage": data + b"\xff" * 5,
        "trailing-item-delimiter": data + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00",
    }


@pytest.mark.parametrize(
    "cut",
    ["whole", "cut-in-value", "cut-in-pixels", "cut-in-next-header", "trailing-garbage", "trailing-item-delimiter"],
)
def test_the_upload_check_and_the_de_identifier_read_truncation_one_way(tmp_path, cut):
    """One truncation rule (``deid.dicomio.truncation``): what the upload accepts, the
    de-identifier reads, and what one refuses as truncated, the other does too."""
    from clinic_ai.deid.dicomio import read_dicom
    from clinic_ai.deid.errors import DeidentificationError

    data = _cuts(Path(corpus_file("CT_small.dcm")).read_bytes())[cut]
    path = tmp_path / "file.dcm"
    path.write_bytes(data)
    try:
        inspect_dicom(path, max_pixels=MAX_PIXELS)
        upload_ok = True
    except RejectedFile:
        upload_ok = False
    try:
        read_dicom(path)
        deid_ok = True
    except DeidentificationError:
        deid_ok = False
    assert upload_ok == deid_ok == (cut == "whole")


@pytest.mark.parametrize("name", ["CT_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_any_cut_point_is_rejected_cleanly(tmp_path, name):
    """Cut a file at many points: each result is a clean rejection (or, for a cut after the last
    pixel byte, a working image), never another exception."""
    data = Path(corpus_file(name)).read_bytes()
    path = tmp_path / "cut.dcm"
    step = max(1, len(data) // 150)
    outcomes = {"rejected": 0, "rendered": 0}
    for cut in range(1, len(data), step):
        path.write_bytes(data[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if detect_kind(path) == "dicom":
                    inspect_dicom(path, max_pixels=MAX_PIXELS)
                    render_preview(path, "dicom")
                    outcomes["rendered"] += 1
                    continue
            except RejectedFile as exc:
                assert exc.reason
            outcomes["rejected"] += 1
    assert outcomes["rendered"] <= 1  # at most a cut exactly at the end of the pixel data


def test_missing_uids_are_reported_empty_for_the_caller_to_group(tmp_path):
    ds = pydicom.dcmread(corpus_file("CT_small.dcm"))
    del ds.SeriesInstanceUID
    path = tmp_path / "nouid.dcm"
    ds.save_as(path)
    info = inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert info.series_instance_uid == ""
    assert info.study_instance_uid == ds.StudyInstanceUID


def test_undecodable_transfer_syntax_is_named(tmp_path):
    ds = pydicom.dcmread(corpus_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "mpeg.dcm"
    ds.save_as(path)
    with pytest.raises(RejectedFile) as exc:
        inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert "MPEG2 Main Profile / Main Level" in exc.value.reason


def test_undecodable_pixel_data_is_rejected(tmp_path):
    ds = pydicom.dcmread(corpus_file("JPEG2000.dcm"))
    frame = b"\xff\x4f\xff\x51" + b"garbage, not a codestream" * 4
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "bad_j2k.dcm"
    ds.save_as(path)
    with pytest.raises(RejectedFile) as exc:
        inspect_dicom(path, max_pixels=MAX_PIXELS)
    assert "could not be decoded" in exc.value.reason


# ----------------------------------------------------------------------------------------------
# DICOM preview semantics, on synthetic data sets
# ----------------------------------------------------------------------------------------------


def write_dicom(tmp_path: Path, pixels: np.ndarray, *, photometric="MONOCHROME2", bits_stored=16, **attrs) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.set_pixel_data(pixels, photometric, bits_stored)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    path = tmp_path / f"{generate_uid()}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def preview_array(path: Path, **kwargs) -> np.ndarray:
    return np.asarray(render_preview(path, "dicom", **kwargs))


RAMP = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)


def test_monochrome1_is_the_inverse_of_monochrome2(tmp_path):
    mono2 = preview_array(write_dicom(tmp_path, RAMP, bits_stored=12))
    mono1 = preview_array(write_dicom(tmp_path, RAMP, photometric="MONOCHROME1", bits_stored=12))
    assert mono2.shape == mono1.shape == (16, 16)
    assert mono2[0, 0] < mono2[-1, -1]
    assert np.abs(mono1.astype(int) - (255 - mono2.astype(int))).max() <= 1


def test_window_from_header_is_honoured(tmp_path):
    pixels = np.full((4, 4), 1000, dtype=np.uint16)
    pixels[0, 0] = 800  # center - width/2: bottom of the window
    pixels[0, 1] = 1200  # center + width/2: top of the window
    pixels[0, 2] = 500  # below
    pixels[0, 3] = 3000  # above
    out = preview_array(write_dicom(tmp_path, pixels, bits_stored=12, WindowCenter=1000, WindowWidth=400))
    assert out[0, 0] == 0
    assert out[0, 1] == 255
    assert out[0, 2] == 0
    assert out[0, 3] == 255
    assert 120 <= out[1, 1] <= 135  # the centre is mid grey


def test_first_of_several_windows_is_used(tmp_path):
    pixels = np.array([[800, 1200], [0, 4000]], dtype=np.uint16)
    out = preview_array(write_dicom(tmp_path, pixels, bits_stored=12, WindowCenter=[1000, 40], WindowWidth=[400, 80]))
    assert out[0, 0] == 0 and out[0, 1] == 255


def test_rescale_is_applied_before_the_window(tmp_path):
    # Modality value = 2 * stored - 1000; the window (1000 +- 200) is in modality units.
    pixels = np.array([[900, 1100], [1000, 1050]], dtype=np.uint16)
    out = preview_array(
        write_dicom(
            tmp_path,
            pixels,
            bits_stored=12,
            RescaleSlope=2,
            RescaleIntercept=-1000,
            WindowCenter=1000,
            WindowWidth=400,
        )
    )
    assert out[0, 0] == 0  # 900 -> 800
    assert out[0, 1] == 255  # 1100 -> 1200
    assert 120 <= out[1, 0] <= 135  # 1000 -> 1000, the centre


def test_auto_window_ignores_outliers(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(1000, 2000, size=(64, 64), dtype=np.uint16)
    pixels[0, 0] = 4095  # one hot pixel must not squash the image into black
    out = preview_array(write_dicom(tmp_path, pixels, bits_stored=12))
    assert out[0, 0] == 255
    assert 90 <= out[1:, :].mean() <= 165


def test_signed_pixels_render(tmp_path):
    pixels = np.linspace(-1000, 1000, 64, dtype=np.int16).reshape(8, 8)
    out = preview_array(write_dicom(tmp_path, pixels, bits_stored=16))
    assert out[0, 0] == 0 and out[-1, -1] == 255


@pytest.mark.parametrize("value", [0, 7, 4095])
def test_flat_image_does_not_crash(tmp_path, value):
    pixels = np.full((8, 8), value, dtype=np.uint16)
    out = preview_array(write_dicom(tmp_path, pixels, bits_stored=12))
    assert out.dtype == np.uint8
    assert len(np.unique(out)) == 1


def test_flat_image_with_rescale_and_zero_width_window(tmp_path):
    pixels = np.full((8, 8), 3, dtype=np.uint16)
    out = preview_array(
        write_dicom(tmp_path, pixels, bits_stored=12, RescaleSlope=1, RescaleIntercept=0, WindowCenter=3, WindowWidth=0)
    )
    assert len(np.unique(out)) == 1


def test_frame_selection(tmp_path):
    frames = np.stack([np.zeros((8, 8), np.uint8), np.full((8, 8), 200, np.uint8)])
    frames[0, 0, 0] = 200
    frames[1, 0, 0] = 0
    path = write_dicom(tmp_path, frames, bits_stored=8, WindowCenter=100, WindowWidth=200)
    assert inspect_dicom(path, max_pixels=MAX_PIXELS).frames == 2
    first, second = preview_array(path, frame=0), preview_array(path, frame=1)
    assert first[1, 1] < 10 and second[1, 1] > 245
    with pytest.raises(RejectedFile):
        render_preview(path, "dicom", frame=2)


def test_preview_is_downscaled_keeping_aspect(tmp_path):
    pixels = np.tile(np.arange(300, dtype=np.uint16), (100, 1))
    image = render_preview(write_dicom(tmp_path, pixels, bits_stored=12), "dicom", max_size=150)
    assert image.size == (150, 50)
    assert image.mode == "L"


def test_palette_and_multiframe_rgb_from_corpus():
    image = render_preview(corpus_file("examples_palette.dcm"), "dicom", max_size=64)
    assert image.mode == "RGB" and max(image.size) == 64
    # In this file the second frame is the colour inverse of the first.
    first = render_preview(corpus_file("SC_rgb_2frame.dcm"), "dicom", frame=0)
    second = render_preview(corpus_file("SC_rgb_2frame.dcm"), "dicom", frame=1)
    assert first.mode == second.mode == "RGB"
    assert first.getpixel((50, 5)) == (255, 0, 0)
    assert second.getpixel((50, 5)) == (0, 255, 255)


# ----------------------------------------------------------------------------------------------
# detect_kind
# ----------------------------------------------------------------------------------------------


def test_detect_kind_by_content_not_extension(tmp_path):
    png = tmp_path / "image.dcm"
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    jpeg = tmp_path / "image.png"
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    archive = tmp_path / "archive.jpg"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "hello")
    dicom = tmp_path / "noextension"
    dicom.write_bytes(Path(corpus_file("CT_small.dcm")).read_bytes())
    assert detect_kind(png) == "png"
    assert detect_kind(jpeg) == "jpeg"
    assert detect_kind(archive) == "zip"
    assert detect_kind(dicom) == "dicom"


def test_detect_kind_rejects_empty_and_unknown(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(RejectedFile) as exc:
        detect_kind(empty)
    assert "empty" in exc.value.reason
    text = tmp_path / "notes.png"
    text.write_text("Patient DOE^JOHN said hello\n" * 20)
    with pytest.raises(RejectedFile) as exc:
        detect_kind(text)
    assert exc.value.reason == "The file is not a DICOM, PNG, JPEG or ZIP file."
    assert "DOE" not in exc.value.reason and "notes" not in exc.value.reason


# ----------------------------------------------------------------------------------------------
# PNG / JPEG
# ----------------------------------------------------------------------------------------------


def test_good_png_and_jpeg(tmp_path):
    png = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(png)
    jpeg = tmp_path / "b.jpg"
    Image.new("L", (2000, 1000), 128).save(jpeg, quality=90)

    assert inspect_raster(png, max_pixels=MAX_PIXELS) == RasterInfo(format="png", width=300, height=200, mode="RGB")
    assert inspect_raster(jpeg, max_pixels=MAX_PIXELS) == RasterInfo(format="jpeg", width=2000, height=1000, mode="L")

    preview = render_preview(png, "png")
    assert preview.mode == "RGB" and preview.size == (300, 200)
    assert preview.getpixel((5, 5)) == (10, 200, 30)
    preview = render_preview(jpeg, "jpeg", max_size=1024)
    assert preview.mode == "L" and preview.size == (1024, 512)


def test_raster_too_large_for_limit(tmp_path):
    png = tmp_path / "a.png"
    Image.new("L", (100, 100)).save(png)
    with pytest.raises(RejectedFile) as exc:
        inspect_raster(png, max_pixels=9_999)
    assert "too large" in exc.value.reason


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes that declares width x height 1-bit pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = zlib.compress(row * 4, 9)  # only a few rows: the decoder never gets that far
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@pytest.mark.parametrize("pillow_limit", ["default", "disabled"])
def test_png_decompression_bomb_is_rejected_fast(tmp_path, monkeypatch, pillow_limit):
    if pillow_limit == "disabled":
        # Our own limit must hold even if the process switched Pillow's guard off.
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb(50_000, 50_000))
    assert bomb.stat().st_size < 10_000
    assert detect_kind(bomb) == "png"
    with pytest.raises(RejectedFile) as exc:
        inspect_raster(bomb, max_pixels=MAX_PIXELS)
    assert "too large" in exc.value.reason
    with pytest.raises(RejectedFile):
        render_preview(bomb, "png", max_pixels=MAX_PIXELS)


def test_truncated_png_and_jpeg(tmp_path):
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        noise.save(buf, format=fmt)
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(RejectedFile) as exc:
            inspect_raster(path, max_pixels=MAX_PIXELS)
        assert "damaged or incomplete" in exc.value.reason


def test_text_file_named_png(tmp_path):
    path = tmp_path / "scan.png"
    path.write_text("this is not an image")
    with pytest.raises(RejectedFile):
        detect_kind(path)
    with pytest.raises(RejectedFile) as exc:
        inspect_raster(path, max_pixels=MAX_PIXELS)
    assert "not a valid PNG or JPEG" in exc.value.reason


def test_jpeg_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    image.paste((0, 0, 255), (100, 0, 200, 100))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)

    assert inspect_raster(path, max_pixels=MAX_PIXELS).width == 200  # stored size
    preview = render_preview(path, "jpeg")
    assert preview.size == (100, 200)
    top, bottom = preview.getpixel((50, 20)), preview.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # the stored left edge is now at the top
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize(
    "mode, fmt, expected",
    [
        ("I;16", "PNG", "L"),
        ("LA", "PNG", "L"),
        ("RGBA", "PNG", "RGB"),
        ("P", "PNG", "RGB"),
        ("1", "PNG", "L"),
        ("CMYK", "JPEG", "RGB"),
    ],
)
def test_raster_modes_become_l_or_rgb(tmp_path, mode, fmt, expected):
    if mode == "I;16":
        image = Image.fromarray(np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16))
        assert image.mode.startswith("I")
    else:
        image = Image.new(mode, (16, 16))
    path = tmp_path / f"x.{fmt.lower()}"
    image.save(path, format=fmt)
    inspect_raster(path, max_pixels=MAX_PIXELS)
    preview = render_preview(path, fmt.lower())
    assert preview.mode == expected
    if mode == "I;16":
        arr = np.asarray(preview)
        assert arr[0, 0] == 0 and arr[-1, -1] == 255  # 12-bit data stretched, not left near-black


# ----------------------------------------------------------------------------------------------
# ZIP
# ----------------------------------------------------------------------------------------------

LIMITS = dict(max_members=100, max_total_size=200 * 1024 * 1024, max_ratio=100, max_file_size=100 * 1024 * 1024)


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def extract(tmp_path: Path, archive: Path, **limits):
    dest = tmp_path / "out"
    result = safe_extract_zip(archive, dest, **{**LIMITS, **limits})
    return result, dest


def test_normal_zip_is_extracted_under_random_names(tmp_path):
    ct = Path(corpus_file("CT_small.dcm")).read_bytes()
    archive = make_zip(tmp_path / "study.zip", {"DOE^JOHN/IM0001.dcm": ct, "DOE^JOHN/IM0002.dcm": b"second"})
    result, dest = extract(tmp_path, archive)
    assert [type(m) for m in result] == [ExtractedMember, ExtractedMember]
    assert [m.name for m in result] == ["DOE^JOHN/IM0001.dcm", "DOE^JOHN/IM0002.dcm"]
    assert result[0].path.read_bytes() == ct
    assert result[1].path.read_bytes() == b"second"
    on_disk = sorted(p.name for p in dest.rglob("*"))
    assert on_disk == sorted(m.path.name for m in result)
    for name in on_disk:
        assert re.fullmatch(r"[0-9a-f]{32}", name)
        assert "DOE" not in name and "IM0001" not in name
    assert all(m.path.parent == dest for m in result)
    assert detect_kind(result[0].path) == "dicom"


def test_os_clutter_and_directories_are_skipped_silently(tmp_path):
    archive = tmp_path / "mac.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("study/", b"")
        zf.writestr("study/a.dcm", b"a")
        zf.writestr("__MACOSX/study/._a.dcm", b"resource fork")
        zf.writestr("study/.DS_Store", b"finder")
        zf.writestr(".hidden", b"x")
        zf.writestr("study/Thumbs.db", b"x")
    result, _ = extract(tmp_path, archive)
    assert [(type(m), m.name) for m in result] == [(ExtractedMember, "study/a.dcm")]


def test_traversal_absolute_and_symlink_members_are_rejected(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../etc/evil.dcm", b"x")
        zf.writestr("/etc/passwd", b"x")
        zf.writestr("C:/Windows/evil.dcm", b"x")
        link = zipfile.ZipInfo("link.dcm")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/shadow")
        zf.writestr("ok.dcm", b"fine")
    result, dest = extract(tmp_path, archive)
    by_name = {m.name: m for m in result}
    assert isinstance(by_name["../../etc/evil.dcm"], RejectedMember)
    assert "outside" in by_name["../../etc/evil.dcm"].reason
    assert isinstance(by_name["/etc/passwd"], RejectedMember)
    assert isinstance(by_name["C:/Windows/evil.dcm"], RejectedMember)
    assert isinstance(by_name["link.dcm"], RejectedMember)
    assert "Links" in by_name["link.dcm"].reason
    assert isinstance(by_name["ok.dcm"], ExtractedMember)
    assert len(list(dest.iterdir())) == 1
    assert not (tmp_path / "etc").exists()
    for m in result:
        if isinstance(m, RejectedMember):
            assert m.name not in m.reason


def test_nested_zip_is_rejected(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"a.dcm": b"a"}).read_bytes()
    archive = make_zip(tmp_path / "outer.zip", {"series.dat": inner, "b.dcm": b"b"})
    result, dest = extract(tmp_path, archive)
    assert isinstance(result[0], RejectedMember)
    assert result[0].reason == "Zip files inside zip files are not accepted."
    assert isinstance(result[1], ExtractedMember)
    assert len(list(dest.iterdir())) == 1


def test_zip_bomb_by_ratio_is_rejected(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.dcm": b"\0" * (50 * 1024 * 1024)})
    assert archive.stat().st_size < 200_000
    with pytest.raises(RejectedFile) as exc:
        extract(tmp_path, archive)
    assert "zip bomb" in exc.value.reason
    assert not any((tmp_path / "out").iterdir())


def test_single_member_bomb_is_rejected(tmp_path):
    noise = np.random.default_rng(2).bytes(3 * 1024 * 1024)
    archive = make_zip(tmp_path / "mixed.zip", {"noise.dcm": noise, "zeros.dcm": b"\0" * (20 * 1024 * 1024)})
    result, _ = extract(tmp_path, archive)  # overall ratio is about 8: fine
    assert isinstance(result[0], ExtractedMember)
    assert isinstance(result[1], RejectedMember) and "compressed suspiciously well" in result[1].reason


def test_small_highly_compressible_members_are_fine(tmp_path):
    archive = make_zip(tmp_path / "small.zip", {"blank.dcm": b"\0" * 100_000})
    result, _ = extract(tmp_path, archive)
    assert isinstance(result[0], ExtractedMember)


def test_too_many_members(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.dcm": b"x" for i in range(11)})
    with pytest.raises(RejectedFile) as exc:
        extract(tmp_path, archive, max_members=10)
    assert "more than 10 files" in exc.value.reason
    result, _ = extract(tmp_path, archive, max_members=11)
    assert len(result) == 11


def test_declared_total_too_large(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"a.dcm": b"x" * 6000, "b.dcm": b"y" * 6000}, zipfile.ZIP_STORED)
    with pytest.raises(RejectedFile) as exc:
        extract(tmp_path, archive, max_total_size=10_000)
    assert "too large" in exc.value.reason


def test_member_over_file_size_limit(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"big.dcm": b"x" * 5000, "small.dcm": b"y"})
    result, _ = extract(tmp_path, archive, max_file_size=4999)
    assert isinstance(result[0], RejectedMember) and "too large" in result[0].reason
    assert isinstance(result[1], ExtractedMember)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-ish"])
def test_corrupt_zip_is_rejected(tmp_path, damage):
    good = make_zip(tmp_path / "good.zip", {"a.dcm": b"a" * 1000, "b.dcm": b"b" * 1000}).read_bytes()
    data = {
        "garbage": b"PK\x03\x04" + os.urandom(500),
        "truncated": good[: len(good) - 30],  # cuts the end-of-central-directory record
        "empty-ish": b"PK\x03\x04",
    }[damage]
    path = tmp_path / "bad.zip"
    path.write_bytes(data)
    with pytest.raises(RejectedFile) as exc:
        extract(tmp_path, path)
    assert "ZIP" in exc.value.reason


def _patch_central_directory(data: bytes, offset_in_entry: int, fmt: str, value: int) -> bytes:
    data = bytearray(data)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        struct.pack_into(fmt, data, pos + offset_in_entry, value)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


def test_encrypted_zip_is_rejected(tmp_path):
    data = make_zip(tmp_path / "plain.zip", {"a.dcm": b"secret"}).read_bytes()
    path = tmp_path / "encrypted.zip"
    path.write_bytes(_patch_central_directory(data, 8, "<H", 0x1))  # general purpose flag: encrypted
    with pytest.raises(RejectedFile) as exc:
        extract(tmp_path, path)
    assert "encrypted" in exc.value.reason


def test_member_larger_than_declared_is_not_extracted(tmp_path):
    payload = os.urandom(5000)
    data = make_zip(tmp_path / "plain.zip", {"a.dcm": payload}).read_bytes()
    path = tmp_path / "liar.zip"
    path.write_bytes(_patch_central_directory(data, 24, "<I", 100))  # uncompressed size: 100 bytes
    result, dest = extract(tmp_path, path)
    assert isinstance(result[0], RejectedMember)
    assert not any(dest.iterdir())
