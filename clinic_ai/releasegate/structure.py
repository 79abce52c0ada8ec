"""Rule 1: the gate's own strict reader of a Part 10 file. One reading or none.

Written for the output of the de-identifier, so it is deliberately narrow: a preamble, ``DICM``,
the file meta group in Explicit VR Little Endian with a group length that ends it exactly, then
the data set in Implicit VR Little Endian, Explicit VR Little Endian (native or encapsulated
pixel data) or Explicit VR Big Endian. Deflated data sets and JPIP references cannot be vouched
for. Anything a reader could take two ways is refused: an implicit data set whose first element's
length bytes spell a VR (pydicom switches to explicit VR there), explicit VR bytes that are not a
VR (it switches to implicit), undefined lengths outside sequences, items and encapsulated pixel
data, elements out of order, bytes after the data set, VRs other than the dictionary's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom._uid_dict import UID_dictionary

from .dictionary import (
    ITEM,
    ITEM_DELIMITER,
    LONG_HEADER_VRS,
    NUMERIC_SIZE,
    PIXEL_DATA,
    SEQUENCE_DELIMITER,
    VR_BYTES,
    allowed_vrs,
    dictionary_vr,
    keyword,
)
from .refusal import GateRefused

__all__ = ["Node", "Parsed", "parse_part10"]

RULE = "structure"
UNDEFINED = 0xFFFFFFFF
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_REFUSED_SYNTAXES = {"1.2.840.10008.1.2.1.99"}


_vr_code = struct.Struct("<H").unpack_from  # VR bytes are characters: the same in either byte order
_VR_TEXT = {struct.unpack("<H", vr)[0]: vr.decode("ascii") for vr in VR_BYTES}
_VR_ALLOWED: set[tuple[int, str]] = set()  # (tag, explicit VR) pairs allowed_vrs accepts


class Node:
    """One element as read: tag, VR (the explicit one, or the dictionary's for implicit data),
    where its value starts and how long it is; ``items`` for sequences, ``fragments`` for
    encapsulated pixel data."""

    __slots__ = ("tag", "vr", "start", "length", "items", "fragments")

    def __init__(self, tag: int, vr: str, start: int, length: int) -> None:
        self.tag, self.vr, self.start, self.length = tag, vr, start, length
        self.items: list[list[Node]] | None = None
        self.fragments: list[tuple[int, int]] | None = None


@dataclass
class Parsed:
    data: bytes
    meta: list[Node]
    dataset: list[Node]
    transfer_syntax: str
    implicit: bool
    little: bool
    pixel_span: tuple[int, int] | None
    """Byte range of the top-level PixelData value (fragments included), not searched for text."""

    def value(self, node: Node) -> bytes:
        return self.data[node.start : node.start + node.length]


def _refuse(reason: str) -> GateRefused:
    return GateRefused(RULE, reason)


def _syntax(uid: str) -> tuple[bool, bool, bool]:
    """(implicit, little endian, encapsulated) of a transfer syntax the gate can read."""
    if uid == IMPLICIT_LE:
        return True, True, False
    if uid == EXPLICIT_LE:
        return False, True, False
    if uid == EXPLICIT_BE:
        return False, False, False
    entry = UID_dictionary.get(uid)
    if entry is None or entry[1] != "Transfer Syntax" or uid in _REFUSED_SYNTAXES or "Deflate" in entry[0]:
        raise _refuse("The file's transfer syntax is one the release check cannot vouch for.")
    if "JPIP" in entry[0]:
        raise _refuse("The file refers to pixel data elsewhere (JPIP); the release check cannot vouch for it.")
    return False, True, True


class _Reader:
    def __init__(self, data: bytes, implicit: bool, little: bool, encapsulated: bool) -> None:
        self.data = data
        self.implicit = implicit
        self.encapsulated = encapsulated
        order = "<" if little else ">"
        self.tag_fmt = struct.Struct(order + "HH")
        self.u16 = struct.Struct(order + "H")
        self.u32 = struct.Struct(order + "L")
        self.pixel_span: tuple[int, int] | None = None

    def dataset(self, pos: int, end: int, depth: int, until_delimiter: bool) -> tuple[list[Node], int]:
        data, nodes, last, first = self.data, [], -1, True
        unpack_tag, unpack_u16, unpack_u32 = self.tag_fmt.unpack_from, self.u16.unpack_from, self.u32.unpack_from
        implicit = self.implicit
        while pos < end:
            if pos + 8 > end:
                raise _refuse("An element header is cut off.")
            group, elem = unpack_tag(data, pos)
            tag = group << 16 | elem
            if tag == ITEM_DELIMITER:
                if not until_delimiter:
                    raise _refuse("An item delimiter appears outside an undefined-length item.")
                if unpack_u32(data, pos + 4)[0] != 0:
                    raise _refuse("An item delimiter has a non-zero length.")
                return nodes, pos + 8
            if group == 0xFFFE:
                raise _refuse("An item tag appears where an element was expected.")
            if tag <= last:
                raise _refuse(f"Elements are out of order or repeated at {keyword(tag)}.")
            last = tag
            if implicit:
                if first and data[pos + 4 : pos + 6] in VR_BYTES:
                    raise _refuse("An implicit-VR data set begins with length bytes that spell a VR (two readings).")
                vr = dictionary_vr(tag) or "UN"
                if vr == "OB or OW" or vr == "US or OW":
                    vr = "OW"
                elif vr == "US or SS":
                    vr = "US"
                length, header = unpack_u32(data, pos + 4)[0], 8
            else:
                vr = _VR_TEXT.get(_vr_code(data, pos + 4)[0])  # the two VR bytes, as a number
                if vr is None:
                    raise _refuse(f"The VR bytes of {keyword(tag)} are not a VR (two readings).")
                if vr in LONG_HEADER_VRS:
                    if pos + 12 > end:
                        raise _refuse("An element header is cut off.")
                    if data[pos + 6 : pos + 8] != b"\x00\x00":
                        raise _refuse(f"The reserved bytes of {keyword(tag)} are not zero.")
                    length, header = unpack_u32(data, pos + 8)[0], 12
                else:
                    length, header = unpack_u16(data, pos + 6)[0], 8
                if vr != "UN" and (tag, vr) not in _VR_ALLOWED:
                    allowed = allowed_vrs(tag)
                    if allowed is not None and vr not in allowed:
                        raise _refuse(f"{keyword(tag)} has a VR other than the dictionary's.")
                    if len(_VR_ALLOWED) > 20_000:
                        _VR_ALLOWED.clear()
                    _VR_ALLOWED.add((tag, vr))
            first = False
            start = pos + header
            node = Node(tag, vr, start, length)
            if length == UNDEFINED:
                if vr == "SQ":
                    node.items, pos = self.sequence(start, end, depth, undefined=True)
                    node.length = pos - start
                elif tag == PIXEL_DATA and depth == 0 and self.encapsulated and vr in ("OB", "OW"):
                    node.fragments, pos = self.fragments(start, end)
                    node.length = pos - start
                    self.pixel_span = (start, pos)
                else:
                    raise _refuse(f"{keyword(tag)} has an undefined length but is not a sequence.")
            else:
                stop = start + length
                if stop > end:
                    raise _refuse(f"The value of {keyword(tag)} runs past its container.")
                if length % 2:
                    raise _refuse(f"The value of {keyword(tag)} has an odd length.")
                if vr == "SQ":
                    node.items, _ = self.sequence(start, stop, depth, undefined=False)
                else:
                    size = NUMERIC_SIZE.get(vr)
                    if size and length % size:
                        raise _refuse(f"The length of {keyword(tag)} is not a multiple of its value size.")
                    if tag == PIXEL_DATA and depth == 0:
                        if self.encapsulated:
                            raise _refuse("Compressed pixel data is not encapsulated.")
                        self.pixel_span = (start, stop)
                pos = stop
            nodes.append(node)
        if until_delimiter:
            raise _refuse("An undefined-length item has no delimiter.")
        return nodes, pos

    def sequence(self, pos: int, end: int, depth: int, *, undefined: bool) -> tuple[list[list[Node]], int]:
        items: list[list[Node]] = []
        data = self.data
        while True:
            if not undefined and pos == end:
                return items, pos
            if pos + 8 > end:
                raise _refuse("A sequence is cut off.")
            group, elem = self.tag_fmt.unpack_from(data, pos)
            tag = group << 16 | elem
            length = self.u32.unpack_from(data, pos + 4)[0]
            if tag == SEQUENCE_DELIMITER and undefined:
                if length:
                    raise _refuse("A sequence delimiter has a non-zero length.")
                return items, pos + 8
            if tag != ITEM:
                raise _refuse("A sequence holds something other than items.")
            if length == UNDEFINED:
                nodes, pos = self.dataset(pos + 8, end, depth + 1, until_delimiter=True)
            else:
                stop = pos + 8 + length
                if stop > end:
                    raise _refuse("An item runs past its sequence.")
                nodes, after = self.dataset(pos + 8, stop, depth + 1, until_delimiter=False)
                if after != stop:
                    raise _refuse("An item's content does not fill its length.")
                pos = stop
            items.append(nodes)

    def fragments(self, pos: int, end: int) -> tuple[list[tuple[int, int]], int]:
        out: list[tuple[int, int]] = []
        data = self.data
        while True:
            if pos + 8 > end:
                raise _refuse("The encapsulated pixel data is cut off.")
            group, elem = self.tag_fmt.unpack_from(data, pos)
            tag = group << 16 | elem
            length = self.u32.unpack_from(data, pos + 4)[0]
            if tag == SEQUENCE_DELIMITER:
                if length:
                    raise _refuse("The pixel data delimiter has a non-zero length.")
                return out, pos + 8
            if tag != ITEM or length == UNDEFINED or length % 2 or pos + 8 + length > end:
                raise _refuse("A pixel data fragment is malformed.")
            out.append((pos + 8, length))
            pos += 8 + length


def parse_part10(data: bytes) -> Parsed:
    """Read ``data`` strictly, or raise :class:`GateRefused` (rule ``structure``)."""
    if len(data) < 144 or data[128:132] != b"DICM":
        raise _refuse("The file lacks the DICOM preamble and prefix.")
    if data[132:138] != b"\x02\x00\x00\x00UL" or struct.unpack_from("<H", data, 138)[0] != 4:
        raise _refuse("The file meta information does not begin with its group length.")
    meta_end = 144 + struct.unpack_from("<L", data, 140)[0]
    if meta_end > len(data):
        raise _refuse("The file meta group length runs past the file.")
    meta_reader = _Reader(data, implicit=False, little=True, encapsulated=False)
    meta, _ = meta_reader.dataset(132, meta_end, 0, until_delimiter=False)
    if any(node.tag >> 16 != 0x0002 for node in meta):
        raise _refuse("The file meta group holds elements of another group.")
    if len(data) >= meta_end + 2 and struct.unpack_from("<H", data, meta_end)[0] == 0x0002:
        raise _refuse("The file meta group length does not cover the whole group.")
    ts_node = next((node for node in meta if node.tag == 0x00020010), None)
    if ts_node is None:
        raise _refuse("The file meta information names no transfer syntax.")
    ts = data[ts_node.start : ts_node.start + ts_node.length].rstrip(b"\x00 ").decode("ascii", "strict")
    implicit, little, encapsulated = _syntax(ts)
    reader = _Reader(data, implicit=implicit, little=little, encapsulated=encapsulated)
    dataset, end = reader.dataset(meta_end, len(data), 0, until_delimiter=False)
    if end != len(data):  # pragma: no cover - the loop runs to the end or refuses
        raise _refuse("Bytes follow the data set.")
    for node in dataset:
        if node.tag >> 16 == 0x0002:
            raise _refuse("File meta elements appear inside the data set.")
    return Parsed(data, meta, dataset, ts, implicit, little, reader.pixel_span)


def tree(nodes: list[Node]) -> list:
    """Tags at each depth: ``[(tag, [[...item...], ...] or None), ...]``, for rule 2."""
    return [(n.tag, None if n.items is None else [tree(item) for item in n.items]) for n in nodes]
