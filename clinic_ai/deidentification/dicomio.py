"""Strict reading and atomic writing of DICOM Part 10 files.

:func:`read_dicom` accepts only what it can fully account for:

* a Part 10 file (128-byte preamble + ``DICM`` + file meta) read **without**
  ``force``; anything else is :class:`NotDicomError`;
* no element shorter than its declared length, no missing sequence or
  encapsulation delimiter, native pixel data at least as long as the image
  geometry requires, and an image (Rows/Columns present) must have pixel
  data: otherwise :class:`TruncatedDicomError` (pydicom itself silently
  accepts all of these);
* every element must convert (values decoded, sequences parsed);
* a SOP Class UID and SOP Instance UID, a registered transfer syntax, and not
  a DICOMDIR (a directory of many patients): otherwise
  :class:`UnsupportedDicomError`.

Error messages never include values, file names or pydicom's own messages.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread, dcmwrite
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, MediaStorageDirectoryStorage

from .errors import InvalidInputError, NotDicomError, TruncatedDicomError, UnsupportedDicomError

__all__ = ["DicomSource", "read_dicom", "write_dicom", "dicom_to_bytes", "check_dataset_complete"]

DicomSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_UNDEFINED = 0xFFFFFFFF
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_TRUNCATION_HINTS = ("end of file", "delimiter", "truncat", "expected", "incomplete", "premature")


def _open(source: DicomSource) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    if isinstance(source, str | os.PathLike):
        return open(source, "rb")  # noqa: SIM115 - closed by the caller
    if hasattr(source, "read"):
        return source
    raise TypeError("source must be a path, bytes or a binary file object")


def _walk_raw(ds: Dataset, problems: list[str], depth: int = 0) -> None:
    for tag in list(ds.keys()):
        item = ds.get_item(tag)
        if isinstance(item, RawDataElement):
            if item.length != _UNDEFINED and item.value is not None and len(item.value) != item.length:
                problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        elif getattr(item, "VR", None) == "SQ" and item.value is not None:
            for sub in item.value:
                _walk_raw(sub, problems, depth + 1)


def _native_pixel_bytes_expected(ds: Dataset) -> int | None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    if bits == 1:
        return (rows * cols * frames * spp + 7) // 8
    expected = rows * cols * frames * spp * (bits // 8)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        expected = expected * 2 // 3
    return expected


def _source_size(fp: BinaryIO) -> int | None:
    try:
        here = fp.tell()
        fp.seek(0, os.SEEK_END)
        size = fp.tell()
        fp.seek(here)
        return size
    except (OSError, ValueError, AttributeError):
        return None


def _check_tail(ds: Dataset, size: int | None) -> None:
    """pydicom stops silently at a partial element header: find unparsed trailing bytes."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if size is None or not len(ds) or ts is None or UID(ts).is_deflated:
        return
    last = ds.get_item(max(ds.keys()))
    if not isinstance(last, RawDataElement) or last.value is None:
        return
    if last.length != _UNDEFINED:
        end = last.value_tell + last.length
    else:
        end = last.value_tell + len(last.value) + 8  # + sequence delimitation item
    if end < size:
        raise TruncatedDicomError("DICOM input is truncated: trailing bytes do not form a complete element")


def _is_image_class(sop_class: str) -> bool:
    name = UID(sop_class).name if sop_class else ""
    return name.endswith("Image Storage") or "Image Storage -" in name


def check_dataset_complete(ds: Dataset) -> None:
    """Raise :class:`TruncatedDicomError` if ``ds`` visibly lacks data it declares.

    Call on a freshly read dataset, before its elements are accessed (the
    check compares raw element lengths with the bytes actually read).
    """
    problems: list[str] = []
    _walk_raw(ds, problems)
    if problems:
        raise TruncatedDicomError(f"DICOM input is truncated: element(s) {', '.join(problems[:5])} end early")
    has_pixels = any(tag in ds for tag in _PIXEL_TAGS) or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if not has_pixels and (("Rows" in ds and "Columns" in ds) or _is_image_class(str(ds.get("SOPClassUID", "")))):
        raise TruncatedDicomError("DICOM input is truncated or incomplete: an image without pixel data")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if 0x7FE00010 in ds and ts is not None and not UID(ts).is_compressed:
        expected = _native_pixel_bytes_expected(ds)
        pixel = ds.get_item(0x7FE00010)
        length = len(pixel.value or b"")
        if expected is not None and length < expected:
            raise TruncatedDicomError("DICOM input is truncated: native pixel data shorter than the image geometry")


def _convert_all(ds: Dataset) -> None:
    for elem in ds:  # converts raw elements, recursing below
        if elem.VR == "SQ":
            for item in elem.value:
                _convert_all(item)
        else:
            _ = elem.value


def read_dicom(source: DicomSource) -> FileDataset:
    """Read a DICOM Part 10 object strictly (see the module docstring)."""
    try:
        fp = _open(source)
    except OSError as exc:  # the message would carry the path, which may hold PHI
        raise InvalidInputError("input file cannot be opened", detail=type(exc).__name__) from None
    close = fp is not source
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = dcmread(fp, force=False)
            except InvalidDicomError:
                raise NotDicomError("input is not a DICOM Part 10 file (no preamble/DICM prefix)") from None
            except (EOFError, zlib.error) as exc:
                raise TruncatedDicomError("DICOM input is truncated", detail=type(exc).__name__) from None
            except Exception as exc:  # pydicom raises many types on garbage
                raise NotDicomError("input could not be parsed as DICOM", detail=type(exc).__name__) from None
            for warning in caught:
                text = str(warning.message).lower()
                if any(hint in text for hint in _TRUNCATION_HINTS) and "explicit vr" not in text:
                    raise TruncatedDicomError("DICOM input is truncated (missing delimiter or data)")
            check_dataset_complete(ds)
            _check_tail(ds, _source_size(fp))
            try:
                _convert_all(ds)
            except Exception as exc:
                raise InvalidInputError("DICOM input has undecodable elements", detail=type(exc).__name__) from None
        check_supported(ds)
        return ds
    finally:
        if close:
            fp.close()


def check_supported(ds: Dataset) -> None:
    """Refuse objects we cannot de-identify as a single instance."""
    file_meta = getattr(ds, "file_meta", None)
    ts = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    sop_class = str(ds.get("SOPClassUID", "") or getattr(file_meta, "MediaStorageSOPClassUID", "") or "")
    if sop_class == MediaStorageDirectoryStorage:
        raise UnsupportedDicomError("DICOMDIR (media storage directory) objects are not accepted")
    if not str(ds.get("SOPClassUID", "")).strip() or not str(ds.get("SOPInstanceUID", "")).strip():
        raise UnsupportedDicomError("DICOM input lacks SOPClassUID or SOPInstanceUID")
    if ts is not None and not UID(ts).is_transfer_syntax:
        raise UnsupportedDicomError("DICOM input uses an unknown transfer syntax")


def dicom_to_bytes(ds: Dataset) -> bytes:
    """Serialise as a Part 10 file (``enforce_file_format=True``, zero preamble)."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_dicom(ds: Dataset, dst_path: str | os.PathLike) -> None:
    """Write ``ds`` to ``dst_path`` atomically (temp file in the same directory + rename)."""
    dst = Path(dst_path)
    data = dicom_to_bytes(ds)
    fd, tmp = tempfile.mkstemp(prefix=".deid-", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
