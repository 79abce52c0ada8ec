"""Part 10 files built byte by byte with struct (never with the code under test).

A data set is a dict ``{tag: (vr, value)}``; ``value`` is bytes, a str (encoded ASCII and padded),
or, for SQ, a list of item dicts. Elements are written in the dict's order unless ``sort=True``,
so a test can put them out of order on purpose.
"""

from __future__ import annotations

import struct

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
OUR_IMPLEMENTATION = "2.25.238617640568329922866947457739796975674"
PSEUDONYM = "ANON-ABCDEFGHIJKLMNOPQRST"
LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}
UNDEFINED = 0xFFFFFFFF


def text(value: str, vr: str = "LO") -> bytes:
    raw = value.encode("latin-1")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def header(tag: int, vr: str, length: int, *, implicit: bool = False, big: bool = False) -> bytes:
    o = ">" if big else "<"
    if implicit:
        return struct.pack(o + "HHL", tag >> 16, tag & 0xFFFF, length)
    if vr in LONG:
        return struct.pack(o + "HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack(o + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def encode(elements: dict, *, implicit: bool = False, big: bool = False, sort: bool = True) -> bytes:
    o = ">" if big else "<"
    out = b""
    for tag in sorted(elements) if sort else elements:
        vr, value = elements[tag]
        if vr == "SQ":
            body = b""
            for item in value:
                content = encode(item, implicit=implicit, big=big, sort=sort)
                body += struct.pack(o + "HHL", 0xFFFE, 0xE000, len(content)) + content
            out += header(tag, vr, len(body), implicit=implicit, big=big) + body
            continue
        raw = text(value, vr) if isinstance(value, str) else value
        out += header(tag, vr, len(raw), implicit=implicit, big=big) + raw
    return out


def meta(transfer_syntax: str, sop_class: str, sop_instance: str, implementation: str = OUR_IMPLEMENTATION) -> bytes:
    group = encode(
        {
            0x00020001: ("OB", b"\x00\x01"),
            0x00020002: ("UI", sop_class),
            0x00020003: ("UI", sop_instance),
            0x00020010: ("UI", transfer_syntax),
            0x00020012: ("UI", implementation),
            0x00020013: ("SH", "CLINICAI_DEID1.0"),
        }
    )
    return b"\x00" * 128 + b"DICM" + header(0x00020000, "UL", 4) + struct.pack("<L", len(group)) + group


def part10(
    elements: dict, *, transfer_syntax: str = EXPLICIT_LE, sort: bool = True, body: bytes | None = None
) -> bytes:
    implicit, big = transfer_syntax == IMPLICIT_LE, transfer_syntax == EXPLICIT_BE
    sop_class = elements.get(0x00080016, ("UI", CT_STORAGE))[1]
    sop_instance = elements.get(0x00080018, ("UI", "2.25.1"))[1]
    if body is None:
        body = encode(elements, implicit=implicit, big=big, sort=sort)
    return meta(transfer_syntax, sop_class, sop_instance) + body


def code(value: str, meaning: str) -> dict:
    return {0x00080100: ("SH", value), 0x00080102: ("SH", "DCM"), 0x00080104: ("LO", meaning)}


# The original: what an upload looked like (planted identifiers).
ORIGINAL_NAME = "Doe^Jane^Quincy"
ORIGINAL_ID = "MRN55501234"
ORIGINAL_ACCESSION = "ACC98765432"
ORIGINAL_STUDY_UID = "1.2.826.0.1.3680043.55501234.2.1"
ORIGINAL_INSTANCE_UID = "1.2.826.0.1.3680043.55501234.2.1.7"
ORIGINAL_STUDY_DATE = "20240311"


def original_elements() -> dict:
    return {
        0x00080016: ("UI", CT_STORAGE),
        0x00080018: ("UI", ORIGINAL_INSTANCE_UID),
        0x00080020: ("DA", ORIGINAL_STUDY_DATE),
        0x00080030: ("TM", "093015"),
        0x00080050: ("SH", ORIGINAL_ACCESSION),
        0x00080060: ("CS", "CT"),
        0x00080070: ("LO", "ACME"),
        0x00100010: ("PN", ORIGINAL_NAME),
        0x00100020: ("LO", ORIGINAL_ID),
        0x00100030: ("DA", "19610314"),
        0x00101010: ("AS", "063Y"),
        0x0020000D: ("UI", ORIGINAL_STUDY_UID),
        0x00280010: ("US", struct.pack("<H", 2)),
        0x00280011: ("US", struct.pack("<H", 2)),
        0x7FE00010: ("OW", b"\x01\x00\x02\x00\x03\x00\x04\x00"),
    }


def original(transfer_syntax: str = EXPLICIT_LE) -> bytes:
    return part10(original_elements(), transfer_syntax=transfer_syntax)


def released_elements(*, big: bool = False) -> dict:
    """A correct de-identified output of :func:`original` (dates kept shifted, characteristics kept)."""
    o = ">" if big else "<"
    return {
        0x00080016: ("UI", CT_STORAGE),
        0x00080018: ("UI", "2.25.111111111111111111111111111111111"),
        0x00080020: ("DA", "20210105"),
        0x00080030: ("TM", "093015"),
        0x00080050: ("SH", ""),
        0x00080060: ("CS", "CT"),
        0x00080070: ("LO", "ACME"),
        0x00100010: ("PN", PSEUDONYM),
        0x00100020: ("LO", PSEUDONYM),
        0x00101010: ("AS", "063Y"),
        0x00120062: ("CS", "YES"),
        0x00120063: ("LO", "clinic_ai deidentification 1.0"),
        0x00120064: (
            "SQ",
            [
                code("113100", "Basic Application Confidentiality Profile"),
                code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
                code("113108", "Retain Patient Characteristics Option"),
            ],
        ),
        0x0020000D: ("UI", "2.25.222222222222222222222222222222222"),
        0x00280010: ("US", struct.pack(o + "H", 2)),
        0x00280011: ("US", struct.pack(o + "H", 2)),
        0x00280303: ("CS", "MODIFIED"),
        0x7FE00010: ("OW", struct.pack(o + "4H", 1, 2, 3, 4)),
    }


def released(changes: dict | None = None, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """:func:`released_elements` with ``changes`` (``{tag: (vr, value)}``, ``None`` removes)."""
    elements = released_elements(big=transfer_syntax == EXPLICIT_BE)
    for tag, value in (changes or {}).items():
        if value is None:
            elements.pop(tag, None)
        else:
            elements[tag] = value
    return part10(elements, transfer_syntax=transfer_syntax)
