"""Rule 5's first half: the identifying values of the ORIGINAL, read the gate's own way.

The original is hostile until proven otherwise, so this walker never trusts one reading. It walks
the data set as Implicit VR Little Endian, Explicit VR Little Endian and Explicit VR Big Endian
(each reading stops where it stops making sense, keeping what it found), treats every item and
undefined-length value as transparent (it reads on inside them), looks for nested elements inside
opaque values (OB, OW, UN, UT) in all three readings, and scans the raw bytes outside the pixel
data for UID-shaped and name-shaped strings. An element counts as identifying when either its
stated VR or the dictionary's VR says so, so a name sent under a wrong VR is still a name.

Collected (each value also split into its backslash-separated parts):

* every UI value outside ``1.2.840.10008.`` (except the well-known coding-scheme OIDs);
* every PN value and each of its components of 3 characters or more;
* every ID-like value: an LO/SH/UC element listed in Table E.1-1 whose keyword ends in ID, IDs,
  Number, Numbers or Identifier, plus a fixed list (PatientID, OtherPatientIDs, AccessionNumber,
  ...), 3+ characters (an unlisted one, such as ImageID, is released as it came)
  (not CS: StudyStatusID "COMPLETED" is an enumeration, not an identifier);
* every DA value and the date part of every DT value, as ``YYYYMMDD`` and ``YYYY-MM-DD``.

Not searched for (finding them proves nothing, and they are what a correct output must hold):
the fixed texts the gate itself requires or allows in an output (dummy values such as
``ANONYMIZED`` and ``19000101``, the de-identification markers' words, the pseudonym), our own
implementation class UID, well-known coding-scheme OIDs and the few vendor SOP classes a released
image may reference (``dictionary.VENDOR_SOP_CLASSES``). A shifted date of the output that
happens to equal another original date IS refused: the gate cannot tell the two apart, and it
fails closed.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field

from pydicom.datadict import DicomDictionary

from .dictionary import (
    CODING_SCHEME_OIDS,
    DICOM_ROOT,
    ITEM,
    ITEM_DELIMITER,
    LONG_HEADER_VRS,
    OUR_IMPLEMENTATION_CLASS_UID,
    PIXEL_DATA,
    SEQUENCE_DELIMITER,
    VENDOR_SOP_CLASSES,
    VR_BYTES,
    profile_rows,
)

__all__ = ["Needles", "harvest"]

UNDEFINED = 0xFFFFFFFF
MAX_DEPTH = 6
MAX_ELEMENTS = 200_000
_OPAQUE = frozenset({"OB", "OW", "UN", "UT"})
_ID_KEYWORDS = frozenset(
    {
        "PatientID",
        "OtherPatientIDs",
        "AccessionNumber",
        "MedicalRecordLocator",
        "StudyID",
        "IssuerOfPatientID",
        "AdmissionID",
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepID",
        "FillerOrderNumberImagingServiceRequest",
        "PlacerOrderNumberImagingServiceRequest",
        "ServiceEpisodeID",
        "PatientInsurancePlanCodeSequence",
        "MilitaryRank",
        "PatientTelephoneNumbers",
        "DeviceSerialNumber",
        # Person identifiers Table E.1-1 does not list (so the profile keeps them): searched for, so
        # a file carrying one is refused rather than released with it.
        "OwnerID",
        "BoardingPassID",
        "ItineraryID",
        "BreedRegistrationNumber",
    }
)
_ID_SUFFIXES = ("ID", "IDs", "Number", "Numbers", "Identifier")
_ID_VRS = frozenset({"LO", "SH", "UC"})
# A UID not preceded by a digit or a dot. The first digit comes first in the pattern (its
# lookbehind after it) so that the engine looks for it quickly instead of trying every position.
_UID_RAW = re.compile(rb"[012](?<=(?<![0-9.])[012])(?:\.(?:0|[1-9][0-9]*)){3,}(?![0-9])")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")

FIXED_OUTPUT_WORDS = frozenset(
    w.lower()
    for w in (
        "ANONYMIZED",
        "ANON",
        "YES",
        "NO",
        "MODIFIED",
        "REMOVED",
        "DCM",
        "clinic_ai",
        "deidentification",
        "Basic",
        "Application",
        "Confidentiality",
        "Profile",
        "Clean",
        "Pixel",
        "Data",
        "Descriptors",
        "Option",
        "Retain",
        "Longitudinal",
        "Temporal",
        "Information",
        "Modified",
        "Dates",
        "Patient",
        "Characteristics",
        "DICOM",
        "Table",
    )
)
"""Words of the de-identification markers and dummies: never a reason to refuse on their own."""
_DUMMY_DATES = frozenset({"19000101"})


@dataclass
class Needles:
    uids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    """Whole PN values (searched as substrings, case-insensitively)."""
    words: set[str] = field(default_factory=set)
    """PN components and ID-like values (searched as whole words, case-insensitively)."""
    dates: set[str] = field(default_factory=set)
    """``YYYYMMDD`` (searched not preceded by a digit) and ``YYYY-MM-DD``."""


def _vr_of(tag: int) -> str:
    entry = DicomDictionary.get(tag)
    return entry[0] if entry else ""


@functools.lru_cache(maxsize=16384)
def _kinds(tag: int, stated_vr: str) -> tuple[bool, bool, bool, bool, bool]:
    """(UID, name, date, datetime, ID-like) for an element, by its stated and its dictionary VR."""
    dict_vr = _vr_of(tag) if not tag >> 16 & 1 else ""
    vrs = {stated_vr, *dict_vr.split(" or ")}
    name = _keyword(tag)
    # Named as an identifier AND listed in Table E.1-1 (the profile does not keep it as it is):
    # an unlisted one (ImageID, OpticalPathIdentifier, WedgeID) names equipment or structure, and
    # is released as it came, so its value cannot be a reason to refuse.
    id_like = (
        bool(vrs & _ID_VRS)
        and bool(name)
        and (name in _ID_KEYWORDS or (name.endswith(_ID_SUFFIXES) and tag in profile_rows()))
    )
    return "UI" in vrs, "PN" in vrs, "DA" in vrs, "DT" in vrs, id_like


def _keyword(tag: int) -> str:
    entry = DicomDictionary.get(tag)
    return entry[4] if entry else ""


def _texts(raw: bytes) -> list[str]:
    out = []
    # ASCII reads the same in both: the second reading would add nothing.
    for codec in ("utf-8",) if raw.isascii() else ("utf-8", "latin-1"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        for part in text.split("\\"):
            part = part.strip(" \x00\t\r\n")
            # Binary noise (a misreading's "value") is not a needle: only printable text is.
            if part and len(part) <= 1024 and part.isprintable() and part not in out:
                out.append(part)
    return out


def _valid_date(text: str) -> str | None:
    m = _DATE.match(text)
    if not m:
        return None
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31 and year >= 1000):
        return None
    return m.group(0)


_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' .,-")


def _caret_runs(piece: bytes):
    """Name-shaped runs around each ``^`` (letters, spaces, ' . , -), as text. Cheaper than a
    regular expression tried at every letter: carets are rare outside person names."""
    end = -1
    i = piece.find(b"^")
    while i >= 0:
        if i > end:
            start = i
            while start > 0 and piece[start - 1] in _NAME_BYTES and i - start < 64:
                start -= 1
            while start < i and not chr(piece[start]).isalpha():  # a name begins at a letter
                start += 1  # ("Tech: Smith^John", ",Smith^John": the name is still found)
            stop = i + 1
            while stop < len(piece) and (piece[stop] in _NAME_BYTES or piece[stop] == 0x5E) and stop - i < 192:
                stop += 1
            if start < i and stop > i + 1:
                end = stop  # (only a run yielded covers the carets after it: "^Doe^John" gives "Doe^John")
                yield piece[start:stop].decode("latin-1")
        i = piece.find(b"^", i + 1)


_STRUCTS = {
    little: (struct.Struct(order + "HH"), struct.Struct(order + "H"), struct.Struct(order + "L"))
    for little, order in ((True, "<"), (False, ">"))
}
_VR_BY_CODE = {
    little: {struct.unpack(order + "H", vr)[0]: vr.decode("ascii") for vr in VR_BYTES}
    for little, order in ((True, "<"), (False, ">"))
}
_DELIMITERS = frozenset({ITEM, ITEM_DELIMITER, SEQUENCE_DELIMITER})
_SEQUENCE = "sequence"
_CLASSES: dict[tuple[int, str], object] = {}


def _classify(tag: int, vr: str):
    """How :meth:`_Harvester.walk` treats an element (``vr`` empty: read without one):
    ``_SEQUENCE`` (its items are walked in place), else (a VR that may hide a dataset, a value
    worth reading), as ``vr``, the dictionary and :func:`_kinds` say."""
    dict_vr = _vr_of(tag) if vr == "" else ""
    if vr == "SQ" or dict_vr == "SQ":
        kind: object = _SEQUENCE
    else:
        kind = (vr in _OPAQUE or dict_vr in _OPAQUE, any(_kinds(tag, vr)))
    if len(_CLASSES) > 50_000:  # tags read from binary noise are many: keep the cache bounded
        _CLASSES.clear()
    _CLASSES[(tag, vr)] = kind
    return kind


class _Harvester:
    def __init__(self) -> None:
        self.needles = Needles()
        self.budget = MAX_ELEMENTS
        self.pixel_spans: list[tuple[int, int]] = []

    # -- what an element's value contributes -------------------------------------------------
    def add_uid(self, text: str) -> None:
        if (
            len(text) >= 3
            and not text.startswith(DICOM_ROOT)
            and text not in CODING_SCHEME_OIDS
            and text not in VENDOR_SOP_CLASSES
            and text != OUR_IMPLEMENTATION_CLASS_UID
            and re.fullmatch(r"[0-9.]+", text)
        ):
            self.needles.uids.add(text)

    def add_name(self, text: str) -> None:
        if len(text.strip("^= ")) < 3:
            return
        if text.strip("^= ").lower() not in FIXED_OUTPUT_WORDS:
            self.needles.names.add(text.strip("^= "))
        for group in text.split("="):
            for component in group.split("^"):
                self.add_word(component)

    def add_word(self, text: str) -> None:
        text = text.strip(" \x00")
        if len(text) >= 3 and text.lower() not in FIXED_OUTPUT_WORDS and not text.startswith("ANON-"):
            self.needles.words.add(text)

    def add_date(self, text: str) -> None:
        date = _valid_date(text)
        if date and date not in _DUMMY_DATES:
            self.needles.dates.add(date)

    def element(self, tag: int, stated_vr: str, raw: bytes) -> None:
        uid, name, date, datetime_, id_like = _kinds(tag, stated_vr)
        if not raw or not (uid or name or date or datetime_ or id_like):
            return
        texts = _texts(raw)
        for text in texts:
            if uid:
                self.add_uid(text)
            if name:
                self.add_name(text)
            if date:
                for part in text.split("-"):
                    self.add_date(part.strip())
            if datetime_:
                self.add_date(text)
            if id_like:
                self.add_word(text)

    # -- the walk ------------------------------------------------------------------------------
    def walk(self, data: bytes, pos: int, end: int, implicit: bool, little: bool, depth: int) -> None:
        """Read elements from ``pos`` until the reading stops making sense. Items, delimiters and
        undefined-length values are stepped into, not over."""
        tag_fmt, u16, u32 = _STRUCTS[little]
        unpack_tag, unpack_u16, unpack_u32 = tag_fmt.unpack_from, u16.unpack_from, u32.unpack_from
        vr_by_code = _VR_BY_CODE[little]
        classes = _CLASSES
        budget = self.budget
        try:
            while pos + 8 <= end and budget > 0:
                budget -= 1
                group, elem = unpack_tag(data, pos)
                tag = group << 16 | elem
                if group == 0xFFFE and tag in _DELIMITERS:
                    pos += 8  # step inside the item (or past the delimiter): its content is elements
                    continue
                if implicit:
                    vr, length, start = "", unpack_u32(data, pos + 4)[0], pos + 8
                else:
                    vr = vr_by_code.get(unpack_u16(data, pos + 4)[0])
                    if vr is None:
                        return
                    if vr in LONG_HEADER_VRS:
                        if pos + 12 > end:
                            return
                        length, start = unpack_u32(data, pos + 8)[0], pos + 12
                    else:
                        length, start = unpack_u16(data, pos + 6)[0], pos + 8
                if length == UNDEFINED:
                    if tag == PIXEL_DATA and depth == 0:
                        self.budget = budget
                        pos = self.skip_fragments(data, start, end, tag_fmt, u32)
                        budget = self.budget
                        continue
                    pos = start  # a sequence, or a value pretending to be one: read on inside
                    continue
                if start + length > end:
                    # A value claiming more than there is: what there is still counts, then stop.
                    self.element(tag, vr, data[start : min(end, start + 65536)])
                    return
                if tag == PIXEL_DATA and depth == 0:
                    self.pixel_spans.append((start, start + length))
                    pos = start + length
                    continue
                kind = classes.get((tag, vr))
                if kind is None:
                    kind = _classify(tag, vr)
                if kind is _SEQUENCE:
                    pos = start  # walk the items in place
                    continue
                if length:
                    opaque = kind[0] and length >= 8 and depth < MAX_DEPTH
                    if opaque or kind[1]:  # most elements are neither: no copy
                        raw = data[start : start + length]
                        self.element(tag, vr, raw)
                        if opaque:
                            self.budget = budget
                            self.nested(raw, depth + 1)
                            budget = self.budget
                pos = start + length
        finally:
            self.budget = budget

    def skip_fragments(self, data: bytes, pos: int, end: int, tag_fmt, u32) -> int:
        first = pos
        while pos + 8 <= end:
            group, elem = tag_fmt.unpack_from(data, pos)
            length = u32.unpack_from(data, pos + 4)[0]
            if (group << 16 | elem) == SEQUENCE_DELIMITER:
                self.pixel_spans.append((first, pos))
                return pos + 8
            if (group << 16 | elem) != ITEM or length == UNDEFINED:
                break
            pos += 8 + length
        self.pixel_spans.append((first, min(pos, end)))
        return end

    def nested(self, raw: bytes, depth: int) -> None:
        for implicit, little in ((True, True), (False, True), (False, False)):
            self.walk(raw, 0, len(raw), implicit, little, depth)

    def raw_scan(self, data: bytes) -> None:
        spans = sorted(self.pixel_spans)
        pieces, pos = [], 0
        for start, stop in spans:
            if start > pos:
                pieces.append(data[pos:start])
            pos = max(pos, stop)
        pieces.append(data[pos:])
        for piece in pieces:
            for match in _UID_RAW.finditer(piece):
                text = match.group(0).decode("ascii")
                if len(text) >= 10:
                    self.add_uid(text)
            for text in _caret_runs(piece):
                family, given = (text.split("^") + [""])[:2]
                # Binary values (LUTs, waveforms) spell "E^U^e^u" by chance; a name has words.
                if len(family.strip()) >= 2 and len(given.strip()) >= 2:
                    self.add_name(text)


def harvest(original: bytes) -> Needles:
    """Everything identifying the gate can find in ``original`` (any encoding, any damage)."""
    h = _Harvester()
    start = 0
    if len(original) >= 132 and original[128:132] == b"DICM":
        # The meta group, element by element (its group length is not trusted), then the data set.
        pos, n = 132, len(original)
        while pos + 8 <= n and original[pos : pos + 2] == b"\x02\x00":
            if original[pos + 4 : pos + 6] in (b"OB", b"UN", b"UT", b"SQ", b"OW", b"UC", b"UR"):
                if pos + 12 > n:
                    break
                pos += 12 + struct.unpack_from("<L", original, pos + 8)[0]
            else:
                pos += 8 + struct.unpack_from("<H", original, pos + 6)[0]
        h.walk(original, 132, min(pos, n), False, True, 0)
        start = pos
    for implicit, little in ((True, True), (False, True), (False, False)):
        h.walk(original, start, len(original), implicit, little, 0)
    h.raw_scan(original)
    return h.needles
