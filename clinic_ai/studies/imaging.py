"""Validation, inspection and preview rendering of uploaded medical images.

Everything here is pure: no Django, no settings. Limits are passed in by the caller so the same code
serves the upload view, the background tasks and the tests.

Two rules run through the whole module:

* Uploaded bytes are hostile until proven otherwise. Every size is checked against a limit before the
  work it implies is done (pixel counts before decoding, declared zip sizes before extracting, and
  real byte counts while extracting, because declared sizes can lie).
* Error messages are shown to clinicians and may end up in logs, so a ``RejectedFile.reason`` never
  quotes anything taken from the file: no file names, no header values. Library exceptions are
  chained (``raise ... from exc``) for debugging but never copied into the reason.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import stat
import struct
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageOps, UnidentifiedImageError
from pydicom.datadict import dictionary_description
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    get_decoder,
    pixel_array,
)
from pydicom.pixels.utils import get_expected_length, get_nr_frames
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from clinic_ai.deid.dicomio import truncation

StrPath = str | os.PathLike[str]

__all__ = [
    "DicomInfo",
    "ExtractedMember",
    "RasterInfo",
    "RejectedFile",
    "RejectedMember",
    "FramePixels",
    "VoiLut",
    "detect_kind",
    "display_pixels",
    "frame_pixels",
    "frame_voi_lut",
    "inspect_dicom",
    "inspect_raster",
    "iter_frames",
    "render_preview",
    "safe_extract_zip",
]


class RejectedFile(Exception):
    """A file we refuse, with a reason a radiologist understands.

    The reason never contains patient data (no file names, no header values), so it can be shown to
    any user and written to any log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------------
# Kind detection
# --------------------------------------------------------------------------------------------------

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Local file header, end of central directory (an empty archive) and the spanned-archive marker.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# A DICOM data set written without the Part 10 header starts with a group 0002 or 0008 tag.
_HEADERLESS_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def detect_kind(path: StrPath) -> str:
    """Return ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"zip"`` judged by content, never by name."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as exc:
        raise RejectedFile("The file could not be read.") from exc

    if not head:
        raise RejectedFile("The file is empty.")
    if len(head) == 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    if head.startswith(_HEADERLESS_DICOM_STARTS):
        # Headerless data sets cannot be told apart from random bytes reliably and carry no transfer
        # syntax, so we ask for a proper export instead of guessing how to read them.
        raise RejectedFile(
            "The file looks like DICOM data without the standard DICOM file header (the 128-byte "
            "preamble and 'DICM' marker). Please export it as a standard DICOM file."
        )
    raise RejectedFile("The file is not a DICOM, PNG, JPEG or ZIP file.")


# --------------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------------

_PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
_UNDEFINED_LENGTH = 0xFFFFFFFF
# Elements larger than this are not read into memory when parsing the header; pixel data is then
# decoded frame by frame straight from the file.
_DEFER_SIZE = 256 * 1024
# Percentiles used to window images that carry no window of their own: ignores the few extreme
# pixels (metal, air, burnt-in text) that would otherwise squash the useful range.
_AUTO_WINDOW_PERCENTILES = (0.5, 99.5)
_AUTO_WINDOW_SAMPLE = 1_000_000
_METADATA_MAX_LEN = 64
_NO_LIMIT = 2**63

# Technical, non-identifying attributes that may be shown next to an image. Anything not listed here
# (names, IDs, dates, times, UIDs, descriptions, comments, institutions, physicians, operators,
# station names, serial numbers, ...) is never exposed.
_DISPLAY_KEYWORDS = (
    "Modality",
    "ImageType",
    "BodyPartExamined",
    "ViewPosition",
    "ImageLaterality",
    "Laterality",
    "PatientPosition",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "Manufacturer",
    "ManufacturerModelName",
    "KVP",
    "XRayTubeCurrent",
    "ExposureTime",
    "Exposure",
    "ConvolutionKernel",
    "MagneticFieldStrength",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "ScanningSequence",
    "SequenceVariant",
)


@dataclass(frozen=True)
class DicomInfo:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str
    study_date: datetime.date | None
    series_number: int | None
    rows: int
    columns: int
    frames: int
    photometric_interpretation: str
    transfer_syntax_uid: str
    transfer_syntax_name: str
    display_metadata: dict[str, str]


def inspect_dicom(path: StrPath, *, max_pixels: int) -> DicomInfo:
    """Validate a DICOM file and return what is needed to file and display it.

    The first frame is decoded to prove the image can be shown; other frames are not decoded.
    """
    ds, tsyntax = _read_dicom(path)
    try:
        rows, columns, frames = _image_geometry(ds, path, max_pixels=max_pixels)
        uids = _required_uids(ds)
        _decode_frame(path, ds, tsyntax, index=0)
        _merge_functional_groups(ds, frame=0)
        return DicomInfo(
            study_instance_uid=uids[0],
            series_instance_uid=uids[1],
            sop_instance_uid=uids[2],
            modality=_text(ds, "Modality"),
            study_date=_date(ds, "StudyDate"),
            series_number=_int_or_none(ds, "SeriesNumber"),
            rows=rows,
            columns=columns,
            frames=frames,
            photometric_interpretation=_text(ds, "PhotometricInterpretation"),
            transfer_syntax_uid=str(tsyntax),
            transfer_syntax_name=_uid_name(tsyntax) or "Unknown transfer syntax",
            display_metadata=_display_metadata(ds, tsyntax),
        )
    except RejectedFile:
        raise
    except Exception as exc:
        # Malformed values surface lazily as all sorts of exceptions; none of them are worth more to
        # the user than this, and their messages may quote header values.
        raise RejectedFile("The DICOM file is damaged: some of its header values cannot be read.") from exc


def _read_dicom(path: StrPath) -> tuple[Dataset, UID]:
    """Parse the header (pixel data deferred) and reject files that are not whole, readable images."""
    fspath = os.fspath(path)
    try:
        size = os.path.getsize(fspath)
        # force=False: a file that is not Part 10 DICOM must not be half-parsed into nonsense.
        ds = pydicom.dcmread(fspath, defer_size=_DEFER_SIZE)
        tsyntax = ds.file_meta.get("TransferSyntaxUID")
        if tsyntax == DeflatedExplicitVRLittleEndian:
            # Offsets in a deflated file point into the inflated stream, so deferred values could not
            # be read back from disk: load it whole (deflate is rare and used for small objects).
            ds = pydicom.dcmread(fspath)
    except InvalidDicomError as exc:
        raise RejectedFile("The file is not a valid DICOM file.") from exc
    except Exception as exc:
        raise RejectedFile("The DICOM file is damaged or incomplete and could not be read.") from exc

    try:
        if tsyntax != DeflatedExplicitVRLittleEndian:
            _check_not_truncated(ds, size)
        if len(ds) == 0:
            raise RejectedFile("The DICOM file is truncated or damaged: its contents could not be read to the end.")
        if not tsyntax:
            raise RejectedFile("The DICOM file header does not say how its data is encoded (no transfer syntax).")
        tsyntax = UID(str(tsyntax))
        _check_has_pixels(ds)
        _check_decoder(tsyntax)
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("The DICOM file is damaged: some of its header values cannot be read.") from exc
    return ds, tsyntax


def _check_not_truncated(ds: Dataset, size: int) -> None:
    """The de-identification library's truncation rule (one rule for every reader), in words."""
    cut = truncation(ds, size)
    if cut == "pixels":
        raise RejectedFile("The DICOM file is truncated: its pixel data is shorter than its header says.")
    if cut is not None:
        raise RejectedFile("The DICOM file is truncated: it ends in the middle of its header.")


def _check_has_pixels(ds: Dataset) -> None:
    if any(tag in ds for tag in _PIXEL_DATA_TAGS):
        return
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    name = _uid_name(sop_class) if sop_class else None
    # The SOP class name is a standard DICOM term (e.g. "RT Plan Storage"), never patient data.
    if name and "Image Storage" in name:
        raise RejectedFile(f"The DICOM file is incomplete: its type ({name}) is an image, but it has no pixel data.")
    if name:
        raise RejectedFile(f"The DICOM file contains no image (its type is {name}).")
    raise RejectedFile("The DICOM file contains no image.")


def _check_decoder(tsyntax: UID) -> None:
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        name = _uid_name(tsyntax)
        if name:
            raise RejectedFile(f"The image is encoded as '{name}', which this system cannot decode.")
        raise RejectedFile("The image uses an unrecognised encoding (transfer syntax) that this system cannot decode.")


def _image_geometry(ds: Dataset, path: StrPath, *, max_pixels: int) -> tuple[int, int, int]:
    """Check dimensions and that the pixel data is all there, before anything gets decoded."""
    for keyword in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation"):
        if ds.get(keyword) in (None, "", 0):
            raise RejectedFile(
                "The DICOM image header is incomplete: it does not fully describe the image "
                "(size, bit depth or colour format)."
            )
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = int(get_nr_frames(ds, warn=False))
    if frames < 1:
        raise RejectedFile("The DICOM image header has an invalid number of frames.")
    if rows * columns * frames > max_pixels:
        raise RejectedFile("The image is too large to be processed here.")

    tag = next(t for t in _PIXEL_DATA_TAGS if t in ds)
    elem = ds.get_item(tag, keep_deferred=True)
    if isinstance(elem, RawDataElement) and elem.length != _UNDEFINED_LENGTH:
        # Native (uncompressed) pixel data: its exact size follows from the header.
        available = len(elem.value) if elem.value is not None else elem.length
        if available < get_expected_length(ds):
            raise RejectedFile("The DICOM file is truncated: its pixel data is shorter than its header says.")
    elif isinstance(elem, RawDataElement) and elem.value is None:
        # Encapsulated (compressed) pixel data: each frame needs at least one fragment. Catches a file
        # cut cleanly between fragments, which would otherwise only fail when a later frame is shown.
        if _count_fragments(path, elem) < frames:
            raise RejectedFile("The DICOM file is truncated: some of its image frames are missing.")
    return rows, columns, frames


def _count_fragments(path: StrPath, elem: RawDataElement) -> int:
    endianness = "<" if elem.is_little_endian else ">"
    with open(path, "rb") as f:
        f.seek(elem.value_tell)
        parse_basic_offsets(f, endianness=endianness)
        nr_fragments, _ = parse_fragments(f, endianness=endianness)
    return nr_fragments


def _required_uids(ds: Dataset) -> tuple[str, str, str]:
    """Study, series and instance UIDs; empty where the file has none.

    Some exports (and some of pydicom's own test files) carry no UIDs. Such a file is still an
    image a radiologist may want: the caller files it with the other images of its upload, as
    for PNG and JPEG, rather than inventing UIDs that could merge it into a stranger's study.
    """
    return tuple(str(ds.get(k) or "").strip() for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))


def _decode_frame(path: StrPath, ds: Dataset, tsyntax: UID, *, index: int) -> np.ndarray:
    """Decode one frame only; from the file, so other frames are never loaded into memory."""
    name = _uid_name(tsyntax) or "its encoding"
    try:
        if tsyntax == DeflatedExplicitVRLittleEndian:
            arr = pixel_array(ds, index=index)
        else:
            try:
                arr = pixel_array(os.fspath(path), index=index)
            except Exception:
                # Reading from the file uses pydicom's minimal parser, which trips over some writer
                # quirks (e.g. a switch to implicit VR just before the pixel data) that the full
                # parser tolerates. Retry from the parsed data set, at the cost of loading all frames.
                arr = pixel_array(ds, index=index)
    except Exception as exc:
        raise RejectedFile(f"The image data ({name}) could not be decoded; the file may be damaged.") from exc
    if arr.size == 0:
        raise RejectedFile(f"The image data ({name}) could not be decoded; the file may be damaged.")
    return arr


def _merge_functional_groups(ds: Dataset, *, frame: int) -> None:
    """Copy an enhanced multi-frame object's per-frame rescale/window/spacing to the top level.

    Enhanced CT/MR/... keep these in functional group sequences, where pydicom's LUT functions do not
    look. Per-frame values win over shared ones.
    """
    groups = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    wanted = {
        "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
        "FrameVOILUTSequence": ("WindowCenter", "WindowWidth", "VOILUTFunction"),
        "PixelMeasuresSequence": ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"),
    }
    for group in groups:
        for sequence, keywords in wanted.items():
            items = group.get(sequence)
            if not items:
                continue
            for keyword in keywords:
                if keyword in items[0]:
                    ds[keyword] = items[0][keyword]


def _display_metadata(ds: Dataset, tsyntax: UID) -> dict[str, str]:
    out: dict[str, str] = {}
    sop_class = _uid_name(ds.get("SOPClassUID"))
    if sop_class:
        out["SOP Class"] = sop_class
    ts_name = _uid_name(tsyntax)
    if ts_name:
        out["Transfer Syntax"] = ts_name
    for keyword in _DISPLAY_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:
            continue  # an unreadable optional value is simply not shown
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple | MultiValue):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        text = text.strip()
        # Only plain text is shown: bytes that do not decode as such (an undefined length value
        # holding a whole dataset, say) are not a value to show, nor one to store.
        if text and text.isprintable() and not isinstance(value, bytes | bytearray):
            out[dictionary_description(keyword)] = text[:_METADATA_MAX_LEN]
    return out


def _uid_name(uid: Any) -> str | None:
    """The registered name of a standard UID, or None: an unknown UID is never echoed back."""
    if not uid:
        return None
    uid = UID(str(uid))
    name = uid.name
    return name if name and name != str(uid) else None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip() if value is not None else ""


def _date(ds: Dataset, keyword: str) -> datetime.date | None:
    raw = _text(ds, keyword)
    try:
        return datetime.datetime.strptime(raw[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _int_or_none(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# ---- Worklist fields of a released file ------------------------------------------------------------

_AGE_RE = re.compile(r"\d{3}[DWMY]")
_SEXES = ("M", "F", "O")


@dataclass(frozen=True)
class ReleasedFields:
    """What a worklist shows of a study, as the released file has it. An attribute the
    de-identification removed (age and sex without Retain Patient Characteristics, descriptions
    without Clean Descriptors) is an empty string here."""

    patient_pseudonym: str
    patient_age: str
    patient_sex: str
    body_part: str
    study_description: str
    series_description: str
    study_date: datetime.date | None


def released_fields(path: StrPath) -> ReleasedFields:
    """Read the worklist fields from a RELEASED, de-identified DICOM file (never an original: the
    pseudonym, not the patient ID, is what it carries). Values that are not what the attribute
    holds (an age that is not an age string, say) are left out rather than shown."""
    try:
        ds = pydicom.dcmread(os.fspath(path), stop_before_pixels=True)
        age = _text(ds, "PatientAge").upper()
        sex = _text(ds, "PatientSex").upper()
        return ReleasedFields(
            patient_pseudonym=_printable(_text(ds, "PatientID"), 64),
            patient_age=age if _AGE_RE.fullmatch(age) else "",
            patient_sex=sex if sex in _SEXES else "",
            body_part=_printable(_text(ds, "BodyPartExamined"), 64),
            study_description=_printable(_text(ds, "StudyDescription"), 128),
            series_description=_printable(_text(ds, "SeriesDescription"), 128),
            study_date=_date(ds, "StudyDate"),
        )
    except Exception as exc:
        raise RejectedFile("The released DICOM header could not be read.") from exc


def _printable(value: str, limit: int) -> str:
    return value[:limit] if value.isprintable() else ""


# ---- DICOM preview ---------------------------------------------------------------------------------


def _frame_count(ds: Dataset, path: StrPath, *, max_pixels: int | None, frame: int | None = None) -> int:
    """The image's frame count once its geometry is checked (size against ``max_pixels``, frames
    against the pixel data); with ``frame``, that frame must be one of them."""
    limit = _NO_LIMIT if max_pixels is None else max_pixels
    _rows, _cols, frames = _image_geometry(ds, path, max_pixels=limit)
    if frame is not None and not 0 <= frame < frames:
        raise RejectedFile("The requested frame does not exist in this image.")
    return frames


def _render_dicom(path: StrPath, *, frame: int, max_pixels: int | None) -> np.ndarray:
    ds, tsyntax = _read_dicom(path)
    try:
        _frame_count(ds, path, max_pixels=max_pixels, frame=frame)
        return _display_frame(path, ds, tsyntax, frame)
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("The image could not be converted for display; the file may be damaged.") from exc


def _display_frame(path: StrPath, ds: Dataset, tsyntax: UID, frame: int) -> np.ndarray:
    """One frame decoded and mapped to 8-bit display values ("L" or "RGB" layout)."""
    arr = _decode_frame(path, ds, tsyntax, index=frame)
    _merge_functional_groups(ds, frame=frame)
    photometric = str(ds.PhotometricInterpretation).strip().upper()

    if arr.ndim == 3:
        # pixel_array() already turned YBR_FULL/YBR_FULL_422 into RGB, and the JPEG/JPEG 2000
        # decoders return RGB for their YBR variants, so all 3-sample data is RGB here.
        return _to_uint8_rgb(arr[..., :3], ds)
    if photometric == "PALETTE COLOR":
        return _palette_to_uint8(arr, ds)
    grey = _monochrome_to_unit(arr, ds)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey  # MONOCHROME1 stores low values as white
    return _unit_to_uint8(grey)


def iter_frames(
    path: StrPath, kind: str, *, max_size: int = 4096, max_pixels: int | None = None
) -> Iterator[Image.Image]:
    """Every frame of an image as an 8-bit "L" or "RGB" picture, rendered like :func:`render_preview`.

    The header is read once and frames are decoded one at a time, as they are asked for: a
    300-frame series never sits in memory as a whole. PNG/JPEG give one picture. A frame that
    cannot be decoded raises :class:`RejectedFile` when it is reached.
    """
    if max_size < 1:
        raise ValueError("max_size must be positive")
    if kind in ("png", "jpeg"):
        yield render_preview(path, kind, max_size=max_size, max_pixels=max_pixels)
        return
    if kind != "dicom":
        raise ValueError(f"cannot render files of kind {kind!r}")
    ds, tsyntax = _read_dicom(path)
    try:
        frames = _frame_count(ds, path, max_pixels=max_pixels)
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("The DICOM file is damaged: some of its header values cannot be read.") from exc
    for frame in range(frames):
        try:
            arr = _display_frame(path, ds, tsyntax, frame)
        except RejectedFile:
            raise
        except Exception as exc:
            raise RejectedFile("The image could not be converted for display; the file may be damaged.") from exc
        image = Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L")
        if max(image.size) > max_size:
            image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        yield image


def _to_uint8_rgb(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    scale = 255.0 / float(2**bits - 1)
    return np.clip(arr.astype(np.float64) * scale + 0.5, 0, 255).astype(np.uint8)


def _palette_to_uint8(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    rgb = apply_color_lut(arr, ds)[..., :3]  # drop the optional alpha LUT
    if rgb.dtype != np.uint8 and rgb.max() > 255:
        # 16-bit entries span 0-65535; some writers put 8-bit values in 16-bit entries, kept as is.
        rgb = rgb / 257.0
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _monochrome_to_unit(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Stored values -> modality values -> display values in [0, 1] (0 = black in MONOCHROME2)."""
    values = apply_modality_lut(arr, ds)
    values = np.nan_to_num(values.astype(np.float64, copy=False), nan=0.0, posinf=0.0, neginf=0.0)

    for voi in (_voi_lut_to_unit, _window_to_unit):
        try:
            result = voi(values, ds)
        except Exception:
            # A broken VOI (zero width, unsupported LUT depth, ...) is not worth refusing the image
            # over: fall back to the next method and finally to the automatic window.
            result = None
        if result is not None:
            return result
    return _auto_window_to_unit(values)


def _voi_lut_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    lut = _voi_lut(ds, 0)
    if lut is None:
        return None
    # The LUT's own output range (not its nominal bit depth, often larger than what is used) maps
    # to black..white, as the viewer's "Header LUT" preset does.
    return np.clip((lut.apply(values) - lut.lo) / (lut.hi - lut.lo), 0.0, 1.0)


@dataclass(frozen=True)
class VoiLut:
    """One usable item of the VOI LUT Sequence: ``table[i]`` is the output for the input ``first + i``.

    Inputs are modality values rounded half to even (numpy's rint); inputs below ``first`` take the
    first entry, inputs past the end the last one (PS3.3 C.11.2.1.1). ``lo``/``hi`` is the range of
    the entries, which the preview and the viewer show as black..white.
    """

    first: int
    table: np.ndarray  # uint16, one entry per input value
    lo: int
    hi: int

    def apply(self, values: np.ndarray) -> np.ndarray:
        index = np.clip(np.rint(values) - self.first, 0, self.table.size - 1).astype(np.int64)
        return self.table[index].astype(np.float64)


_VOI_LUT_ITEMS = 8  # alternative views offered to the viewer, as for header windows


def _voi_lut(ds: Dataset, index: int) -> VoiLut | None:
    """Item ``index`` of the VOI LUT Sequence, or None when it is absent, damaged or flat.

    The entries are read by pushing every LUT input through pydicom's ``apply_voi``, so its checks
    (bit depth, LUTData at least as long as declared, byte order of OW data) are the ones applied.
    """
    items = ds.get("VOILUTSequence")
    if not items or not 0 <= index < min(len(items), _VOI_LUT_ITEMS):
        return None
    item = items[index]
    if "LUTDescriptor" not in item or "LUTData" not in item:
        return None
    try:
        descriptor = [int(v) for v in item.LUTDescriptor]
        if len(descriptor) != 3:
            return None
        nr_entries, first_map = descriptor[0] or 2**16, descriptor[1]  # 0 entries means 65536
        if not 0 < nr_entries <= 2**16:
            return None
        table = np.asarray(apply_voi(np.arange(first_map, first_map + nr_entries, dtype=np.int64), ds, index))
    except Exception:
        return None
    if table.shape != (nr_entries,) or not np.issubdtype(table.dtype, np.integer):
        return None
    lo, hi = int(table.min()), int(table.max())
    if hi <= lo or lo < 0 or hi > 0xFFFF:
        return None
    return VoiLut(first_map, table.astype(np.uint16), lo, hi)


def _voi_lut_indexes(ds: Dataset) -> tuple[int, ...]:
    items = ds.get("VOILUTSequence") or ()
    return tuple(i for i in range(min(len(items), _VOI_LUT_ITEMS)) if _voi_lut(ds, i) is not None)


_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def _voi_function(ds: Dataset) -> str:
    """VOILUTFunction (0028,1056) for the header's windows; anything unknown is LINEAR."""
    value = str(ds.get("VOILUTFunction") or "").strip().upper()
    return value if value in _VOI_FUNCTIONS else "LINEAR"


def _window_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    if ds.get("WindowCenter") in (None, "") or ds.get("WindowWidth") in (None, ""):
        return None
    # pydicom maps onto a range that depends on bit depth and rescale; pushing two extreme values
    # through the same function gives the exact ends of that range, whatever pydicom decided.
    with np.errstate(over="ignore"):
        ends = apply_windowing(np.array([-1e30, 1e30]), ds)
        windowed = apply_windowing(values, ds)
    lo, hi = float(ends[0]), float(ends[1])
    if hi == lo:
        return None
    return np.clip((windowed - lo) / (hi - lo), 0.0, 1.0)


def _auto_window_to_unit(values: np.ndarray) -> np.ndarray:
    sample = values.ravel()
    if sample.size > _AUTO_WINDOW_SAMPLE:
        sample = sample[:: sample.size // _AUTO_WINDOW_SAMPLE]
    lo, hi = (float(v) for v in np.percentile(sample, _AUTO_WINDOW_PERCENTILES))
    if hi <= lo:
        # Mostly-constant images (a single bright marker on black) collapse the percentiles.
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.full(values.shape, 0.5)  # a flat image: uniform mid grey
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def _unit_to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.clip(unit * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# PNG / JPEG
# --------------------------------------------------------------------------------------------------

_PIL_FORMATS = ("PNG", "JPEG")
# Pillow reports JPEGs carrying multi-picture data (many camera files) as MPO.
_FORMAT_NAMES = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg"}


@dataclass(frozen=True)
class RasterInfo:
    format: str
    width: int
    height: int
    mode: str


def inspect_raster(path: StrPath, *, max_pixels: int) -> RasterInfo:
    """Validate a PNG or JPEG: size checked from the header before any pixel is decoded."""
    with _open_raster(path) as im:
        fmt = _FORMAT_NAMES[im.format or ""]
        width, height = im.size
        mode = im.mode
        _check_raster_size(width, height, max_pixels)
        try:
            im.verify()  # PNG: walks every chunk and checks its CRC
        except Exception as exc:
            raise RejectedFile(f"The {fmt.upper()} file is damaged or incomplete.") from exc
    # verify() leaves the image unusable; a fresh decode catches truncated or corrupt pixel data.
    # (This relies on Pillow's default ImageFile.LOAD_TRUNCATED_IMAGES = False.)
    with _open_raster(path) as im:
        try:
            im.load()
        except Exception as exc:
            raise RejectedFile(f"The {fmt.upper()} file is damaged or incomplete.") from exc
    return RasterInfo(format=fmt, width=width, height=height, mode=mode)


def _open_raster(path: StrPath) -> Image.Image:
    try:
        # Restricting the formats keeps Pillow's many other (less hardened) parsers out of reach.
        im = Image.open(os.fspath(path), formats=_PIL_FORMATS)
    except Image.DecompressionBombError as exc:
        # Pillow's process-wide guard fired before ours could: same verdict.
        raise RejectedFile("The image is too large to be processed here.") from exc
    except UnidentifiedImageError as exc:
        raise RejectedFile("The file is not a valid PNG or JPEG image.") from exc
    except Exception as exc:
        raise RejectedFile("The image file is damaged and could not be opened.") from exc
    if im.format not in _FORMAT_NAMES:
        im.close()
        raise RejectedFile("The file is not a valid PNG or JPEG image.")
    return im


def _check_raster_size(width: int, height: int, max_pixels: int | None) -> None:
    if width < 1 or height < 1:
        raise RejectedFile("The image has no pixels.")
    if max_pixels is not None and width * height > max_pixels:
        raise RejectedFile("The image is too large to be processed here.")


def _render_raster(path: StrPath, *, max_size: int, max_pixels: int | None) -> Image.Image:
    with _open_raster(path) as im:
        _check_raster_size(*im.size, max_pixels)
        try:
            scale = max_size / max(im.size)
            if im.format in ("JPEG", "MPO") and scale < 1:
                # Let libjpeg decode at a reduced scale (1/2 .. 1/8): far less memory and time for
                # large photos. Never below the preview size; the final resize happens afterwards.
                im.draft(im.mode, (math.ceil(im.width * scale), math.ceil(im.height * scale)))
            oriented = ImageOps.exif_transpose(im)
            image = _to_l_or_rgb(oriented)
        except RejectedFile:
            raise
        except Exception as exc:
            raise RejectedFile(f"The {_FORMAT_NAMES[im.format or ''].upper()} file is damaged or incomplete.") from exc
    return image


def _to_l_or_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("L", "RGB"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit greyscale (often 12-bit data from medical exports): window it like DICOM without VOI
        # rather than dividing by 256, which would leave 12-bit data nearly black.
        values = np.asarray(im, dtype=np.float64)
        return Image.fromarray(_unit_to_uint8(_auto_window_to_unit(values)), mode="L")
    if mode == "P" and "transparency" not in im.info:
        return im.convert("RGB")
    if mode in ("LA", "La"):
        return _flatten_alpha(im.convert("LA"), "L")
    if mode in ("P", "PA", "RGBA", "RGBa"):
        return _flatten_alpha(im.convert("RGBA"), "RGB")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _raster_grey16(path: StrPath, *, max_pixels: int | None) -> np.ndarray | None:
    """A 16-bit greyscale PNG's values (EXIF orientation applied) as uint16, for the viewer to window
    as it windows DICOM; None for every other raster, which the viewer gets as its 8-bit rendering."""
    with _open_raster(path) as im:
        if not (im.mode.startswith("I;16") or im.mode == "I"):
            return None
        _check_raster_size(*im.size, max_pixels)
        try:
            values = np.asarray(ImageOps.exif_transpose(im))
        except Exception as exc:
            raise RejectedFile(f"The {_FORMAT_NAMES[im.format or ''].upper()} file is damaged or incomplete.") from exc
    if values.ndim != 2 or (values.size and (values.min() < 0 or values.max() > 0xFFFF)):
        return None  # not 16-bit data after all: the 8-bit rendering
    return np.ascontiguousarray(values, dtype=np.uint16)


def _flatten_alpha(im: Image.Image, mode: str) -> Image.Image:
    # Composite on black: the background clinical viewers use, so transparent margins disappear.
    background = Image.new(mode, im.size, 0)
    background.paste(im.convert(mode), mask=im.getchannel("A"))
    return background


# --------------------------------------------------------------------------------------------------
# Preview entry point
# --------------------------------------------------------------------------------------------------


def display_pixels(path: StrPath, kind: str, *, frame: int = 0, max_pixels: int | None = None) -> np.ndarray:
    """The image as the viewer shows it, at full resolution: uint8, (H, W) grey or (H, W, 3) RGB.

    DICOM: modality LUT, then the VOI LUT or the header's window (automatic window otherwise), then
    MONOCHROME1 inverted. PNG/JPEG: EXIF orientation applied, alpha flattened on black, 16-bit grey
    windowed. Previews and model inputs both start here, so a model sees what the radiologist sees.
    """
    if kind == "dicom":
        return _render_dicom(path, frame=frame, max_pixels=max_pixels)
    if kind in ("png", "jpeg"):
        if frame != 0:
            raise RejectedFile("The requested frame does not exist in this image.")
        return np.asarray(_render_raster(path, max_size=_NO_LIMIT, max_pixels=max_pixels))
    raise ValueError(f"cannot render files of kind {kind!r}")


@dataclass(frozen=True)
class FramePixels:
    """One frame at full bit depth, for the browser's viewer to window itself.

    ``values`` is (rows, columns) of stored values for greyscale DICOM (uint8, uint16 or int16, as
    stored), or float32 modality values when the file's modality transform is not linear (a
    Modality LUT) or its values do not fit 16 bits; ``rescaled`` says which. A 16-bit greyscale PNG
    is its uint16 values. For colour DICOM and other PNG/JPEG it is the 8-bit display rendering of
    :func:`display_pixels`: (rows, columns) grey or (rows, columns, 3) RGB, with ``photometric``
    "MONOCHROME2" or "RGB".
    """

    values: np.ndarray
    frames: int
    photometric: str  # MONOCHROME1, MONOCHROME2 or RGB
    modality: str
    slope: float
    intercept: float
    rescaled: bool  # values are modality values already (slope 1, intercept 0)
    windows: tuple[tuple[float, float], ...]  # the header's (center, width) pairs, in modality values
    voi_luts: tuple[int, ...] = ()  # usable items of the VOI LUT Sequence (see frame_voi_lut)
    voi_function: str = "LINEAR"  # VOILUTFunction of the windows: LINEAR, LINEAR_EXACT or SIGMOID


_VIEWER_DTYPES = (np.uint8, np.uint16, np.int16)


def frame_pixels(path: StrPath, kind: str, *, frame: int = 0, max_pixels: int | None = None) -> FramePixels:
    """One frame's pixels as stored, for a viewer that does its own window/level.

    Decoding goes through the same reader as :func:`display_pixels` (one frame from the file,
    enhanced multi-frame functional groups merged), so what the viewer shows and what the preview
    and the models see start from the same numbers.
    """
    if kind in ("png", "jpeg"):
        if frame != 0:
            raise RejectedFile("The requested frame does not exist in this image.")
        grey16 = _raster_grey16(path, max_pixels=max_pixels)
        if grey16 is not None:
            return FramePixels(grey16, 1, "MONOCHROME2", "", 1.0, 0.0, False, ())
        arr = display_pixels(path, kind, frame=frame, max_pixels=max_pixels)
        return FramePixels(arr, 1, "RGB" if arr.ndim == 3 else "MONOCHROME2", "", 1.0, 0.0, False, ())
    if kind != "dicom":
        raise ValueError(f"cannot read files of kind {kind!r}")
    ds, tsyntax = _read_dicom(path)
    try:
        frames = _frame_count(ds, path, max_pixels=max_pixels, frame=frame)
        arr = _decode_frame(path, ds, tsyntax, index=frame)
        _merge_functional_groups(ds, frame=frame)
        photometric = str(ds.PhotometricInterpretation).strip().upper()
        modality = _text(ds, "Modality")[:16]
        if arr.ndim == 3 or photometric == "PALETTE COLOR":
            rgb = _to_uint8_rgb(arr[..., :3], ds) if arr.ndim == 3 else _palette_to_uint8(arr, ds)
            return FramePixels(rgb, frames, "RGB", modality, 1.0, 0.0, False, ())
        windows = _header_windows(ds)
        if "ModalityLUTSequence" in ds or arr.dtype.type not in _VIEWER_DTYPES:
            values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
            values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
            slope, intercept, rescaled = 1.0, 0.0, True
        else:
            values = np.ascontiguousarray(arr)
            slope, intercept, rescaled = _float(ds, "RescaleSlope", 1.0), _float(ds, "RescaleIntercept", 0.0), False
            if slope == 0.0:
                slope = 1.0  # as pydicom's apply_modality_lut would refuse it: shown as stored
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            photometric = "MONOCHROME2"
        return FramePixels(
            values,
            frames,
            photometric,
            modality,
            slope,
            intercept,
            rescaled,
            windows,
            _voi_lut_indexes(ds),
            _voi_function(ds),
        )
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("The image could not be converted for display; the file may be damaged.") from exc


def frame_voi_lut(path: StrPath, kind: str, *, frame: int = 0, index: int = 0, max_pixels: int | None = None) -> VoiLut:
    """Item ``index`` of a greyscale DICOM frame's VOI LUT Sequence, as the preview applies item 0.

    The viewer maps the values of :func:`frame_pixels` through it itself (one table, not a second
    copy of the frame). Read from the header only; the pixels are not decoded.
    """
    if kind != "dicom":
        raise RejectedFile("This image has no VOI LUT.")
    ds, _tsyntax = _read_dicom(path)
    try:
        _frame_count(ds, path, max_pixels=max_pixels, frame=frame)
        _merge_functional_groups(ds, frame=frame)
        photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
        grey = int(ds.get("SamplesPerPixel") or 1) == 1 and photometric != "PALETTE COLOR"
        lut = _voi_lut(ds, index) if grey else None
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("The image's VOI LUT could not be read.") from exc
    if lut is None:
        raise RejectedFile("This image has no usable VOI LUT with that number.")
    return lut


def _float(ds: Dataset, keyword: str, default: float) -> float:
    try:
        value = float(ds.get(keyword, default))
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _header_windows(ds: Dataset) -> tuple[tuple[float, float], ...]:
    """The (center, width) pairs of the header, in modality values; unreadable or empty ones left out."""
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers in (None, "") or widths in (None, ""):
        return ()
    if not isinstance(centers, list | tuple | MultiValue):
        centers = [centers]
    if not isinstance(widths, list | tuple | MultiValue):
        widths = [widths]
    out = []
    for center, width in zip(centers, widths, strict=False):
        try:
            c, w = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if math.isfinite(c) and math.isfinite(w) and w > 0:
            out.append((c, w))
    return tuple(out[:8])


def render_preview(
    path: StrPath,
    kind: str,
    *,
    max_size: int = 1024,
    frame: int = 0,
    max_pixels: int | None = None,
) -> Image.Image:
    """Return an 8-bit "L" or "RGB" preview no larger than max_size on either side.

    ``kind`` is what detect_kind() returned. ``max_pixels`` optionally repeats the inspection size
    limit, for callers that render without having inspected the file first.
    """
    if max_size < 1:
        raise ValueError("max_size must be positive")
    if kind == "dicom":
        arr = display_pixels(path, kind, frame=frame, max_pixels=max_pixels)
        image = Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L")
    elif kind in ("png", "jpeg"):
        if frame != 0:
            raise RejectedFile("The requested frame does not exist in this image.")
        image = _render_raster(path, max_size=max_size, max_pixels=max_pixels)
    else:
        raise ValueError(f"cannot render files of kind {kind!r}")

    if max(image.size) > max_size:
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return image


# --------------------------------------------------------------------------------------------------
# ZIP
# --------------------------------------------------------------------------------------------------

# Compression ratios are only meaningful for members large enough to matter: a few KB of zeros
# compress 500:1 and harm nobody, and the total size limit already bounds small members.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024
# Clutter added by operating systems; skipped without a word (dotfiles and __MACOSX are handled by
# the leading-dot and first-component rules).
_JUNK_NAMES = {"thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ExtractedMember:
    name: str  # the name inside the archive: may carry patient data, never used on disk
    path: Path


@dataclass(frozen=True)
class RejectedMember:
    name: str
    reason: str


def safe_extract_zip(
    path: StrPath,
    dest_dir: StrPath,
    *,
    max_members: int,
    max_total_size: int,
    max_ratio: int,
    max_file_size: int,
) -> list[ExtractedMember | RejectedMember]:
    """Extract a zip defensively into dest_dir under random names.

    Whole-archive problems raise RejectedFile (and leave nothing behind in dest_dir); problems with a
    single member are reported as RejectedMember and the rest is extracted.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(os.fspath(path))
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError, struct.error) as exc:
        # NotImplementedError: multi-disk (spanned) archives.
        raise RejectedFile("The file is not a valid ZIP archive, or the archive is damaged.") from exc

    created: list[Path] = []
    try:
        with zf:
            return _extract_all(
                zf,
                dest,
                created,
                max_members=max_members,
                max_total_size=max_total_size,
                max_ratio=max_ratio,
                max_file_size=max_file_size,
            )
    except BaseException:
        for p in created:
            p.unlink(missing_ok=True)
        raise


def _extract_all(
    zf: zipfile.ZipFile,
    dest: Path,
    created: list[Path],
    *,
    max_members: int,
    max_total_size: int,
    max_ratio: int,
    max_file_size: int,
) -> list[ExtractedMember | RejectedMember]:
    members = [info for info in zf.infolist() if not info.is_dir() and not _is_junk(info.filename)]

    if any(info.flag_bits & 0x1 for info in members):
        raise RejectedFile("Password-protected (encrypted) ZIP archives are not accepted.")
    if len(members) > max_members:
        raise RejectedFile(f"The ZIP archive contains more than {max_members} files.")
    declared_total = sum(info.file_size for info in members)
    if declared_total > max_total_size:
        raise RejectedFile("The ZIP archive is too large once unpacked.")
    compressed_total = sum(info.compress_size for info in members)
    if declared_total >= _RATIO_CHECK_MIN_BYTES and declared_total > max_ratio * max(compressed_total, 1):
        raise RejectedFile("The ZIP archive is compressed suspiciously well and was refused (possible zip bomb).")

    results: list[ExtractedMember | RejectedMember] = []
    written_total = 0
    for info in members:
        name = info.filename
        reason = _member_problem(info, max_ratio=max_ratio, max_file_size=max_file_size)
        if reason:
            results.append(RejectedMember(name=name, reason=reason))
            continue
        target = dest / uuid.uuid4().hex
        created.append(target)
        outcome = _stream_member(
            zf,
            info,
            target,
            max_file_size=max_file_size,
            budget=max_total_size - written_total,
        )
        if isinstance(outcome, str):
            target.unlink(missing_ok=True)
            created.remove(target)
            results.append(RejectedMember(name=name, reason=outcome))
        else:
            written_total += outcome
            results.append(ExtractedMember(name=name, path=target))
    return results


def _is_junk(name: str) -> bool:
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if not parts:
        return True
    return (
        parts[0] == "__MACOSX"
        or any(p.startswith(".") and p not in (".", "..") for p in parts)
        or (parts[-1].lower() in _JUNK_NAMES)
    )


def _member_problem(info: zipfile.ZipInfo, *, max_ratio: int, max_file_size: int) -> str | None:
    """Reasons to refuse a member, from its directory entry alone."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) >= 2 and name[0].isalpha() and name[1] == ":"):
        return "Files with absolute paths inside the ZIP archive are not accepted."
    if ".." in name.split("/"):
        return "Files whose path points outside the ZIP archive ('..') are not accepted."
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
        return "Links inside the ZIP archive are not accepted."
    if info.file_size > max_file_size:
        return "This file inside the ZIP archive is too large."
    if info.file_size >= _RATIO_CHECK_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
        return "This file inside the ZIP archive is compressed suspiciously well and was refused."
    return None


def _stream_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    *,
    max_file_size: int,
    budget: int,
) -> int | str:
    """Copy one member with a hard byte counter. Returns bytes written, or a rejection reason.

    Declared sizes are only used as a promise to check against: the counter stops the copy as soon as
    the data outgrows what the archive declared or what the limits allow.
    """
    damaged = "This file inside the ZIP archive is damaged and could not be extracted."
    try:
        src = zf.open(info)
    except NotImplementedError:
        return "This file inside the ZIP archive uses a compression method that is not supported."
    except Exception:
        return damaged

    limit = min(info.file_size, max_file_size)
    written = 0
    # Errors while reading are the archive's fault (bad CRC, corrupt deflate stream: zlib.error,
    # lzma.LZMAError, BadZipFile, ...) and reject the member; errors while writing are ours
    # (disk full) and propagate.
    with src, open(target, "xb") as dst:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except Exception:
                return damaged
            if not chunk:
                break
            if written == 0 and chunk.startswith(_ZIP_MAGICS):
                return "Zip files inside zip files are not accepted."
            written += len(chunk)
            if written > budget:
                raise RejectedFile("The ZIP archive is too large once unpacked.")
            if written > limit:
                return "This file inside the ZIP archive is larger than the archive declares and was refused."
            dst.write(chunk)
    if written != info.file_size:
        return damaged
    return written
