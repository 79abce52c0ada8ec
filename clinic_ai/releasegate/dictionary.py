"""What the gate knows about DICOM, from pydicom's data dictionary and the PS3.15 Annex E table.

Nothing here comes from the de-identifier: the profile table is read from its JSON file by this
module's own code (one path constant, :data:`ANNEX_E_TABLE_PATH`, because the file will move).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import DicomDictionary

ANNEX_E_TABLE_PATH: Final = Path(__file__).resolve().parent.parent / "deid" / "annex_e_table.json"
"""PS3.15 Table E.1-1 with its option columns. The one place that says where the table lives."""

VRS: Final = frozenset(
    "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
VR_BYTES: Final = frozenset(vr.encode("ascii") for vr in VRS)
LONG_HEADER_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
"""Explicit VRs with two reserved bytes and a 32-bit length."""
NUMERIC_SIZE: Final = {
    "US": 2,
    "SS": 2,
    "UL": 4,
    "SL": 4,
    "FL": 4,
    "FD": 8,
    "AT": 4,
    "SV": 8,
    "UV": 8,
    "OW": 2,
    "OF": 4,
    "OD": 8,
    "OL": 4,
    "OV": 8,
}
_PARTNERS: Final = {"US": {"SS"}, "SS": {"US"}, "OB": {"OW"}, "OW": {"OB"}}

DICOM_ROOT: Final = "1.2.840.10008."
UUID_ROOT: Final = "2.25."
OUR_IMPLEMENTATION_CLASS_UID: Final = "2.25.238617640568329922866947457739796975674"
"""The de-identifier's (0002,0012), fixed forever (PS3.5 B.2 UUID-derived). Pinned here, not
imported: the gate expects exactly this value in released file meta, and never treats it as
patient data when an original (a re-upload of a released file) carries it too."""

CODING_SCHEME_OIDS: Final = frozenset(
    {
        "2.16.840.1.113883.6.96",  # SNOMED CT
        "2.16.840.1.113883.6.1",  # LOINC
        "2.16.840.1.113883.6.8",  # UCUM
        "2.16.840.1.113883.6.3",  # ICD-10
        "2.16.840.1.113883.6.90",  # ICD-10-CM
        "2.16.840.1.113883.6.2",  # ICD-9-CM
        "2.16.840.1.113883.6.103",  # ICD-9-CM diagnosis
        "2.16.840.1.113883.6.104",  # ICD-9-CM procedures
        "2.16.840.1.113883.6.86",  # UMLS
        "2.16.840.1.113883.6.256",  # RadLex
        "2.16.840.1.113883.6.119",  # FMA
        "2.16.840.1.113883.3.26.1.1",  # NCI Thesaurus
        "2.16.840.1.113883.6.24",  # MDC (ISO/IEEE 11073)
        "2.16.840.1.113883.6.5",  # SNOMED (legacy)
    }
)
"""Well-known coding-scheme OIDs outside the DICOM root: they name vocabularies, not people."""

VENDOR_SOP_CLASSES: Final = frozenset(
    {
        "1.3.12.2.1107.5.9.1",  # Siemens CSA Non-Image Storage
    }
)
"""Vendor SOP classes a released image may *reference* (ReferencedSOPClassUID): they name a
product, not a person, and are never searched for as an original's identifying value. The
released object's own SOP class must still be a registered storage class."""

KNOWN_UIDS: Final = frozenset(UID_dictionary)
SOP_CLASSES: Final = frozenset(
    uid for uid, entry in UID_dictionary.items() if entry[1] in ("SOP Class", "Meta SOP Class")
)
STORAGE_SOP_CLASSES: Final = frozenset(
    uid for uid, entry in UID_dictionary.items() if entry[1] == "SOP Class" and "Storage" in entry[0]
)

PATIENT_NAME: Final = 0x00100010
PATIENT_ID: Final = 0x00100020
PATIENT_BIRTH_DATE: Final = 0x00100030
PIXEL_DATA: Final = 0x7FE00010
ITEM: Final = 0xFFFEE000
ITEM_DELIMITER: Final = 0xFFFEE00D
SEQUENCE_DELIMITER: Final = 0xFFFEE0DD


def keyword(tag: int) -> str:
    """A tag's dictionary keyword, or ``(gggg,eeee)``. Never a value."""
    entry = DicomDictionary.get(tag)
    if entry and entry[4]:
        return entry[4]
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def dictionary_vr(tag: int) -> str | None:
    """The dictionary's VR text (may be ``"US or SS"``), ``None`` for a tag it does not know."""
    entry = DicomDictionary.get(tag)
    return entry[0] if entry else None


@functools.lru_cache(maxsize=8192)
def allowed_vrs(tag: int) -> frozenset[str] | None:
    """Explicit VRs the gate accepts for ``tag``: the dictionary's, its own alternatives
    ("US or SS", "OB or OW", "US or OW") and the US/SS, OB/OW partners. ``None``: unknown tag."""
    if tag & 0xFFFF == 0 and tag >> 16 != 0xFFFE:
        return frozenset({"UL"})  # group lengths (refused later by the allow-list, but well formed)
    text = dictionary_vr(tag)
    if text is None:
        return None
    vrs = set(text.split(" or "))
    for vr in list(vrs):
        vrs |= _PARTNERS.get(vr, set())
    return frozenset(vrs)


# --------------------------------------------------------------------------- the profile table
@dataclass(frozen=True, slots=True)
class ProfileRow:
    tag: int
    codes: frozenset[str]
    """The basic profile's alternatives: X, Z, D, U, U*, C, K."""
    characteristics: str
    """The Retain Patient Characteristics column (K, C or empty)."""
    modified_dates: str
    """The Retain Longitudinal Temporal Information Modified Dates column (C or empty)."""
    has_dates_column: bool
    """Whether the 2020 option columns know this row (rows added later carry none)."""
    clean_descriptors: str
    """The Clean Descriptors column (C or empty)."""


_TAG: Final = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")


@functools.cache
def profile_rows() -> dict[int, ProfileRow]:
    """Exact-tag rows of Table E.1-1. Repeating-group rows (50xx, 60xx) are not needed: the
    released files never carry curves or overlays at all."""
    raw = json.loads(ANNEX_E_TABLE_PATH.read_text(encoding="utf-8"))
    rows: dict[int, ProfileRow] = {}
    for row in raw["rows"]:
        match = _TAG.match(str(row["tag"]).strip())
        if not match:
            continue
        tag = int(match.group(1) + match.group(2), 16)
        rows[tag] = ProfileRow(
            tag=tag,
            codes=frozenset(code.strip() for code in str(row["basic"]).split("/")),
            characteristics=str(row.get("rtnPatCharsOpt") or ""),
            modified_dates=str(row.get("rtnLongModifDatesOpt") or ""),
            has_dates_column=bool(row.get("rtnLongModifDatesOpt") or row.get("rtnLongFullDatesOpt")),
            clean_descriptors=str(row.get("cleanDescOpt") or ""),
        )
    if len(rows) < 500:  # a truncated or moved table must not silently allow everything
        raise RuntimeError("profile table incomplete")
    return rows
