"""imaging.frame_pixels: the values the viewer windows itself, pure (no database)."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from clinic_ai.studies.imaging import RejectedFile, frame_pixels


def _ct(tmp_path, pixels: np.ndarray, bits: int, **attrs) -> str:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if bits <= 16:
        ds.set_pixel_data(pixels, "MONOCHROME2", bits, generate_instance_uid=False)
    else:  # pydicom writes 8 and 16 bits only
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = int(pixels.dtype.kind == "i")
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    return str(path)


def test_stored_values_come_with_their_rescale_and_header_windows(tmp_path):
    stored = (np.arange(64 * 64, dtype=np.int16).reshape(64, 64) - 2000).astype(np.int16)
    path = _ct(
        tmp_path, stored, 16, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=[40, -600], WindowWidth=[400, 1500]
    )
    frame = frame_pixels(path, "dicom")
    assert frame.values.dtype == np.int16 and np.array_equal(frame.values, stored)
    assert (frame.slope, frame.intercept, frame.rescaled) == (2.0, -1024.0, False)
    assert frame.windows == ((40.0, 400.0), (-600.0, 1500.0))
    assert (frame.photometric, frame.modality, frame.frames) == ("MONOCHROME2", "CT", 1)


def test_values_wider_than_16_bits_are_sent_as_rescaled_float32(tmp_path):
    stored = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 70_000).astype(np.uint32)
    path = _ct(tmp_path, stored, 32, RescaleSlope=1, RescaleIntercept=-10)
    frame = frame_pixels(path, "dicom")
    assert frame.values.dtype == np.float32 and frame.rescaled
    assert np.array_equal(frame.values, (stored.astype(np.float64) - 10).astype(np.float32))
    assert (frame.slope, frame.intercept) == (1.0, 0.0)


def test_monochrome1_and_colour_are_labelled(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    assert frame_pixels(tmp_path / "m1.dcm", "dicom").photometric == "MONOCHROME1"
    rgb = frame_pixels(get_testdata_file("US1_UNCR.dcm"), "dicom")
    assert (rgb.photometric, rgb.values.dtype, rgb.values.shape) == ("RGB", np.uint8, (480, 640, 3))


def test_a_frame_past_the_last_or_an_image_over_the_limit_is_refused():
    path = get_testdata_file("emri_small.dcm")
    assert frame_pixels(path, "dicom", frame=9).frames == 10
    with pytest.raises(RejectedFile):
        frame_pixels(path, "dicom", frame=10)
    with pytest.raises(RejectedFile):
        frame_pixels(path, "dicom", frame=0, max_pixels=64 * 64 * 10 - 1)  # frames x rows x columns
