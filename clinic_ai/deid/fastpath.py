"""The fast path: de-identify a Part 10 file by walking its bytes. Pure: no Django.

:func:`deidentify_bytes` gives the same output, byte for byte, and the same audit as
``read_dicom`` + :func:`~.engine.deidentify_dataset` + ``dicom_to_bytes`` (the tests compare
both paths on every file they have), several times faster: pydicom builds an object for every
element it reads and writes, while most elements of a header are kept or removed as they are.

How: the bytes are parsed here into a light tree (tag, VR, value bytes, sequence items), the
policy is decided per element exactly as the engine decides it, and

* kept elements are copied as they were read; removed ones are dropped;
* sequences are walked recursively and written with defined lengths (as the engine does);
* the few elements whose value changes are changed here when they are plain ASCII and the change
  is a UID mapping, a date shift, an emptying or the pseudonym (the engine's rules, repeated in
  ``_FastWalker._native``); anything else (dummies, cleaned descriptors, other character sets)
  is decoded by pydicom, changed by the engine's own ``_Walker.apply`` and encoded by pydicom;
* the markers and the file meta come from the engine's functions.

Memory: the input is parsed in place (views, no copies) and the pixel data is copied once, into
the output, so a file needs about twice its size (bench/deid_memory.py).

Only well-formed input in the common transfer syntaxes takes this path: Implicit and Explicit VR
Little Endian, Deflated, and the encapsulated (compressed) ones. Anything else, and anything
doubtful (a length past the end, elements out of order, trailing bytes, an unknown VR, an
ambiguous VR that must change, a numeric value of the wrong length, an image without its pixel
data...), raises :class:`Fallback`: the caller then takes the pydicom path, which either handles
the file or rejects it with its own reason. This module never rejects a file itself.

What may leave is decided by the independent release gate (:mod:`clinic_ai.releasegate`), not here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from .dicomio import check_image_data, check_supported
from .encoding import (
    GRAMMAR_VRS,
    MAX_DEPTH,
    explicit_vr_ok,
    kept_uid_registered,
    kept_value_ok,
    mapped_uid_ok,
    repeating_group_out_of_range,
    un_may_hold_dataset,
    undefined_length_ok,
)
from .engine import _STRUCTURAL, DeidResult, _check_arguments, _file_meta, _set_markers, _Walker
from .options import DeidOptions
from .policy import Action, tag_label
from .temporal import shift_da, shift_dt
from .uids import is_well_known_uid

__all__ = ["Fallback", "FastResult", "deidentify_bytes", "parse_part10"]


class Fallback(Exception):
    """Not for the fast path: use the pydicom path (it handles the file or rejects it)."""


_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005
_SOP_CLASS = 0x00080016
_MAX_DEPTH = MAX_DEPTH

_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split()) | _LONG_VRS
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
_NUMBER_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "UV": 8, "SV": 8}

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_DEFLATED = "1.2.840.10008.1.2.1.99"

_TAG = struct.Struct("<HH")
_TAG_LENGTH = struct.Struct("<HHL")
_SHORT_LENGTH = struct.Struct("<H")
_LONG_LENGTH = struct.Struct("<L")


class _Elem:
    """One parsed element. ``value`` for plain elements, ``items`` for sequences; ``start:end``
    is the value's span in the buffer (for a sequence: its items, without a final delimiter)."""

    __slots__ = ("tag", "vr", "value", "items", "undefined", "start", "end")

    def __init__(self, tag, vr, value, items, undefined, start, end):
        self.tag, self.vr, self.value, self.items = tag, vr, value, items
        self.undefined, self.start, self.end = undefined, start, end


@dataclass(slots=True)
class Part10:
    """A parsed Part 10 file: its file meta elements and its dataset tree."""

    meta: list[_Elem]
    meta_buffer: memoryview
    transfer_syntax: str
    elements: list[_Elem]
    buffer: memoryview
    implicit: bool


def _read_header(buf: memoryview, pos: int, end: int, implicit: bool) -> tuple[int, str | None, int, int]:
    """(tag, VR or None, length, position of the value)."""
    if pos + 8 > end:
        raise Fallback
    group, element, length = _TAG_LENGTH.unpack_from(buf, pos)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:
        return tag, None, length, pos + 8
    vr = bytes(buf[pos + 4 : pos + 6])
    if vr in _LONG_VRS:
        if pos + 12 > end:
            raise Fallback
        return tag, vr.decode(), _LONG_LENGTH.unpack_from(buf, pos + 8)[0], pos + 12
    if vr not in _VRS:
        raise Fallback
    return tag, vr.decode(), _SHORT_LENGTH.unpack_from(buf, pos + 6)[0], pos + 8


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    """The VR pydicom gives a public element read without one (its ``raw_element_vr`` hook)."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UL" if tag & 0xFFFF == 0 else "UN"


_VR_OK: dict[int, bool] = {}  # (tag << 16 | the VR's two bytes) -> encoding.explicit_vr_ok
_VR_CODES = {_SHORT_LENGTH.unpack(vr)[0]: (vr.decode(), vr in _LONG_VRS) for vr in _VRS}


def _parse(buf: memoryview, pos: int, end: int, implicit: bool, item_undefined: bool, depth: int):
    """Elements from ``pos`` to ``end`` (or to an item delimiter): (elements, position after).

    Besides damage, it refuses what another reader could read differently (``encoding.py``): an
    explicit VR other than the dictionary's (UN included), an undefined length outside sequences,
    a repeating group out of range, a private element without its creator, a group length that
    lies, nesting deeper than ``MAX_DEPTH``.
    """
    if depth > _MAX_DEPTH:
        raise Fallback
    out: list[_Elem] = []
    last = -1
    creators: set[int] = set()
    length_group, length_end, declared = -1, 0, 0  # the group whose length is being checked
    unpack, unpack_long, vr_codes, dictionary_vr, vr_ok = (
        _TAG_LENGTH.unpack_from,
        _LONG_LENGTH.unpack_from,
        _VR_CODES,
        _dictionary_vr,
        _VR_OK,
    )
    while pos < end:
        if pos + 8 > end:
            raise Fallback
        group, element, length = unpack(buf, pos)
        tag = group << 16 | element
        if group != length_group and length_group >= 0:
            if pos - length_end != declared:
                raise Fallback  # a group length that lies
            length_group = -1
        if implicit or group == 0xFFFE:
            vr, start = None, pos + 8
            if tag == _ITEM_END and item_undefined and length == 0:
                return out, start
        else:
            raw_vr = length & 0xFFFF
            code = vr_codes.get(raw_vr)
            if code is None:
                raise Fallback
            vr, long = code
            if long:
                if pos + 12 > end:
                    raise Fallback
                length, start = unpack_long(buf, pos + 8)[0], pos + 12
            else:
                length, start = length >> 16, pos + 8
        if tag <= last or group == 0xFFFE:
            raise Fallback
        last = tag
        if not group & 1:
            size = _NUMBER_SIZES.get(dictionary_vr(tag) if vr is None or vr == "UN" else vr)
            if size and length != _UNDEFINED and length % size:
                raise Fallback  # pydicom's path rejects it with its reason
            if vr is not None:
                ok = vr_ok.get(tag << 16 | raw_vr)
                if ok is None:
                    if len(vr_ok) > _MAX_PLANS:
                        vr_ok.clear()
                    ok = vr_ok[tag << 16 | raw_vr] = explicit_vr_ok(tag, vr)
                if not ok:
                    raise Fallback  # a VR the dictionary does not give this tag, or UN
            if vr == "UN" and un_may_hold_dataset(buf[start : start + 4]):
                raise Fallback  # (an unknown tag's) UN that may hide a dataset
            if 0x5000 < group <= 0x60FF and repeating_group_out_of_range(group):
                raise Fallback
            if not element and length == 4 and group > 0x0002:
                length_group, length_end = group, start + 4
                declared = _LONG_LENGTH.unpack_from(buf, start)[0] if start + 4 <= end else -1
        elif element >= 0x1000:  # private data: its creator first (encoding.private_creator_slot)
            if group << 16 | element >> 8 not in creators:
                raise Fallback
        else:
            creators.add(tag)
        if length == _UNDEFINED:
            if tag == _PIXEL_DATA:
                if implicit or vr not in ("OB", "OW"):
                    raise Fallback
                value_end, pos = _fragments(buf, start, end)
                out.append(_Elem(tag, vr, buf[start:value_end], None, True, start, value_end))
                continue
            if vr == "SQ" or (vr is None and undefined_length_ok(tag, None)):  # (UN: left to pydicom)
                items, items_end, pos = _items(buf, start, end, implicit, True, depth)
                out.append(_Elem(tag, vr, None, items, True, start, items_end))
                continue
            raise Fallback
        pos = start + length
        if pos > end:
            raise Fallback
        if vr == "SQ" or (vr is None and not group & 1 and dictionary_vr(tag) == "SQ"):
            items, _, _ = _items(buf, start, pos, implicit, False, depth)
            out.append(_Elem(tag, vr, None, items, False, start, pos))
        else:
            out.append(_Elem(tag, vr, buf[start:pos], None, False, start, pos))
    if item_undefined:
        raise Fallback  # the item's delimiter is missing
    if length_group >= 0 and pos - length_end != declared:
        raise Fallback
    return out, pos


def _items(buf: memoryview, pos: int, end: int, implicit: bool, undefined: bool, depth: int):
    """Sequence items: (items, end of the last item, position after the sequence)."""
    items: list[tuple[list[_Elem], bool]] = []
    while True:
        if not undefined and pos == end:
            return items, pos, pos
        tag, _, length, start = _read_header(buf, pos, end, True)
        if tag == _SEQUENCE_END and undefined and length == 0:
            return items, pos, start
        if tag != _ITEM:
            raise Fallback
        if length == _UNDEFINED:
            elements, pos = _parse(buf, start, end, implicit, True, depth + 1)
            items.append((elements, True))
        else:
            pos = start + length
            if pos > end:
                raise Fallback
            elements, _ = _parse(buf, start, pos, implicit, False, depth + 1)
            items.append((elements, False))


def _fragments(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Encapsulated pixel data: (end of the last fragment, position after the delimiter)."""
    while True:
        tag, _, length, start = _read_header(buf, pos, end, True)
        if tag == _SEQUENCE_END and length == 0:
            return pos, start
        if tag != _ITEM or length == _UNDEFINED or start + length > end:
            raise Fallback
        pos = start + length


def parse_part10(data: bytes | bytearray | memoryview) -> Part10:
    """Parse a whole Part 10 file, or raise :class:`Fallback`."""
    buf = memoryview(data)
    if len(buf) < 144 or bytes(buf[128:132]) != b"DICM":
        raise Fallback
    meta: list[_Elem] = []
    pos, last = 132, -1
    while pos + 8 <= len(buf) and _TAG.unpack_from(buf, pos)[0] == 0x0002:
        tag, vr, length, start = _read_header(buf, pos, len(buf), False)
        if tag <= last or length == _UNDEFINED or vr in ("SQ", "UN") or start + length > len(buf):
            raise Fallback
        last, pos = tag, start + length
        meta.append(_Elem(tag, vr, buf[start:pos], None, False, start, pos))
    ts_elem = next((e for e in meta if e.tag == 0x00020010), None)
    if ts_elem is None:
        raise Fallback
    ts = bytes(ts_elem.value).decode("ascii", "replace").rstrip(" \x00")
    uid = UID(ts)
    if ts == _DEFLATED:
        try:
            body = memoryview(zlib.decompress(bytes(buf[pos:]), -zlib.MAX_WBITS))
        except zlib.error:
            raise Fallback from None
        implicit = False
    elif ts in (_IMPLICIT_LE, _EXPLICIT_LE) or (uid.is_transfer_syntax and uid.is_compressed and uid.is_little_endian):
        body, implicit = buf[pos:], ts == _IMPLICIT_LE
    else:
        raise Fallback  # big endian, private or unknown transfer syntaxes
    if not len(body):
        raise Fallback
    if implicit and len(body) >= 6 and 0x40 < body[4] < 0x5B and 0x40 < body[5] < 0x5B:
        raise Fallback  # the first length's bytes spell a VR: pydicom reads the file as explicit VR
    elements, end = _parse(body, 0, len(body), implicit, False, 0)
    if end != len(body) or any(e.tag >> 16 <= 0x0002 for e in elements):
        raise Fallback
    pixels = next((e for e in elements if e.tag == _PIXEL_DATA), None)
    if pixels is not None and pixels.undefined != bool(uid.is_compressed):
        raise Fallback
    return Part10(meta, buf, ts, elements, body, implicit)


# -- pydicom views of a parsed file ---------------------------------------------------------


def _raw(elem: _Elem, buf: memoryview, implicit: bool, pixel_view: bool = False) -> RawDataElement:
    if elem.items is not None:
        value = bytes(buf[elem.start : elem.end])
        vr = "SQ" if elem.vr is None and not elem.tag >> 16 & 1 else elem.vr
        if elem.undefined and vr == "UN":
            vr = None
        return RawDataElement(BaseTag(elem.tag), vr, len(value), value, elem.start, implicit, True)
    value = elem.value if pixel_view and elem.tag == _PIXEL_DATA else bytes(elem.value)
    length = _UNDEFINED if elem.undefined else len(value)
    return RawDataElement(BaseTag(elem.tag), elem.vr, length, value, elem.start, implicit, True)


def _as_dataset(part: Part10, *, pixel_view: bool = False) -> Dataset:
    """The top level as a pydicom dataset of raw elements (decoded by pydicom when read).

    ``pixel_view``: PixelData is a memoryview of the file's bytes rather than a copy (enough for
    its length; pydicom cannot decode compressed pixel data from it)."""
    buf, implicit = part.buffer, part.implicit
    raws = {}
    for e in part.elements:
        if e.items is None and not e.undefined and e.tag != _PIXEL_DATA:  # most elements: as _raw makes them
            tag, value = BaseTag(e.tag), bytes(e.value)
            raws[tag] = _new_tuple(RawDataElement, (tag, e.vr, len(value), value, e.start, implicit, True, True, False))
        else:
            raws[BaseTag(e.tag)] = _raw(e, buf, implicit, pixel_view)
    ds = Dataset(raws)
    ds.set_original_encoding(implicit, True, None)
    ds.file_meta = FileMetaDataset({BaseTag(e.tag): _raw(e, part.meta_buffer, False) for e in part.meta})
    return ds


_new_tuple = tuple.__new__  # a RawDataElement without its namedtuple constructor's extra call


# -- the de-identification walk ----------------------------------------------------------


def _decision_vr(elem: _Elem) -> str:
    """The VR the engine decides on (what pydicom's ``raw_element_vr`` hook gives)."""
    vr = elem.vr
    if vr is None:
        return "SQ" if elem.items is not None else _dictionary_vr(elem.tag)
    if vr == "UN" and elem.value is not None and len(elem.value) < 0xFFFF:
        known = _dictionary_vr(elem.tag)
        return vr if known == "UN" else known
    return vr


def _header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes:
    if implicit or vr is None:
        return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, length)
    if vr.encode() in _LONG_VRS:
        return struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(), length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _text(tag: int, vr: str, text: str, implicit: bool) -> bytes:
    """An ASCII text element, padded as pydicom pads it."""
    value = text.encode("ascii")
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    return _header(tag, vr, len(value), implicit) + value


def _encode(elem: DataElement, implicit: bool, encodings) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def _charset(elements: list[_Elem], parent):
    """The SpecificCharacterSet of a dataset as pydicom's writer takes it, else ``parent``."""
    for elem in elements:
        if elem.tag == _CHARSET and elem.value is not None:
            value = convert_raw_data_element(
                RawDataElement(Tag(_CHARSET), "CS", len(elem.value), bytes(elem.value), 0, False, True)
            ).value
            return value
        if elem.tag > _CHARSET:
            break
    return parent


Output = list[tuple[int, bytes | tuple[bytes | memoryview, ...]]]
_COPY_LATER = 1 << 16  # values larger than this are joined into the output without a copy before


def _flatten(items: Output):
    for _, chunk in items:
        if isinstance(chunk, tuple):
            yield from chunk
        else:
            yield chunk


_COPY, _STRUCTURAL_REMOVE, _CHANGE = "copy", "structural-remove", "change"
_UNDEFINED_LENGTH = b"\xff\xff\xff\xff"
_SEQUENCE_END_BYTES = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
_pack_length = struct.Struct("<L").pack
_pack_short = struct.Struct("<H").pack


_MAX_PLANS = 20_000
_PLANS: dict[tuple[DeidOptions, bool], dict[tuple[int, str | None, bool, bool], tuple]] = {}


class _FastWalker:
    def __init__(self, walker: _Walker, implicit: bool) -> None:
        self.walker = walker
        self.implicit = implicit
        self.paths = walker.audit_paths  # False: no paths are built (nothing records them)
        self.changed: dict[int, Any] = {}  # top-level values that were changed
        # Plans depend only on the options and the encoding: shared by every file.
        self._plans = _PLANS.setdefault((walker.options, implicit), {})

    def dataset(self, elements: list[_Elem], parent: str, parent_encoding, depth: int) -> Output:
        walker, implicit = self.walker, self.implicit
        encodings = _charset(elements, parent_encoding)
        read_encoding = convert_encodings(encodings or [default_encoding])
        out: Output = []
        plans, plan_for = self._plans, self._plan
        for elem in elements:
            tag = elem.tag
            # The decision VR of an explicit UN depends on its length too (see _decision_vr).
            key = (tag, elem.vr, elem.items is None, elem.vr == "UN" and len(elem.value or b"") < 0xFFFF)
            plan = plans.get(key) or plan_for(key, elem)
            kind = plan[0]
            if kind is _COPY:
                value = elem.value
                check = plan[3]
                if check is not None and (
                    not kept_value_ok(tag, check, value) or (check == "UI" and not kept_uid_registered(tag, value))
                ):
                    raise Fallback  # the pydicom path rejects it, or empties an unregistered UID
                if tag == _SOP_CLASS and depth == 0:
                    # The engine reads it for the file meta, and pydicom writes what it read.
                    out.append((tag, self._decoded(elem, read_encoding, encodings)))
                elif elem.undefined:  # encapsulated pixel data: not copied until the output is joined
                    out.append((tag, (plan[1] + _UNDEFINED_LENGTH, value, _SEQUENCE_END_BYTES)))
                elif len(value) > _COPY_LATER:
                    length = _pack_length(len(value)) if implicit or not plan[2] else _pack_short(len(value))
                    out.append((tag, (plan[1] + length, value)))
                elif implicit or not plan[2]:
                    out.append((tag, b"".join((plan[1], _pack_length(len(value)), value))))
                else:
                    out.append((tag, b"".join((plan[1], _pack_short(len(value)), value))))
                continue
            if kind is _STRUCTURAL_REMOVE:
                _, counter, action_name, label = plan
                walker.note(counter, action_name, (f"{parent}>{label}" if parent else label) if self.paths else "")
                continue
            _, vr, decision = plan
            action = decision.action
            path = (f"{parent}>{tag_label(tag)}" if parent else tag_label(tag)) if self.paths else ""
            if action is Action.REMOVE:
                walker.note("removed", "remove", path)
            elif elem.items is not None:
                if action is Action.RECURSE:
                    inner = convert_encodings(encodings or [default_encoding])
                    items = [self.dataset(item, path, inner, depth + 1) for item, _ in elem.items]
                    out.append((tag, self._sequence(tag, items)))
                elif action is Action.EMPTY:
                    out.append((tag, _header(tag, "SQ", 0, implicit)))
                    if elem.items:
                        walker.note("emptied", "empty", path)
                else:
                    raise Fallback
            else:
                chunk = self._native(elem, vr, action, path, depth)
                if chunk is None:
                    chunk = self._change(elem, vr, decision, path, encodings, read_encoding, depth)
                out.append((tag, chunk))
        return out

    def _plan(self, key: tuple[int, str | None, bool, bool], elem: _Elem) -> tuple:
        """What to do with elements like ``elem`` (same tag, VR as read, sequence or not)."""
        walker, tag = self.walker, elem.tag
        early = walker.decide(tag, "")
        if early.action is Action.REMOVE and early.reason in _STRUCTURAL:
            label = f"({tag >> 16:04X},xxxx)" if early.private else tag_label(tag)
            counter = "private_removed" if early.private else "removed"
            plan: tuple = (_STRUCTURAL_REMOVE, counter, f"remove:{early.reason}", label)
        else:
            vr = _decision_vr(elem)
            if " " in vr:  # ambiguous ("US or SS"): only when every reading keeps it
                if any(walker.decide(tag, v).action is not Action.KEEP for v in vr.split(" or ")):
                    raise Fallback
                decision = walker.decide(tag, vr.split(" or ")[0])
            else:
                decision = walker.decide(tag, vr)
            if decision.action is Action.KEEP and elem.items is None:
                if elem.vr == "UN" and vr != "UN":
                    raise Fallback  # pydicom writes it with its known VR
                if self.implicit or elem.vr is None:
                    prefix = _TAG.pack(tag >> 16, tag & 0xFFFF)
                    long = True
                else:
                    long = elem.vr.encode() in _LONG_VRS
                    prefix = _TAG.pack(tag >> 16, tag & 0xFFFF) + elem.vr.encode() + (b"\x00\x00" if long else b"")
                plan = (_COPY, prefix, not long, vr if vr in GRAMMAR_VRS else None)
            else:
                plan = (_CHANGE, vr, decision)
        if len(self._plans) > _MAX_PLANS:  # private tags are many: keep the cache bounded
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _native(self, elem: _Elem, vr: str, action: Action, path: str, depth: int) -> bytes | None:
        """The engine's UID mapping, date shift and emptying of ASCII text values, without pydicom.

        Same values, same audit notes (the tests compare both paths); ``None`` for anything else.
        """
        raw = bytes(elem.value)
        if not raw.isascii() or b"\x1b" in raw or elem.vr == "UN":
            return None
        walker = self.walker
        if action is Action.EMPTY and vr in _TEXT_VRS:
            strip = b" \x00^=" if vr == "PN" else b" \x00"
            if b"\\" in raw or raw.strip(strip):
                walker.note("emptied", "empty", path)
            return _header(elem.tag, vr, 0, self.implicit)
        if action is Action.UID and vr == "UI":
            values = raw.decode().rstrip(" \x00").split("\\")
            new_values, mapped = [], 0
            for v in values:
                v = v.strip(" \x00")
                if v and not is_well_known_uid(v):
                    if not mapped_uid_ok(v):
                        raise Fallback  # the pydicom path rejects it
                    v = walker.map_uid(v)
                    mapped += 1
                new_values.append(v)
            walker.note("uids_mapped", "uid", path, mapped)
            if depth == 0:
                self.changed[elem.tag] = "\\".join(new_values)
            return _text(elem.tag, vr, "\\".join(new_values), self.implicit)
        if action is Action.SHIFT and vr in ("DA", "DT"):
            shifter = shift_da if vr == "DA" else shift_dt
            new_values, shifted = [], 0
            for v in raw.decode().rstrip(" \x00").split("\\"):
                new = shifter(v, walker.shift)
                if new is None:  # unparseable: could be a real date, so empty the element
                    walker.note("emptied", "empty:unparseable-date", path)
                    return _header(elem.tag, vr, 0, self.implicit)
                shifted += bool(new)
                new_values.append(new)
            walker.note("dates_shifted", "shift", path, shifted)
            return _text(elem.tag, vr, "\\".join(new_values), self.implicit)
        if action is Action.PSEUDONYM and vr in ("PN", "LO"):
            if b"\\" in raw or raw.strip(b" \x00^=" if vr == "PN" else b" \x00"):
                walker.note("replaced", "pseudonym", path)
            return _text(elem.tag, vr, walker.pseudonym, self.implicit)
        return None

    def _sequence(self, tag: int, items: list[Output]) -> bytes:
        chunks = []
        for item in items:
            content = b"".join(_flatten(item))
            chunks.append(_header(_ITEM, None, len(content), True))
            chunks.append(content)
        body = b"".join(chunks)
        return _header(tag, "SQ", len(body), self.implicit) + body

    def _decoded(self, elem: _Elem, read_encoding, encodings) -> bytes:
        raw = RawDataElement(BaseTag(elem.tag), elem.vr, len(elem.value), bytes(elem.value), 0, self.implicit, True)
        try:
            decoded = convert_raw_data_element(raw, encoding=read_encoding)
        except Exception:
            raise Fallback from None
        self.changed[elem.tag] = decoded.value
        return _encode(decoded, self.implicit, encodings)

    def _change(self, elem: _Elem, vr: str, decision, path: str, encodings, read_encoding, depth: int) -> bytes:
        raw = RawDataElement(
            Tag(elem.tag), elem.vr, len(elem.value), bytes(elem.value), elem.start, self.implicit, True
        )
        try:
            source = convert_raw_data_element(raw, encoding=read_encoding)
        except Exception:
            raise Fallback from None
        scratch = Dataset()
        self.walker.apply(scratch, source, vr, decision, path)
        changed = scratch.get_item(elem.tag) if elem.tag in scratch else None
        if changed is None:
            return b""
        if depth == 0:
            self.changed[elem.tag] = changed.value
        return _encode(changed, self.implicit, encodings)


@dataclass(slots=True)
class FastResult:
    data: bytes
    """The de-identified Part 10 file."""
    result: DeidResult
    """Counts and audit; ``result.dataset`` is the output's top level, decoded on access, with its
    PixelData a memoryview of ``data`` (to decode pixels, read ``data``)."""
    pseudonym: str


def _meta_bytes(meta: FileMetaDataset) -> bytes:
    """The file meta group as ``write_file_meta_info(..., enforce_standard=True)`` writes it,
    for the elements the engine puts there (other elements: pydicom writes them)."""
    expected = {0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}
    if {int(tag) for tag in meta.keys()} != expected:
        head = DicomBytesIO()
        head.is_implicit_VR, head.is_little_endian = False, True
        write_file_meta_info(head, meta, enforce_standard=True)
        return head.getvalue()
    chunks = []
    for tag in sorted(meta.keys()):
        elem = meta[tag]
        if elem.VR == "OB":
            value = bytes(elem.value)
        else:
            text = str(elem.value)
            if not text.isascii():
                raise Fallback
            value = text.encode("ascii")
            if len(value) % 2:
                value += b"\x00" if elem.VR == "UI" else b" "
        chunks.append(_header(int(tag), elem.VR, len(value), False) + value)
    group = b"".join(chunks)
    return _header(0x00020000, "UL", 4, False) + struct.pack("<L", len(group)) + group


@lru_cache(maxsize=64)
def _marker_bytes(options: DeidOptions, implicit: bool) -> tuple[tuple[int, bytes], ...]:
    markers = Dataset()
    _set_markers(markers, options)
    return tuple((int(tag), _encode(markers[tag], implicit, default_encoding)) for tag in markers.keys())


def deidentify_bytes(
    data: bytes,
    *,
    options: DeidOptions,
    uid_secret: bytes,
    identity: Callable[[Dataset], tuple[str, int]],
    audit_paths: bool = True,
) -> FastResult:
    """De-identify a Part 10 file held in ``data``, or raise :class:`Fallback`.

    ``identity`` receives the input's top level (a pydicom dataset) and returns the patient's
    (pseudonym, date shift in days). Exceptions other than :class:`Fallback` come from the
    engine's argument checks and from ``identity``. ``audit_paths=False``: the result's counts
    without its ``acted_on`` lines (which name every element acted on: a caller that drops
    them need not have them built).
    """
    part = parse_part10(data)
    source = _as_dataset(part, pixel_view=True)
    try:
        check_image_data(source)  # (element lengths are checked by the parser)
        check_supported(source)
    except Exception:
        raise Fallback from None
    pseudonym, shift = identity(source)
    _check_arguments(options, uid_secret, pseudonym, shift)
    walker = _Walker(options, bytes(uid_secret), pseudonym, shift, audit_paths=audit_paths)
    fast = _FastWalker(walker, part.implicit)
    top = dict(fast.dataset(part.elements, "", default_encoding, 0))

    for tag, vr in ((0x00100010, "PN"), (0x00100020, "LO")):
        top[tag] = _text(tag, vr, pseudonym, part.implicit)  # a pseudonym is ASCII (PSEUDONYM_RE)
    top.update(_marker_bytes(options, part.implicit))

    out = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        tag = int(Tag(keyword))
        value = fast.changed[tag] if tag in fast.changed else source.get(keyword, None)
        if not isinstance(value, str) or "\\" in value:
            raise Fallback
        setattr(out, keyword, value)
    meta = _file_meta(source, out, walker)
    head = _meta_bytes(meta)

    ordered = sorted(top.items(), key=lambda item: item[0])
    # A deflated input is released inflated (Explicit VR Little Endian: see engine._file_meta).
    output = b"".join((b"\x00" * 128, b"DICM", head, *_flatten(ordered)))  # the one copy of the pixel data
    del top

    released = _top_level(output, 132 + len(head), ordered, part.implicit)
    released.file_meta = meta
    return FastResult(data=output, result=walker.result(released), pseudonym=pseudonym)


def _top_level(output: bytes, pos: int, ordered: Output, implicit: bool) -> Dataset:
    """The output's top level as :func:`_as_dataset` gives it (raw elements, decoded by pydicom
    when read; PixelData a view), from the elements just written: no second parse of the file.
    (Whether another reader reads the file the same way is the release gate's question.)"""
    buf = memoryview(output)
    raws = {}
    for tag, chunk in ordered:
        if not isinstance(chunk, tuple):  # most elements: read from the chunk (the same bytes)
            size = len(chunk)
            if not size:
                continue  # an element the walk dropped (cleaned to nothing)
            _, vr, length, start = _read_header(chunk, 0, size, implicit)
            if (
                tag != _PIXEL_DATA
                and length != _UNDEFINED
                and (vr is not None or tag >> 16 & 1 or _dictionary_vr(tag) != "SQ")
            ):
                value, start, pos = chunk[start:], pos + start, pos + size
                key = BaseTag(tag)
                raws[key] = _new_tuple(RawDataElement, (key, vr, len(value), value, start, implicit, True, True, False))
                continue
        size = sum(len(piece) for piece in chunk) if isinstance(chunk, tuple) else len(chunk)
        if not size:
            continue  # an element the walk dropped (cleaned to nothing)
        _, vr, length, start = _read_header(buf, pos, pos + size, implicit)
        end = pos = pos + size
        if tag == _PIXEL_DATA:
            undefined = length == _UNDEFINED
            value = buf[start : end - 8] if undefined else buf[start:end]
            raws[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), vr, _UNDEFINED if undefined else len(value), value, start, implicit, True
            )
            continue
        value = bytes(buf[start:end])
        if length == _UNDEFINED:  # a sequence (or an unknown element read as one), delimiter included
            vr = None if vr in (None, "UN") and (tag >> 16 & 1 or _dictionary_vr(tag) != "SQ") else "SQ"
        elif vr is None and not tag >> 16 & 1 and _dictionary_vr(tag) == "SQ":
            vr = "SQ"
        raws[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, len(value), value, start, implicit, True)
    ds = Dataset(raws)
    ds.set_original_encoding(implicit, True, None)
    return ds
