"""Burned-in text: the hold decision and the pixel mask."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from clinic_ai.deid import (
    DeidOptions,
    apply_pixel_mask,
    burned_in_text_reason,
    decode_frames,
    deidentify_dataset,
    dicom_to_bytes,
    read_dicom,
    validate_released,
)

from . import corpus as C
from .corpus import UID_SECRET


def _released(name: str) -> Dataset:
    cf = C.build_file(name)
    src = read_dicom(cf.data)
    return deidentify_dataset(
        src, options=DeidOptions(), uid_secret=UID_SECRET, patient_pseudonym="ANON-PIXELS", date_shift_days=-500
    ).dataset


def _reread(ds: Dataset) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(io.BytesIO(dicom_to_bytes(ds)))


# ------------------------------------------------------------------ reason
def test_reason_for_ultrasound() -> None:
    reason = burned_in_text_reason(_released("us_j2k"))
    assert reason is not None and "US" in reason


def test_reason_for_secondary_capture_class_and_modality() -> None:
    ds = _released("sc_jpeg")  # Modality OT, Secondary Capture Image Storage
    assert burned_in_text_reason(ds) is not None
    ds = Dataset()
    ds.Modality = "MR"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    reason = burned_in_text_reason(ds)
    assert reason == "SOP class Secondary Capture Image Storage commonly carries burned-in text"
    ds.Modality = "SC"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    assert "SC" in (burned_in_text_reason(ds) or "")


def test_reason_for_burned_in_annotation_yes() -> None:
    ds = _released("ct")
    assert burned_in_text_reason(ds) is None  # CT without the flag: not held
    ds.BurnedInAnnotation = "YES"
    assert burned_in_text_reason(ds) == "BurnedInAnnotation is YES"


@pytest.mark.parametrize(
    ("modality", "sop_class", "flag"),
    [
        ("US", "1.2.3.55501234", "Jane Doe"),  # a held modality; garbage elsewhere
        ("Jane Doe", "1.2.840.10008.5.1.4.1.1.7", ""),  # a screen capture class; garbage in Modality
        ("Jane Doe", "1.2.3.55501234", "YES"),  # the flag; garbage in both
    ],
)
def test_reason_contains_no_phi(modality: str, sop_class: str, flag: str) -> None:
    ds = Dataset()
    ds.Modality, ds.SOPClassUID, ds.BurnedInAnnotation = modality, sop_class, flag
    reason = burned_in_text_reason(ds)
    assert reason  # every case is held...
    assert "jane" not in reason.lower() and "55501234" not in reason  # ...for a reason that quotes no value


# ------------------------------------------------------------------ mask
def test_mask_fills_box_on_every_frame_and_leaves_the_rest() -> None:
    ds = _released("rle_multiframe")  # 10 frames, RLE compressed, MONOCHROME2
    before, photometric = decode_frames(ds)
    assert before.shape[0] == 10 and photometric == "MONOCHROME2"
    box = (5, 10, 30, 20)
    masked = _reread(apply_pixel_mask(ds, [box]))
    assert masked.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert masked.BurnedInAnnotation == "NO"
    after, _ = decode_frames(masked)
    assert after.shape == before.shape
    fill = before.min()
    x0, y0, x1, y1 = box
    assert (after[:, y0:y1, x0:x1] == fill).all()
    outside = np.ones(before.shape, dtype=bool)
    outside[:, y0:y1, x0:x1] = False
    assert np.array_equal(after[outside], before[outside])
    assert (before[:, y0:y1, x0:x1] != fill).any()  # the box had content to remove
    assert masked.SOPInstanceUID == ds.SOPInstanceUID
    codes = {i.CodeValue for i in masked.DeidentificationMethodCodeSequence}
    assert "113101" in codes
    assert burned_in_text_reason(masked) is None
    validate_released(dicom_to_bytes(masked), expected_pseudonym="ANON-PIXELS")


def test_mask_colour_multiframe_native() -> None:
    src = read_dicom(C.to_bytes(C.load_source("SC_rgb_2frame.dcm")))
    before, photometric = decode_frames(src)
    assert before.shape == (2, 100, 100, 3) and photometric == "RGB"
    masked = apply_pixel_mask(src, [(0, 0, 10, 10), (90, 95, 200, 200)])  # second box clipped
    after, _ = decode_frames(_reread(masked))
    assert (after[:, 0:10, 0:10, :] == 0).all() and (after[:, 95:100, 90:100, :] == 0).all()
    assert np.array_equal(after[:, 20:80, 20:80, :], before[:, 20:80, 20:80, :])


@pytest.mark.parametrize("name", ["us_j2k", "sc_jpeg"])
def test_mask_decodes_ybr_to_rgb_and_reencodes_natively(name: str) -> None:
    ds = _released(name)
    assert ds.PhotometricInterpretation.startswith("YBR")
    before, _ = decode_frames(ds)
    x0, y0 = int(ds.Columns) // 4, int(ds.Rows) // 4
    x1, y1 = x0 + 20, y0 + 8
    assert before[0, y0:y1, x0:x1, :].any()  # the box covers pixels that are not black already
    masked = _reread(apply_pixel_mask(ds, [(x0, y0, x1, y1)]))
    assert masked.PhotometricInterpretation == "RGB"
    assert not masked.file_meta.TransferSyntaxUID.is_compressed
    assert masked.BurnedInAnnotation == "NO"
    after, _ = decode_frames(masked)
    assert (after[0, y0:y1, x0:x1, :] == 0).all()
    assert np.array_equal(after[0, y1:, :, :], before[0, y1:, :, :])


def test_mask_without_boxes_only_sets_markers() -> None:
    ds = _released("us_j2k")
    masked = apply_pixel_mask(ds, [])
    assert masked.PixelData == ds.PixelData and masked.file_meta.TransferSyntaxUID.is_compressed
    assert masked.BurnedInAnnotation == "NO" and burned_in_text_reason(masked) is None


def test_mask_does_not_modify_its_input() -> None:
    ds = _released("ct")
    before = dicom_to_bytes(ds)
    apply_pixel_mask(ds, [(0, 0, 5, 5)])
    assert dicom_to_bytes(ds) == before


@pytest.mark.parametrize("box", [(5, 5, 5, 10), (-1, 0, 3, 3), (0, 0, 1.5, 2), (500, 500, 600, 600), (0, 0, 1)])
def test_mask_rejects_bad_boxes(box) -> None:
    with pytest.raises(ValueError):
        apply_pixel_mask(_released("ct"), [box])
