"""Encodings the de-identifier refuses at the door, and the grammar of values it keeps as structure.

One home for the rules both paths apply (the byte-level fast path in ``fastpath.py`` raises
``Fallback`` on them, the pydicom path in ``dicomio.py``/``engine.py`` rejects the file with one
of the reasons below): anything another reader could read differently from us, and any value we
would keep as it came although it does not look like what its type allows.

* an explicit VR must be the data dictionary's, or one of its documented alternatives
  ("US or SS", OB/OW); UN is refused for a tag the dictionary knows (it hides the real type, and
  pydicom decides on it by length);
* an undefined length is for sequences (and encapsulated pixel data) only;
* repeating groups exist only as 5000-501E (curves) and 6000-601E (overlays), even groups: an
  element in another 50xx/60xx group is refused;
* a private data element needs its private creator in the same dataset;
* a group length must be the length of its group;
* sequences nest at most :data:`MAX_DEPTH` deep;
* values kept as they came must pass their VR's grammar (PS3.5 6.2), with a few legacy forms
  accepted (``HH:MM:SS`` times, ``YYYY.MM.DD`` dates); UIDs kept as structure must be valid UIDs
  (else the file is refused); a valid one that is not registered where it must be (SOP class and
  transfer syntax attributes; anything under the DICOM root) is emptied; the object's own SOP
  class (dataset and file meta) must be a registered one; UIDs that are replaced must at least be
  digits and dots (a value with letters in it is text, not a UID).

Pure: pydicom's data dictionary and UID registry only.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_has_tag, dictionary_VR, repeater_has_tag, tag_for_keyword

__all__ = [
    "MAX_DEPTH",
    "REASON_AMBIGUOUS_ENCODING",
    "REASON_BAD_VALUE",
    "REASON_DEPTH",
    "REASON_GROUP_LENGTH",
    "REASON_NO_PRIVATE_CREATOR",
    "REASON_REPEATING_GROUP",
    "REASON_SOP_CLASS",
    "REASON_UNREADABLE_TYPE",
    "EMPTIED_UNREGISTERED",
    "explicit_vr_ok",
    "kept_uid_registered",
    "kept_value_ok",
    "un_may_hold_dataset",
    "mapped_uid_ok",
    "private_creator_slot",
    "repeating_group_out_of_range",
    "sop_class_ok",
    "undefined_length_ok",
]

MAX_DEPTH: Final = 32

REASON_AMBIGUOUS_ENCODING: Final = (
    "the file can be read in two ways: its data is not encoded as its transfer syntax says"
)
REASON_UNREADABLE_TYPE: Final = "an attribute's value could not be read as its standard type"
REASON_REPEATING_GROUP: Final = "an attribute is in a repeating group outside the range DICOM defines"
REASON_NO_PRIVATE_CREATOR: Final = "a private attribute has no private creator"
REASON_GROUP_LENGTH: Final = "a group length does not match its group"
REASON_DEPTH: Final = f"sequences are nested more than {MAX_DEPTH} deep"
REASON_BAD_VALUE: Final = "an attribute's value does not follow the format of its type"
REASON_SOP_CLASS: Final = "the SOP class UID is not a registered DICOM class"

_DICOM_ROOT: Final = "1.2.840.10008."
_OB_OW: Final = frozenset({"OB", "OW"})


@functools.lru_cache(maxsize=8192)
def dictionary_vrs(tag: int) -> frozenset[str] | None:
    """The VRs the dictionary allows for a public ``tag`` (with OB/OW interchangeable), or
    ``None`` when the dictionary does not know the tag."""
    if not (dictionary_has_tag(tag) or repeater_has_tag(tag)):
        return None
    vrs = frozenset(str(dictionary_VR(tag)).split(" or "))
    return vrs | _OB_OW if vrs & _OB_OW else vrs


@functools.lru_cache(maxsize=8192)
def explicit_vr_ok(tag: int, vr: str) -> bool:
    """May a public element ``tag`` carry this explicit ``vr``? Unknown tags: any VR (the policy
    removes them unless they are sequences, which it walks)."""
    if tag >> 16 & 1:
        return True
    allowed = dictionary_vrs(tag)
    if allowed is None:
        return True
    return vr in allowed  # "UN" is never in a known tag's allowed set


def undefined_length_ok(tag: int, vr: str | None) -> bool:
    """An undefined length: sequences (explicit SQ, or implicit where the dictionary says SQ or
    does not know the tag: pydicom reads both as sequences) and private elements (removed
    unread). Encapsulated pixel data is checked by the callers."""
    if tag >> 16 & 1:
        return True
    if vr is not None:
        return vr == "SQ"
    allowed = dictionary_vrs(tag)
    return allowed is None or allowed == {"SQ"}


def un_may_hold_dataset(value: bytes | bytearray | memoryview) -> bool:
    """A UN value (of a tag the dictionary does not know) that starts like a sequence item."""
    return bytes(value[:4]) == b"\xfe\xff\x00\xe0"


def repeating_group_out_of_range(group: int) -> bool:
    """An even 50xx/60xx group past 501E/601E: not a curve nor an overlay, yet the dictionary's
    repeater masks would name its elements."""
    return not group & 1 and (0x501E < group <= 0x50FF or 0x601E < group <= 0x60FF)


def private_creator_slot(tag: int) -> int | None:
    """For a private data element (gggg,xxyy), xx >= 0x10: the creator element (gggg,00xx) it needs;
    ``None`` for anything else (creators, group lengths, public tags, and the reserved ranges
    (gggg,0001-000F) and (gggg,0100-0FFF), which some writers use: removed unread, as any private
    element, and no reader attributes them to a creator)."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return None
    return group << 16 | element >> 8


# -- values ---------------------------------------------------------------------------------

_GRAMMAR: Final = {
    "TM": re.compile(rb"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?|\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"),
    "DA": re.compile(rb"\d{8}|\d{4}\.\d{2}\.\d{2}"),
    "DT": re.compile(rb"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?"),
    "AS": re.compile(rb"\d{1,3}[DWMY]"),  # (PS3.5: three digits; "75Y" is common)
    "DS": re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"),
    "IS": re.compile(rb"[+-]?\d+"),
    # PS3.5: upper case, digits, space, underscore; writers also use lower case and punctuation
    # ("ABDOM/RAD"), so only the length and the characters of a name ("^", controls) are refused.
    "CS": re.compile(rb"[\x20-\x5b\x5d\x5f-\x7e]{1,16}"),
}
GRAMMAR_VRS: Final = frozenset(_GRAMMAR) | {"UI"}
_UID: Final = re.compile(rb"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_UID_CHARS: Final = re.compile(r"[0-9.]*")


def _tags(*keywords: str) -> frozenset[int]:
    return frozenset(int(tag_for_keyword(k)) for k in keywords)  # type: ignore[arg-type]


SOP_CLASS_TAGS: Final = _tags(
    "AffectedSOPClassUID",
    "RequestedSOPClassUID",
    "MediaStorageSOPClassUID",
    "ReferencedSOPClassUIDInFile",
    "ReferencedRelatedGeneralSOPClassUIDInFile",
    "SOPClassUID",
    "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID",
    "SOPClassesInStudy",
    "ReferencedSOPClassUID",
    "SOPClassesSupported",
    "PertinentSOPClassesInStudy",
    "PertinentSOPClassesInSeries",
    "RTVCommunicationSOPClassUID",
)
TRANSFER_SYNTAX_TAGS: Final = _tags(
    "TransferSyntaxUID",
    "ReferencedTransferSyntaxUIDInFile",
    "StoredInstanceTransferSyntaxUID",
    "AvailableTransferSyntaxUID",
    "FlowTransferSyntaxUID",
    "MACCalculationTransferSyntaxUID",
    "EncryptedContentTransferSyntaxUID",
)


def _registered(uid: str, kind: str) -> bool:
    entry = UID_dictionary.get(uid)
    return entry is not None and kind in entry[1]


def sop_class_ok(uid: str) -> bool:
    return _registered(uid.strip(" \x00"), "SOP Class")


def _uid_grammar_ok(raw: bytes) -> bool:
    value = raw.strip(b" \x00")
    return len(value) <= 64 and _UID.fullmatch(value) is not None


def kept_uid_registered(tag: int, raw: bytes | bytearray | memoryview) -> bool:
    """Is every value of a kept UI element (grammar already checked) one we may keep as it is?

    SOP class attributes must name a registered SOP class and transfer syntax attributes a
    registered transfer syntax; any other kept UID (coding schemes, contexts...) may be an
    organisation's own, but not an unregistered one under the DICOM root. A value that fails is
    a valid UID we cannot vouch for (a vendor's private class, say): the callers empty the element
    (:data:`EMPTIED_UNREGISTERED`) rather than reject the file, as text there is already refused
    by the grammar."""
    for value in bytes(raw).split(b"\\"):
        uid = value.strip(b" \x00").decode("ascii", "replace")
        if not uid:
            continue
        if tag in SOP_CLASS_TAGS:
            ok = _registered(uid, "SOP Class")
        elif tag in TRANSFER_SYNTAX_TAGS:
            ok = _registered(uid, "Transfer Syntax")
        else:
            ok = not uid.startswith(_DICOM_ROOT) or uid in UID_dictionary
        if not ok:
            return False
    return True


EMPTIED_UNREGISTERED: Final = "empty:unregistered-uid"
"""The audit action of a kept UI element emptied by :func:`kept_uid_registered`."""


def kept_value_ok(tag: int, vr: str, raw: bytes | bytearray | memoryview) -> bool:
    """Does a value kept as it came (encoded, as in the file) pass its VR's grammar?

    Only the VRs in :data:`GRAMMAR_VRS` are checked; every value of a multi-valued element must
    pass; an empty value passes."""
    data = bytes(raw).rstrip(b" \x00")
    if not data:
        return True
    if vr == "UI":
        return all(not v.strip(b" \x00") or _uid_grammar_ok(v) for v in data.split(b"\\"))
    grammar = _GRAMMAR.get(vr)
    if grammar is None:
        return True
    return all(grammar.fullmatch(v.strip(b" \x00")) is not None for v in data.split(b"\\") if v.strip(b" \x00"))


def mapped_uid_ok(uid: str) -> bool:
    """A UID that is replaced by a keyed one: digits and dots, at most 64 characters."""
    return len(uid) <= 64 and _UID_CHARS.fullmatch(uid) is not None
