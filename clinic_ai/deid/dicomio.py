"""Strict reading and atomic writing of DICOM Part 10 files.

:func:`read_dicom` accepts only what it can fully account for:

* a Part 10 file (128-byte preamble + ``DICM`` + file meta) read **without**
  ``force``; anything else is :class:`NotDicomError`;
* no element shorter than its declared length, no missing sequence or
  encapsulation delimiter, native pixel data at least as long as the image
  geometry requires, and an image (Rows/Columns present) must have pixel
  data: otherwise :class:`TruncatedDicomError` (pydicom itself silently
  accepts all of these);
* every element must convert (values decoded, sequences parsed). With
  ``decode_values=False`` (the de-identification path) sequences are parsed
  and checked the same way, but other values stay as read until used: the
  only values pydicom fails to decode (binary numbers whose length is not a
  multiple of their size) are checked on the raw bytes instead, so the same
  inputs are rejected, except inside private elements, which are removed
  unread;
* a SOP Class UID and SOP Instance UID, a registered transfer syntax, and not
  a DICOMDIR (a directory of many patients): otherwise
  :class:`UnsupportedDicomError`.

Error messages never include values, file names or pydicom's own messages.
"""

from __future__ import annotations

import copy
import io
import os
import struct
import warnings
import zlib
from typing import BinaryIO

from pydicom import dcmread, dcmwrite
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.hooks import hooks
from pydicom.hooks import raw_element_vr as _default_raw_element_vr
from pydicom.uid import UID, MediaStorageDirectoryStorage
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from .encoding import (
    MAX_DEPTH,
    REASON_AMBIGUOUS_ENCODING,
    REASON_DEPTH,
    REASON_GROUP_LENGTH,
    REASON_NO_PRIVATE_CREATOR,
    REASON_REPEATING_GROUP,
    REASON_SOP_CLASS,
    REASON_UNREADABLE_TYPE,
    explicit_vr_ok,
    private_creator_slot,
    repeating_group_out_of_range,
    sop_class_ok,
    un_may_hold_dataset,
)
from .errors import InvalidInputError, NotDicomError, TruncatedDicomError, UnsupportedDicomError
from .files import write_atomic

__all__ = [
    "DicomSource",
    "read_dicom",
    "write_dicom",
    "dicom_to_bytes",
    "check_dataset_complete",
    "check_image_data",
    "element_vr",
    "truncation",
]

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


def truncation(ds: Dataset, size: int | None) -> str | None:
    """The one truncation rule for every reader of a file as uploaded (this module's and
    ``studies.imaging``'s, which defers large values): ``"pixels"`` when the pixel data runs
    past the end of the file, ``"header"`` when another element does or bytes follow the last
    element that pydicom did not read as one (a cut inside the next element's header, or
    garbage), else ``None``. pydicom stops silently at a partial element, so each raw element's
    end is compared with the file's size. Deflated files are left out (their offsets point into
    the inflated stream); elements pydicom has already converted have no known end.

    Call on a freshly read dataset (before its elements are accessed)."""
    ts = getattr(getattr(ds, "file_meta", None), "get", lambda *_: None)("TransferSyntaxUID")
    if size is None or not len(ds) or ts is None or UID(ts).is_deflated:
        return None
    end = None
    for dataset in (getattr(ds, "file_meta", None) or {}, ds):
        for tag in dataset.keys():
            elem = dataset.get_item(tag, keep_deferred=True)
            if not isinstance(elem, RawDataElement):
                end = None
                continue
            if elem.length != _UNDEFINED:
                end = elem.value_tell + elem.length
            elif elem.value is not None:
                end = elem.value_tell + len(elem.value) + 8  # + the sequence delimitation item
            else:
                end = None
                continue
            if end > size:
                return "pixels" if int(tag) in _PIXEL_TAGS else "header"
    if end is not None and end < size:
        return "header"
    return None


def _check_tail(ds: Dataset, size: int | None) -> None:
    if truncation(ds, size) is not None:
        raise TruncatedDicomError("DICOM input is truncated: some elements end early or bytes are left over")


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
        raise TruncatedDicomError("DICOM input is truncated: some elements end early")
    check_image_data(ds)


def check_image_data(ds: Dataset) -> None:
    """The part of :func:`check_dataset_complete` that does not look at raw element lengths."""
    has_pixels = any(tag in ds for tag in _PIXEL_TAGS) or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if not has_pixels and (("Rows" in ds and "Columns" in ds) or _is_image_class(str(ds.get("SOPClassUID", "")))):
        raise TruncatedDicomError("DICOM input is truncated or incomplete: an image without pixel data")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if 0x7FE00010 in ds and ts is not None and UID(ts).is_transfer_syntax:
        pixel = ds.get_item(0x7FE00010)
        encapsulated = pixel.length == _UNDEFINED if isinstance(pixel, RawDataElement) else pixel.is_undefined_length
        if encapsulated != UID(ts).is_compressed:
            raise UnsupportedDicomError("DICOM pixel data is not encoded as its transfer syntax says")
        value = pixel.value if isinstance(pixel, RawDataElement) else None
        if encapsulated and value is not None and bytes(value[:4]) != b"\xfe\xff\x00\xe0":
            raise TruncatedDicomError("DICOM input is damaged: its compressed pixel data does not start with an item")
    if 0x7FE00010 in ds and ts is not None and not UID(ts).is_compressed:
        expected = _native_pixel_bytes_expected(ds)
        pixel = ds.get_item(0x7FE00010)
        length = len(pixel.value or b"")
        if expected is not None and length < expected:
            raise TruncatedDicomError("DICOM input is truncated: native pixel data shorter than the image geometry")


# Binary numbers pydicom refuses to decode when their length is not a multiple of their size.
_NUMBER_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "UV": 8, "SV": 8}


def element_vr(ds: Dataset, raw: RawDataElement) -> str:
    """The VR pydicom gives ``raw`` (an element of ``ds``) when it decodes it.

    Through pydicom's own ``raw_element_vr`` hook: the dictionary VR for implicit VR data, a known
    VR instead of an explicit "UN", the private dictionary for private tags. Ambiguous VRs
    ("US or SS") are returned as they are; decoding the element resolves them.
    """
    vr = raw.VR
    if vr is not None and vr != "UN" and hooks.raw_element_vr is _default_raw_element_vr:
        return vr  # what the default hook returns for an explicit VR other than UN
    data: dict[str, object] = {}
    hooks.raw_element_vr(raw, data, encoding=ds.original_character_set, ds=ds, **hooks.raw_element_kwargs)
    return str(data["VR"])


_KNOWN_VRS = frozenset(v.value for v in VR)


_LONG_HEADER_VRS = frozenset(EXPLICIT_VR_LENGTH_32)


def _element_start(elem, implicit: bool) -> int | None:
    """Where an element's header starts in the file: from its value's position (a raw element's
    ``value_tell``, a decoded one's ``file_tell``) less its header's length."""
    if isinstance(elem, RawDataElement):
        position, implicit, vr = elem.value_tell, elem.is_implicit_VR, elem.VR
    else:
        position, vr = getattr(elem, "file_tell", None), elem.VR
    if position is None:
        return None
    return position - (12 if not implicit and vr in _LONG_HEADER_VRS else 8)


def _check_encoding(ds: Dataset, implicit: bool) -> None:
    """Refuse what another reader could read differently (the rules of ``encoding.py``, which the
    fast path applies to the bytes), on a dataset freshly read (its elements mostly still raw)."""
    raws = [(int(tag), ds.get_item(tag)) for tag in sorted(ds.keys())]
    creators: set[int] = set()
    for n, (tag, raw) in enumerate(raws):
        if not isinstance(raw, RawDataElement):  # decoded already by the checks before (SOPClassUID...)
            continue
        group = tag >> 16
        if group & 1:
            slot = private_creator_slot(tag)
            if slot is None:
                creators.add(tag)
            elif slot not in creators:
                raise InvalidInputError(REASON_NO_PRIVATE_CREATOR)
            continue
        if repeating_group_out_of_range(group):
            raise InvalidInputError(REASON_REPEATING_GROUP)
        if raw.is_implicit_VR != implicit:  # items pydicom read in the other encoding
            raise InvalidInputError(REASON_AMBIGUOUS_ENCODING)
        if raw.VR is not None and not raw.is_implicit_VR and not explicit_vr_ok(tag, raw.VR):
            raise InvalidInputError(REASON_UNREADABLE_TYPE)
        if raw.VR == "UN" and (raw.length == _UNDEFINED or un_may_hold_dataset(raw.value or b"")):
            raise InvalidInputError(REASON_UNREADABLE_TYPE)  # an unknown tag's UN that may hide a dataset
        if tag & 0xFFFF == 0 and group > 0x0002 and raw.length == 4 and raw.value is not None:
            declared = struct.unpack("<L" if raw.is_little_endian else ">L", raw.value)[0]
            members = [r for t, r in raws[n + 1 :] if t >> 16 == group]
            following = next((r for t, r in raws[n + 1 :] if t >> 16 != group), None)
            last = members[-1] if members else None
            if isinstance(last, RawDataElement) and last.length != _UNDEFINED:
                group_end: int | None = last.value_tell + last.length
            elif following is not None:
                group_end = _element_start(following, implicit)
            else:
                group_end = None
            if group_end is None:
                continue  # the group ends where its dataset ends, which is not known here
            if group_end - (raw.value_tell + 4) != declared:
                raise InvalidInputError(REASON_GROUP_LENGTH)


def _parse_structure(ds: Dataset, problems: list[str], implicit: bool, depth: int = 0, strict: bool = True) -> None:
    """Parse every sequence (recursively) and check raw lengths, without decoding other values.

    ``strict``: also refuse ambiguous encodings (:func:`_check_encoding`); not inside private
    sequences, which are removed unread."""
    if depth > MAX_DEPTH:
        raise InvalidInputError(REASON_DEPTH)
    if strict:
        _check_encoding(ds, implicit)
    for tag in list(ds.keys()):
        item = ds.get_item(tag)
        if isinstance(item, RawDataElement):
            if item.length != _UNDEFINED and item.value is not None and len(item.value) != item.length:
                problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
                continue
            vr = element_vr(ds, item)
            if vr not in _KNOWN_VRS:  # pydicom would fail on it later, wherever it is first read
                raise InvalidInputError("DICOM input has undecodable elements", detail="VR")
            if strict and item.length == _UNDEFINED and vr != "SQ" and tag != _PIXEL_DATA and not tag >> 16 & 1:
                raise InvalidInputError(REASON_UNREADABLE_TYPE)  # opaque bytes where items may hide
            if vr == "SQ":
                item = ds[tag]  # parses the items; their elements stay raw
            else:
                size = _NUMBER_SIZES.get(vr)
                if size and item.value and len(item.value) % size and not (tag >> 16) % 2:
                    raise InvalidInputError("DICOM input has undecodable elements", detail="length")
                continue
        if getattr(item, "VR", None) == "SQ" and item.value is not None:
            for sub in item.value:
                _parse_structure(sub, problems, implicit, depth + 1, strict and not tag >> 16 & 1)


def _convert_all(ds: Dataset) -> None:
    for elem in ds:  # converts raw elements, recursing below
        if elem.VR == "SQ":
            for item in elem.value:
                _convert_all(item)
        else:
            _ = elem.value


def read_dicom(source: DicomSource, *, decode_values: bool = True) -> FileDataset:
    """Read a DICOM Part 10 object strictly (see the module docstring).

    ``decode_values=False`` leaves values other than sequences encoded until they are used
    (elements stay pydicom ``RawDataElement``s, which pydicom decodes on access): three to four
    times faster on typical headers, and what :func:`~.engine.deidentify_dataset` needs to copy
    the elements it keeps byte for byte.
    """
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
                if "but found" in text and " vr" in text:  # pydicom switched between implicit and explicit VR
                    raise InvalidInputError(REASON_AMBIGUOUS_ENCODING)
                if any(hint in text for hint in _TRUNCATION_HINTS) and "explicit vr" not in text:
                    raise TruncatedDicomError("DICOM input is truncated (missing delimiter or data)")
            try:  # any other exception below: a value pydicom cannot decode
                check_dataset_complete(ds)
                _check_tail(ds, _source_size(fp))
                problems: list[str] = []
                _parse_structure(ds, problems, _is_implicit(ds))
                if problems:
                    # No tags in the message: a "tag" read from damaged bytes is any four bytes of the file.
                    raise TruncatedDicomError("DICOM input is truncated: some elements end early")
                if decode_values:
                    _convert_all(ds)
            except InvalidInputError:
                raise
            except Exception as exc:
                raise InvalidInputError("DICOM input has undecodable elements", detail=type(exc).__name__) from None
        try:
            check_supported(ds)
        except InvalidInputError:
            raise
        except Exception as exc:
            raise InvalidInputError("DICOM input has undecodable elements", detail=type(exc).__name__) from None
        return ds
    finally:
        if close:
            fp.close()


def _is_implicit(ds: Dataset) -> bool:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return ts is not None and UID(ts).is_transfer_syntax and UID(ts).is_implicit_VR


def check_supported(ds: Dataset) -> None:
    """Refuse objects we cannot de-identify as a single instance, or whose SOP class (in the
    dataset and in the file meta: both are kept as structure) is not a registered one."""
    file_meta = getattr(ds, "file_meta", None)
    ts = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    sop_class = str(ds.get("SOPClassUID", "") or getattr(file_meta, "MediaStorageSOPClassUID", "") or "")
    if sop_class == MediaStorageDirectoryStorage:
        raise UnsupportedDicomError("DICOMDIR (media storage directory) objects are not accepted")
    if not str(ds.get("SOPClassUID", "")).strip() or not str(ds.get("SOPInstanceUID", "")).strip():
        raise UnsupportedDicomError("DICOM input lacks SOPClassUID or SOPInstanceUID")
    if ts is not None and not UID(ts).is_transfer_syntax:
        raise UnsupportedDicomError("DICOM input uses an unknown transfer syntax")
    meta_class = file_meta.get("MediaStorageSOPClassUID", None) if file_meta is not None else None
    if not sop_class_ok(str(ds.SOPClassUID)) or (meta_class is not None and not sop_class_ok(str(meta_class))):
        raise UnsupportedDicomError(REASON_SOP_CLASS)


def dicom_to_bytes(ds: Dataset) -> bytes:
    """Serialise as a Part 10 file: the bytes of pydicom's ``dcmwrite(..., enforce_file_format=True)``.

    Elements still in their encoded form (``RawDataElement``, see :func:`read_dicom`) are written
    here directly, with the sequences around them; everything else goes through pydicom's own
    element writer. Anything this writer does not handle itself (a private or missing transfer
    syntax, file meta that disagrees with the dataset, a dataset read with another encoding...)
    is written by ``dcmwrite``. The tests compare both writers byte for byte.
    """
    fast = _serialise(ds)
    if fast is not None:
        return fast
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010


class _Fallback(Exception):
    """Leave this object to pydicom's dcmwrite."""


def _serialise(ds: Dataset) -> bytes | None:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID", None) if meta is not None else None
    if ts is None or ts.is_private or not ts.is_transfer_syntax:
        return None
    if any(tag >> 16 in (0, 2) for tag in ds._dict):
        return None  # dcmwrite refuses these with its own message
    preamble = getattr(ds, "preamble", None) or b"\x00" * 128
    if len(preamble) != 128:
        return None
    sop_class, sop_instance = ds.get("SOPClassUID", None), ds.get("SOPInstanceUID", None)
    if not sop_class or not sop_instance:
        return None
    if meta.get("MediaStorageSOPClassUID", None) != sop_class:
        return None
    if meta.get("MediaStorageSOPInstanceUID", None) != sop_instance:
        return None
    implicit, little = ts.is_implicit_VR, ts.is_little_endian
    if _PIXEL_DATA in ds:
        pixels = ds.get_item(_PIXEL_DATA)
        if isinstance(pixels, RawDataElement):
            if (pixels.length == _UNDEFINED) != ts.is_compressed:
                return None
        else:
            pixels.is_undefined_length = ts.is_compressed  # as dcmwrite does
    head = DicomBytesIO()
    head.is_implicit_VR, head.is_little_endian = False, True
    write_file_meta_info(head, copy.deepcopy(meta), enforce_standard=True)  # validates and completes
    body = bytearray()
    try:
        _write_dataset(body, ds, implicit, little, default_encoding)
    except _Fallback:
        return None
    if ts.is_deflated:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = bytearray(compressor.compress(bytes(body))) + compressor.flush()
        if len(body) % 2:
            body += b"\x00"
    return b"".join((preamble, b"DICM", head.getvalue(), bytes(body)))


def _header(tag: int, vr: str | None, length: int, implicit: bool, little: bool) -> bytes:
    order = "<" if little else ">"
    if implicit:
        return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, length)
    assert vr is not None
    if vr in EXPLICIT_VR_LENGTH_32:
        return struct.pack(order + "HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, length)
    return struct.pack(order + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)


def _write_dataset(buf: bytearray, ds: Dataset, implicit: bool, little: bool, parent_encoding) -> None:
    """``pydicom.filewriter.write_dataset``, writing raw elements and sequences here."""
    if ds.original_encoding != (implicit, little) or ds.original_character_set != ds._character_set:
        fp = DicomBytesIO()  # pydicom decodes raw elements and resolves ambiguous VRs for us
        fp.is_implicit_VR, fp.is_little_endian = implicit, little
        write_dataset(fp, ds, parent_encoding)
        buf += fp.getvalue()
        return
    encodings = ds.get("SpecificCharacterSet", parent_encoding)
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement) and not implicit and elem.VR is None:
            elem = ds[tag]  # an unknown VR read as implicit: decode it to write it explicitly
        if isinstance(elem, RawDataElement):
            value, vr = elem.value, elem.VR
            undefined = elem.length == _UNDEFINED
            if value is None or (
                not implicit
                and (
                    vr is None
                    or len(vr) != 2
                    or (vr not in EXPLICIT_VR_LENGTH_32 and (undefined or len(value) > 0xFFFF))
                )
            ):
                _delegate(buf, elem, implicit, little, encodings)
                continue
            if (
                undefined
                and tag == _PIXEL_DATA
                and not value.startswith(b"\xfe\xff\x00\xe0" if little else b"\xff\xfe\xe0\x00")
            ):
                raise _Fallback  # dcmwrite raises its own error
            buf += _header(tag, vr, _UNDEFINED if undefined else len(value), implicit, little)
            buf += value
            if undefined:
                buf += _header(_SEQUENCE_END, None, 0, True, little)
        elif elem.VR == "SQ":
            _write_sequence(buf, elem, implicit, little, encodings)
        else:
            _delegate(buf, elem, implicit, little, encodings)


def _write_sequence(buf: bytearray, elem: DataElement, implicit: bool, little: bool, encodings) -> None:
    items = bytearray()
    inner = convert_encodings(encodings or [default_encoding])
    for item in elem.value or ():
        content = bytearray()
        _write_dataset(content, item, implicit, little, inner)
        if getattr(item, "is_undefined_length_sequence_item", False):
            items += _header(_ITEM, None, _UNDEFINED, True, little) + content
            items += _header(_ITEM_END, None, 0, True, little)
        else:
            items += _header(_ITEM, None, len(content), True, little) + content
    undefined = elem.is_undefined_length
    buf += _header(elem.tag, "SQ", _UNDEFINED if undefined else len(items), implicit, little)
    buf += items
    if undefined:
        buf += _header(_SEQUENCE_END, None, 0, True, little)


def _delegate(buf: bytearray, elem, implicit: bool, little: bool, encodings) -> None:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_data_element(fp, elem, encodings)
    buf += fp.getvalue()


def write_dicom(ds: Dataset, dst_path: str | os.PathLike) -> None:
    """Write ``ds`` to ``dst_path`` atomically (temp file in the same directory + rename)."""
    write_atomic(dicom_to_bytes(ds), dst_path)
