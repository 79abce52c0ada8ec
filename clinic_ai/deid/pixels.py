"""Burned-in text: the hold decision and the pixel mask.

Flow: :func:`burned_in_text_reason` says whether a (de-identified) image
must be held for masking. Boxes come from a reviewer today and from an OCR
detector later (the :class:`TextRegionDetector` seam: it receives the frames
from :func:`decode_frames`). :func:`apply_pixel_mask` fills the boxes on
every frame, re-encodes natively (Explicit VR Little Endian), sets
BurnedInAnnotation = NO and records the Clean Pixel Data Option (113101),
which makes :func:`burned_in_text_reason` return ``None`` afterwards.

The masked object keeps its SOPInstanceUID: the unmasked de-identified
version is held, never released, so the UID stays unique among released
objects and references from other instances stay valid.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence as SequenceABC
from typing import Protocol

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from .errors import PixelMaskError
from .options import CODE_CLEAN_PIXEL_DATA

__all__ = [
    "Box",
    "TextRegionDetector",
    "burned_in_text_reason",
    "decode_frames",
    "apply_pixel_mask",
    "HIGH_RISK_MODALITIES",
    "SCREEN_CAPTURE_SOP_CLASSES",
]

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels: columns ``x0 <= x < x1``, rows ``y0 <= y < y1``."""

HIGH_RISK_MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES"})
"""Modalities whose images routinely carry burned-in text (ultrasound
annotations, screenshots, photographs, endoscopy overlays)."""

SCREEN_CAPTURE_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
        "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
        "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume Storage
        "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.1",  # VL Endoscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.4.1",  # Video Photographic Image Storage
    }
)

_SETTABLE_PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422"}


class TextRegionDetector(Protocol):
    """Seam for OCR: boxes of burned-in text in decoded frames.

    ``frames`` has shape (frames, rows, columns[, samples]); the boxes apply
    to every frame (ultrasound/screen text is static). Must not log pixels.
    """

    def __call__(self, frames: np.ndarray, photometric_interpretation: str) -> list[Box]: ...


def _str(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip(" \x00").upper()


def _pixels_cleaned(ds: Dataset) -> bool:
    for item in ds.get("DeidentificationMethodCodeSequence", None) or []:
        if str(item.get("CodeValue", "")).strip() == CODE_CLEAN_PIXEL_DATA[0]:
            return str(item.get("CodingSchemeDesignator", "")).strip() == "DCM"
    return False


def burned_in_text_reason(ds: Dataset) -> str | None:
    """Why ``ds`` must be held for pixel masking, or ``None``.

    The reason is fixed text (plus a modality code or a registry SOP class
    name), never a value from the dataset that could be PHI. An object whose
    pixels were already cleaned by :func:`apply_pixel_mask` returns ``None``.
    """
    burned_in = _str(ds, "BurnedInAnnotation")
    if burned_in == "NO" and _pixels_cleaned(ds):  # (the sequence is read only when it can matter)
        return None
    if burned_in == "YES":
        return "BurnedInAnnotation is YES"
    modality = _str(ds, "Modality")
    if modality in HIGH_RISK_MODALITIES:
        return f"modality {modality} images commonly carry burned-in text"
    sop_class = str(ds.get("SOPClassUID", "") or "").strip(" \x00")
    if sop_class in SCREEN_CAPTURE_SOP_CLASSES:
        return f"SOP class {UID(sop_class).name} commonly carries burned-in text"
    return None


def decode_frames(ds: Dataset) -> tuple[np.ndarray, str]:
    """Decode all frames: array shaped (frames, rows, columns[, samples]) and its
    photometric interpretation (YCbCr data is converted to RGB)."""
    if "PixelData" not in ds:
        raise PixelMaskError("no (integer) pixel data to decode")
    try:
        ts = ds.file_meta.TransferSyntaxUID
        arr, meta = get_decoder(ts).as_array(ds)
    except Exception as exc:
        raise PixelMaskError("pixel data could not be decoded", detail=type(exc).__name__) from None
    frames = int(meta.get("number_of_frames", 1) or 1)
    samples = int(meta.get("samples_per_pixel", 1) or 1)
    if frames == 1 and arr.ndim == (3 if samples > 1 else 2):
        arr = arr[np.newaxis, ...]
    return arr, str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))


def _checked_boxes(boxes: SequenceABC[Box], rows: int, cols: int) -> list[Box]:
    checked: list[Box] = []
    for box in boxes:
        if len(box) != 4 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in box):
            raise ValueError("each box must be four integers (x0, y0, x1, y1)")
        x0, y0, x1, y1 = (int(v) for v in box)
        if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
            raise ValueError("boxes need 0 <= x0 < x1 and 0 <= y0 < y1")
        x1, y1 = min(x1, cols), min(y1, rows)
        if x0 >= cols or y0 >= rows:
            raise ValueError("box lies outside the image")
        checked.append((x0, y0, x1, y1))
    return checked


def _fill_value(arr: np.ndarray, photometric: str) -> int:
    if photometric == "MONOCHROME1":
        return int(arr.max())  # MONOCHROME1: the maximum displays as black
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        return 0
    return int(arr.min())  # MONOCHROME2 (and palette indices): the darkest stored value


def _record_clean_pixels(out: Dataset) -> None:
    out.BurnedInAnnotation = "NO"
    if str(out.get("PatientIdentityRemoved", "")).strip().upper() != "YES" or _pixels_cleaned(out):
        return
    code, meaning = CODE_CLEAN_PIXEL_DATA
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    seq = list(out.get("DeidentificationMethodCodeSequence", None) or [])
    out.DeidentificationMethodCodeSequence = Sequence([*seq, item])
    methods = out.get("DeidentificationMethod", None)
    current = [] if methods is None else ([methods] if isinstance(methods, str) else list(methods))
    out.DeidentificationMethod = [*current, meaning]


def apply_pixel_mask(ds: Dataset, boxes: SequenceABC[Box]) -> Dataset:
    """Return a copy of ``ds`` with ``boxes`` filled on every frame.

    The fill is black: the minimum stored value for MONOCHROME2 (the image
    minimum, so windowing and model normalisation are not disturbed), the
    maximum for MONOCHROME1, 0 for RGB. The pixel data is re-encoded
    uncompressed, the transfer syntax becomes Explicit VR Little Endian, the
    photometric interpretation follows the decoder (YBR_* -> RGB), and
    BurnedInAnnotation becomes NO. With no boxes (a reviewer found no text)
    the pixels are left untouched and only the markers are set.
    """
    out = copy.deepcopy(ds)
    if boxes:
        rows, cols = int(ds.Rows), int(ds.Columns)
        checked = _checked_boxes(boxes, rows, cols)
        arr, photometric = decode_frames(ds)
        if photometric not in _SETTABLE_PHOTOMETRIC:
            raise PixelMaskError("cannot re-encode this photometric interpretation")
        if arr.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
            raise PixelMaskError(f"cannot re-encode pixel data of type {arr.dtype}")
        if not arr.flags.writeable:
            arr = arr.copy()
        fill = _fill_value(arr, photometric)
        colour = arr.ndim == 4
        for x0, y0, x1, y1 in checked:
            if colour:
                arr[:, y0:y1, x0:x1, :] = fill
            else:
                arr[:, y0:y1, x0:x1] = fill
        frames = arr if arr.shape[0] > 1 else arr[0]
        bits_stored = int(ds.get("BitsStored", arr.dtype.itemsize * 8))
        try:
            for tag in (0x7FE00001, 0x7FE00002):  # extended offset table (encapsulated only)
                if tag in out:
                    del out[tag]
            out.set_pixel_data(frames, photometric, bits_stored, generate_instance_uid=False)
        except Exception as exc:
            raise PixelMaskError("pixel data could not be re-encoded", detail=type(exc).__name__) from None
        out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if frames.ndim == (4 if colour else 3):
            out.NumberOfFrames = frames.shape[0]
    _record_clean_pixels(out)
    return out
