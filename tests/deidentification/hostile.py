"""Hostile DICOM encodings, built byte by byte (issue 7).

Every file here is written with ``struct`` from a list of elements: nothing of ``clinic_ai`` and
nothing of pydicom is used to build them, so a defect shared by our reader and pydicom's writer
cannot hide a case. Each run draws fresh identifiers (a patient name such as ``ZQXWKJ^JOHN``, an
ID, a birth date, instance UIDs outside ``1.2.840.10008.``), and every case records the values it
planted, wherever it hid them: the tests look for each of them in everything the de-identifier
leaves behind.

The image is a 16×16 8-bit MONOCHROME2 gradient (no text, so OCR finds nothing).

The cases follow the seven classes of issue 7 ("Why") and variants of them:

1. two readings of one file (implicit VR whose first element's length spells a VR; explicit VR
   whose VR bytes are garbage);
2. undefined length on a non-sequence tag holding an item with a name (alone, and with an element
   out of order so the pydicom path is taken);
3. repeating groups outside their range and odd repeating groups;
4. UN values (>= 64 KiB and smaller) for an unlisted PN attribute and for a sequence;
5. wrong VR for a known tag (PN as LO, SQ as OB, a text attribute as OB);
6. text in values kept as structure (UIDs, SOP class in the dataset and in the file meta, TM, AS);
7. other ambiguities: a private element without its creator, a group length that lies, trailing
   bytes after the pixel data, sequences nested 40 deep, and variants without pixel data.
"""

from __future__ import annotations

import secrets
import string
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

_LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
ROWS = COLUMNS = 16
PIXELS = bytes((r * 16 + c) % 256 for r in range(ROWS) for c in range(COLUMNS))


# -- encoding -------------------------------------------------------------------------------


def pad(value: bytes, vr: str | None) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr in ("UI", "OB", "UN", None) else b" "
    return value


def explicit(tag: int, vr: str, value: bytes, *, length: int | None = None) -> bytes:
    """One Explicit VR Little Endian element (``length`` overrides the real one)."""
    n = len(value) if length is None else length
    if vr in _LONG:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, n) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), n) + value


def implicit(tag: int, value: bytes, *, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, n) + value


def element(tag: int, vr: str, value: bytes, *, is_implicit: bool) -> bytes:
    value = pad(value, vr)
    return implicit(tag, value) if is_implicit else explicit(tag, vr, value)


def item(content: bytes) -> bytes:
    return struct.pack("<HHL", *_ITEM, len(content)) + content


def undefined_item(content: bytes) -> bytes:
    return struct.pack("<HHL", *_ITEM, _UNDEFINED) + content + struct.pack("<HHL", *_ITEM_END, 0)


def sequence(tag: int, items: list[bytes], *, is_implicit: bool) -> bytes:
    body = b"".join(item(i) for i in items)
    return implicit(tag, body) if is_implicit else explicit(tag, "SQ", body)


def file_meta(transfer_syntax: str, sop_class: str, sop_instance: str) -> bytes:
    group = b"".join(
        (
            explicit(0x00020001, "OB", b"\x00\x01"),
            explicit(0x00020002, "UI", pad(sop_class.encode(), "UI")),
            explicit(0x00020003, "UI", pad(sop_instance.encode(), "UI")),
            explicit(0x00020010, "UI", pad(transfer_syntax.encode(), "UI")),
            explicit(0x00020012, "UI", pad(b"1.2.826.0.1.3680043.9.7433.1", "UI")),
        )
    )
    return explicit(0x00020000, "UL", struct.pack("<L", len(group))) + group


def part10(meta: bytes, body: bytes) -> bytes:
    return b"\x00" * 128 + b"DICM" + meta + body


# -- identifiers ----------------------------------------------------------------------------

_RARE = "QXZJKWV"  # letters that rarely meet in words, so a match is a leak, not chance


def _rare(n: int) -> str:
    return "".join(secrets.choice(_RARE) for _ in range(n))


def _digits(n: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(secrets.choice(string.digits) for _ in range(n - 1))


@dataclass(frozen=True)
class Identity:
    """One made-up patient and the instance UIDs of one file, fresh every run."""

    family: str
    name: str
    patient_id: str
    birth_date: str
    study_uid: str
    series_uid: str
    sop_uid: str
    hidden_name: str
    hidden_id: str
    hidden_uid: str

    @classmethod
    def fresh(cls) -> Identity:
        root = f"1.2.826.0.1.3680043.10.{_digits(4)}"
        family = "ZQXW" + _rare(6)
        hidden = "QZJV" + _rare(6)
        year = 1930 + secrets.randbelow(60)
        birth = f"{year}{secrets.randbelow(12) + 1:02d}{secrets.randbelow(28) + 1:02d}"
        return cls(
            family=family,
            name=f"{family}^JOHN",
            patient_id="PID" + _digits(9),
            birth_date=birth,
            study_uid=f"{root}.1.{_digits(12)}",
            series_uid=f"{root}.2.{_digits(12)}",
            sop_uid=f"{root}.3.{_digits(12)}",
            hidden_name=f"{hidden}^JANE",
            hidden_id="HID" + _digits(9),
            hidden_uid=f"{root}.9.{_digits(12)}",
        )


@dataclass
class Case:
    name: str
    klass: int
    """The class of issue 7 (1-6), 7 for the other ambiguities."""
    what: str
    data: bytes
    planted: dict[str, str] = field(default_factory=dict)
    """label -> value: none of these may survive anywhere."""


# -- the baseline ---------------------------------------------------------------------------

Elements = list[tuple[int, bytes]]
"""(tag, encoded element): the order in this list is the order in the file."""


def _text(tag: int, vr: str, text: str, is_implicit: bool) -> tuple[int, bytes]:
    return tag, element(tag, vr, text.encode("latin-1"), is_implicit=is_implicit)


def _us(tag: int, value: int, is_implicit: bool) -> tuple[int, bytes]:
    return tag, element(tag, "US", struct.pack("<H", value), is_implicit=is_implicit)


def baseline(who: Identity, *, is_implicit: bool, sop_class: str = CT_IMAGE, pixels: bool = True) -> Elements:
    """A small CT image with the patient's name, ID, birth date and instance UIDs."""
    t = is_implicit
    elements = [
        _text(0x00080016, "UI", sop_class, t),
        _text(0x00080018, "UI", who.sop_uid, t),
        _text(0x00080020, "DA", "20240311", t),
        _text(0x00080060, "CS", "CT", t),
        _text(0x00100010, "PN", who.name, t),
        _text(0x00100020, "LO", who.patient_id, t),
        _text(0x00100030, "DA", who.birth_date, t),
        _text(0x0020000D, "UI", who.study_uid, t),
        _text(0x0020000E, "UI", who.series_uid, t),
    ]
    if pixels:
        elements += [
            _us(0x00280002, 1, t),
            _text(0x00280004, "CS", "MONOCHROME2", t),
            _us(0x00280010, ROWS, t),
            _us(0x00280011, COLUMNS, t),
            _us(0x00280100, 8, t),
            _us(0x00280101, 8, t),
            _us(0x00280102, 7, t),
            _us(0x00280103, 0, t),
            (0x7FE00010, element(0x7FE00010, "OB", PIXELS, is_implicit=t)),
        ]
    return elements


def _planted(who: Identity) -> dict[str, str]:
    return {
        "PatientName": who.name,
        "family name": who.family,
        "PatientID": who.patient_id,
        "PatientBirthDate": who.birth_date,
        "StudyInstanceUID": who.study_uid,
        "SeriesInstanceUID": who.series_uid,
        "SOPInstanceUID": who.sop_uid,
    }


def _hidden(who: Identity) -> dict[str, str]:
    return {"hidden name": who.hidden_name, "hidden family name": who.hidden_name.split("^")[0]}


def _add(elements: Elements, *extra: tuple[int, bytes]) -> Elements:
    return sorted([*elements, *extra], key=lambda e: e[0])


def _build(
    who: Identity, elements: Elements, *, is_implicit: bool, sop_class: str = CT_IMAGE, sort: bool = True
) -> bytes:
    if sort:
        elements = sorted(elements, key=lambda e: e[0])
    meta = file_meta(IMPLICIT if is_implicit else EXPLICIT, sop_class, who.sop_uid)
    return part10(meta, b"".join(chunk for _, chunk in elements))


def _out_of_order(elements: Elements) -> Elements:
    """Swap Modality and StudyDate: pydicom reads on, our byte-level parser refuses."""
    out = sorted(elements, key=lambda e: e[0])
    i = next(n for n, (tag, _) in enumerate(out) if tag == 0x00080020)
    out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _hidden_dataset(who: Identity, *, is_implicit: bool) -> bytes:
    """An item's content: the hidden patient's name and ID, and an instance UID."""
    return b"".join(
        (
            element(0x00081155, "UI", pad(who.hidden_uid.encode(), "UI"), is_implicit=is_implicit),
            element(0x00100010, "PN", who.hidden_name.encode(), is_implicit=is_implicit),
            element(0x00100020, "LO", who.hidden_id.encode(), is_implicit=is_implicit),
        )
    )


# -- class 1: two readings of one file ------------------------------------------------------


def _two_readings(who: Identity, vr: str) -> Case:
    """Implicit VR: the first element (ImageType) is 'tag, length' where the length's bytes spell
    ``vr``: pydicom switches to explicit VR and reads a second, complete image hidden inside the
    value the implicit reading sees (the real patient's name, ID, birth date and SOP instance UID,
    and a pixel data element that swallows the rest of the file), so a reader that inspects the
    file with pydicom accepts it and only the de-identifier can tell."""
    length = struct.unpack("<L", vr.encode() + b"\x00\x00")[0]
    rest = b"".join(chunk for _, chunk in baseline(who, is_implicit=True))
    hidden = b"".join(chunk for tag, chunk in baseline(who, is_implicit=False) if tag != 0x7FE00010)
    # Explicit reading: (0008,0008) VR, [reserved + 4-byte length 0 | 2-byte length 0], then the
    # hidden elements, then pixel data running to the end of the file.
    lead = b"\x00\x00\x00\x00" if vr in _LONG else b""
    used = len(lead) + len(hidden) + 12
    filler = b"\x00" * (length - used)
    swallow = explicit(0x7FE00010, "OB", b"", length=len(filler) + len(rest))
    first = struct.pack("<HHL", 0x0008, 0x0008, length)
    value = lead + hidden + swallow + filler
    assert len(value) == length
    # The implicit reading: ImageType (its length's bytes spelling the VR), then the real dataset.
    data = part10(file_meta(IMPLICIT, CT_IMAGE, who.sop_uid), first + value + rest)
    return Case(f"two-readings-{vr.lower()}", 1, f"implicit VR, first length spells {vr!r}", data, _planted(who))


def _explicit_with_garbage_vrs(who: Identity) -> Case:
    """Explicit VR declared, implicit VR written: every 'VR' is two bytes of a length."""
    data = _build(who, baseline(who, is_implicit=True), is_implicit=False)
    return Case("explicit-garbage-vr", 1, "explicit VR declared, VR bytes are lengths", data, _planted(who))


# -- class 2: undefined length on non-sequence tags ------------------------------------------


def _undefined(tag: int, who: Identity, *, is_implicit: bool) -> tuple[int, bytes]:
    inner = undefined_item(_hidden_dataset(who, is_implicit=is_implicit))
    end = struct.pack("<HHL", *_SEQ_END, 0)
    if is_implicit:
        return tag, implicit(tag, inner + end, length=_UNDEFINED)
    return tag, explicit(tag, "UN", inner + end, length=_UNDEFINED)


def _undefined_length(who: Identity, tag: int, label: str, *, disorder: bool, pixels: bool = True) -> Case:
    elements = _add(baseline(who, is_implicit=True, pixels=pixels), _undefined(tag, who, is_implicit=True))
    if disorder:
        elements = _out_of_order(elements)
    data = _build(who, elements, is_implicit=True, sort=False)
    name = f"undefined-length-{label}" + ("-out-of-order" if disorder else "") + ("" if pixels else "-no-pixels")
    what = f"{label} with undefined length holding an item with a name" + (", out of order" if disorder else "")
    return Case(name, 2, what, data, _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id})


# -- class 3: repeating groups ---------------------------------------------------------------


def _repeating_out_of_range(who: Identity) -> Case:
    elements = _add(
        baseline(who, is_implicit=False),
        _text(0x50202500, "LO", who.hidden_name, False),  # CurveLabel of a group past 501E
        _text(0x60204000, "LT", f"Overlay of {who.hidden_name}", False),  # OverlayComments past 601E
    )
    data = _build(who, elements, is_implicit=False)
    return Case(
        "repeating-groups-out-of-range",
        3,
        "(5020,2500) and (6020,4000) hold a name",
        data,
        _planted(who) | _hidden(who),
    )


def _repeating_odd(who: Identity) -> Case:
    elements = _add(
        baseline(who, is_implicit=False),
        (0x60FF3000, explicit(0x60FF3000, "OW", pad(who.hidden_name.encode(), "OW"))),
        _text(0x50FF2500, "LO", who.hidden_name, False),
    )
    data = _build(who, elements, is_implicit=False)
    return Case(
        "repeating-groups-odd", 3, "(60FF,3000) and (50FF,2500) hold a name", data, _planted(who) | _hidden(who)
    )


# -- class 4: UN ----------------------------------------------------------------------------

_EVALUATOR_NAME = 0x00142006  # PN, not in Annex E
_ANATOMIC_REGION_SEQUENCE = 0x00082218  # SQ, not in Annex E


def _un_person_name(who: Identity, *, big: bool) -> Case:
    value = who.hidden_name.encode()
    if big:
        value = value.ljust(0x10000, b" ")  # 64 KiB: too long for PN's 16-bit length
    elements = _add(
        baseline(who, is_implicit=False), (_EVALUATOR_NAME, explicit(_EVALUATOR_NAME, "UN", pad(value, "UN")))
    )
    data = _build(who, elements, is_implicit=False)
    size = ">= 64 KiB" if big else "< 64 KiB"
    return Case(
        f"un-person-name-{'64k' if big else 'small'}",
        4,
        f"EvaluatorName as UN {size}",
        data,
        _planted(who) | _hidden(who),
    )


def _un_sequence(who: Identity, *, big: bool) -> Case:
    content = _hidden_dataset(who, is_implicit=True)
    if big:  # a code meaning long enough to make the item 64 KiB
        content = element(0x00080104, "LO", b"X" * 0x10000, is_implicit=True) + content
        content = sorted_implicit(content)
    value = item(content)
    elements = _add(
        baseline(who, is_implicit=False), (_ANATOMIC_REGION_SEQUENCE, explicit(_ANATOMIC_REGION_SEQUENCE, "UN", value))
    )
    data = _build(who, elements, is_implicit=False)
    planted = _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id, "hidden UID": who.hidden_uid}
    size = ">= 64 KiB" if big else "< 64 KiB"
    return Case(f"un-sequence-{'64k' if big else 'small'}", 4, f"AnatomicRegionSequence as UN {size}", data, planted)


def _un_unknown_tag_with_dataset(who: Identity) -> Case:
    """UN on a public tag no dictionary knows, its value an item with a name inside."""
    unknown = 0x00320099  # (0032,0099): even, unknown to the data dictionary
    value = item(_hidden_dataset(who, is_implicit=True))
    elements = _add(baseline(who, is_implicit=False), (unknown, explicit(unknown, "UN", value)))
    data = _build(who, elements, is_implicit=False)
    planted = _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id, "hidden UID": who.hidden_uid}
    return Case("un-unknown-tag-with-dataset", 4, "(0032,0099) as UN holding an item with a name", data, planted)


def sorted_implicit(content: bytes) -> bytes:
    """Re-order the implicit VR elements of an item by tag."""
    out, pos = [], 0
    while pos < len(content):
        group, elem, length = struct.unpack_from("<HHL", content, pos)
        out.append(((group << 16) | elem, content[pos : pos + 8 + length]))
        pos += 8 + length
    return b"".join(chunk for _, chunk in sorted(out))


# -- class 5: wrong VR -----------------------------------------------------------------------


def _person_name_as_lo(who: Identity) -> Case:
    elements = _add(baseline(who, is_implicit=False), _text(_EVALUATOR_NAME, "LO", who.hidden_name, False))
    data = _build(who, elements, is_implicit=False)
    return Case("wrong-vr-person-name-as-lo", 5, "EvaluatorName sent as LO", data, _planted(who) | _hidden(who))


def _sequence_as_ob(who: Identity) -> Case:
    value = item(_hidden_dataset(who, is_implicit=False))
    elements = _add(
        baseline(who, is_implicit=False), (_ANATOMIC_REGION_SEQUENCE, explicit(_ANATOMIC_REGION_SEQUENCE, "OB", value))
    )
    data = _build(who, elements, is_implicit=False)
    planted = _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id, "hidden UID": who.hidden_uid}
    return Case("wrong-vr-sequence-as-ob", 5, "AnatomicRegionSequence sent as OB with a dataset inside", data, planted)


def _text_as_ob(who: Identity) -> Case:
    manufacturer = 0x00080070  # LO, kept
    elements = _add(
        baseline(who, is_implicit=False),
        (manufacturer, explicit(manufacturer, "OB", pad(who.hidden_name.encode(), "OB"))),
    )
    data = _build(who, elements, is_implicit=False)
    return Case(
        "wrong-vr-text-as-ob", 5, "Manufacturer (LO) sent as OB holding a name", data, _planted(who) | _hidden(who)
    )


# -- class 6: text in values kept as structure -----------------------------------------------


def _uid_with_text(who: Identity) -> Case:
    text_uid = f"1.2.840.10008.{who.family}^JOHN"
    elements = [e for e in baseline(who, is_implicit=False) if e[0] != 0x0020000D]
    elements = _add(elements, _text(0x0020000D, "UI", text_uid, False))
    data = _build(who, elements, is_implicit=False)
    planted = {k: v for k, v in _planted(who).items() if k != "StudyInstanceUID"} | {"text UID": text_uid}
    return Case("text-in-study-uid", 6, "StudyInstanceUID 1.2.840.10008.<name>", data, planted)


def _sop_class_text(who: Identity, *, where: str) -> Case:
    text = f"{who.hidden_name.split('^')[0]} PRIVATE CLASS"
    in_dataset = where in ("dataset", "both")
    in_meta = where in ("meta", "both")
    elements = [e for e in baseline(who, is_implicit=False) if e[0] != 0x00080016]
    elements = _add(elements, _text(0x00080016, "UI", text if in_dataset else CT_IMAGE, False))
    meta = file_meta(EXPLICIT, text if in_meta else CT_IMAGE, who.sop_uid)
    data = part10(meta, b"".join(chunk for _, chunk in elements))
    planted = _planted(who) | {"hidden family name": who.hidden_name.split("^")[0]}
    return Case(f"text-in-sop-class-{where}", 6, f"SOPClassUID free text ({where})", data, planted)


def _referenced_sop_class_text(who: Identity) -> Case:
    ref = b"".join(
        (
            explicit(0x00081150, "UI", pad(f"{who.hidden_name.split('^')[0]}.CLASS".encode(), "UI")),
            explicit(0x00081155, "UI", pad(who.hidden_uid.encode(), "UI")),
        )
    )
    elements = _add(baseline(who, is_implicit=False), (0x00081140, sequence(0x00081140, [ref], is_implicit=False)))
    data = _build(who, elements, is_implicit=False)
    planted = _planted(who) | {"hidden family name": who.hidden_name.split("^")[0], "hidden UID": who.hidden_uid}
    return Case("text-in-referenced-sop-class", 6, "ReferencedSOPClassUID holds text", data, planted)


def _time_and_age_text(who: Identity) -> Case:
    age = _rare(4)
    elements = _add(
        baseline(who, is_implicit=False),
        _text(0x00080030, "TM", who.family[:16], False),  # StudyTime
        _text(0x00101010, "AS", age, False),  # PatientAge
    )
    data = _build(who, elements, is_implicit=False)
    return Case(
        "text-in-tm-and-as", 6, "StudyTime and PatientAge hold text", data, _planted(who) | {"PatientAge text": age}
    )


# -- class 7: other ambiguities --------------------------------------------------------------


def _private_without_creator(who: Identity) -> Case:
    elements = _add(baseline(who, is_implicit=False), _text(0x00091010, "LO", who.hidden_name, False))
    data = _build(who, elements, is_implicit=False)
    return Case("private-without-creator", 7, "(0009,1010) without (0009,0010)", data, _planted(who) | _hidden(who))


def _group_length_lie(who: Identity) -> Case:
    group = b"".join(chunk for tag, chunk in baseline(who, is_implicit=False) if tag >> 16 == 0x0010)
    lie = explicit(0x00100000, "UL", struct.pack("<L", len(group) - 18))  # skips the name for a trusting reader
    elements = _add(baseline(who, is_implicit=False), (0x00100000, lie))
    data = _build(who, elements, is_implicit=False)
    return Case("group-length-lie", 7, "(0010,0000) says less than the group holds", data, _planted(who))


def _trailing_bytes(who: Identity) -> Case:
    data = _build(who, baseline(who, is_implicit=False), is_implicit=False) + who.hidden_name.encode() + b"\x00"
    return Case("trailing-bytes-with-name", 7, "a name after the pixel data", data, _planted(who) | _hidden(who))


def _deep_nesting(who: Identity, depth: int = 40) -> Case:
    inner = _hidden_dataset(who, is_implicit=False)
    for _ in range(depth):
        inner = sequence(0x00081115, [inner], is_implicit=False)  # ReferencedSeriesSequence, nested
    elements = _add(baseline(who, is_implicit=False), (0x00081115, inner))
    data = _build(who, elements, is_implicit=False)
    planted = _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id, "hidden UID": who.hidden_uid}
    return Case("nested-40-deep", 7, "sequences nested 40 deep, a name at the bottom", data, planted)


def _text_sr_without_pixels(who: Identity) -> Case:
    """A non-image object (no pixel data) with an undefined-length UI holding a name."""
    elements = _add(
        baseline(who, is_implicit=True, sop_class=BASIC_TEXT_SR, pixels=False),
        _undefined(0x00081150, who, is_implicit=True),
    )
    data = _build(who, elements, is_implicit=True, sop_class=BASIC_TEXT_SR)
    planted = _planted(who) | _hidden(who) | {"hidden ID": who.hidden_id}
    return Case("undefined-length-ui-text-sr-no-pixels", 7, "SR without pixels, undefined-length UI", data, planted)


def _un_without_pixels(who: Identity) -> Case:
    value = pad(who.hidden_name.encode(), "UN")
    elements = _add(
        baseline(who, is_implicit=False, pixels=False), (_EVALUATOR_NAME, explicit(_EVALUATOR_NAME, "UN", value))
    )
    data = _build(who, elements, is_implicit=False)
    return Case(
        "un-person-name-no-pixels", 7, "CT without pixel data, EvaluatorName as UN", data, _planted(who) | _hidden(who)
    )


_BUILDERS: list[Callable[[Identity], Case]] = [
    lambda w: _two_readings(w, "OB"),
    lambda w: _two_readings(w, "CS"),
    lambda w: _two_readings(w, "UN"),
    _explicit_with_garbage_vrs,
    lambda w: _undefined_length(w, 0x00180015, "body-part", disorder=False),
    lambda w: _undefined_length(w, 0x00180015, "body-part", disorder=True),
    lambda w: _undefined_length(w, 0x00081050, "person-name", disorder=False),
    lambda w: _undefined_length(w, 0x00081050, "person-name", disorder=True),
    lambda w: _undefined_length(w, 0x00081150, "uid", disorder=False),
    lambda w: _undefined_length(w, 0x00081150, "uid", disorder=True),
    lambda w: _undefined_length(w, 0x00180015, "body-part", disorder=False, pixels=False),
    _repeating_out_of_range,
    _repeating_odd,
    lambda w: _un_person_name(w, big=True),
    lambda w: _un_person_name(w, big=False),
    lambda w: _un_sequence(w, big=True),
    lambda w: _un_sequence(w, big=False),
    _un_unknown_tag_with_dataset,
    _person_name_as_lo,
    _sequence_as_ob,
    _text_as_ob,
    _uid_with_text,
    lambda w: _sop_class_text(w, where="dataset"),
    lambda w: _sop_class_text(w, where="meta"),
    lambda w: _sop_class_text(w, where="both"),
    _referenced_sop_class_text,
    _time_and_age_text,
    _private_without_creator,
    _group_length_lie,
    _trailing_bytes,
    _deep_nesting,
    _text_sr_without_pixels,
    _un_without_pixels,
]


def build_cases() -> list[Case]:
    """Every hostile case, each with its own fresh patient and UIDs."""
    cases = [build(Identity.fresh()) for build in _BUILDERS]
    assert len({c.name for c in cases}) == len(cases)
    return cases


def clean_case() -> Case:
    """The baseline itself, well formed: what every hostile case is a variant of."""
    who = Identity.fresh()
    return Case(
        "clean",
        0,
        "the well-formed baseline",
        _build(who, baseline(who, is_implicit=False), is_implicit=False),
        _planted(who),
    )
