"""What to do with one data element: Annex E + the product's options + safety nets.

:func:`decide` is the single source of truth, used both to de-identify
(``engine.py``) and to check a released object (``validation.py``).

Order of precedence (first match wins):

1. Odd groups (private data elements, private creators, private sequences
   with everything inside them) -> remove.
2. Group 0000 (command), misplaced group 0002, group lengths (gggg,0000),
   curves (50xx,xxxx) and the *whole* overlay groups (60xx,xxxx) -> remove;
   so is anything else in 5000-50FF/6000-60FF (groups past 501E/601E are not
   curves or overlays, although the dictionary's repeater masks name them).
   Annex E lists only overlay data/comments; removing the whole overlay is
   stricter, and an overlay plane can carry burned-in text.
3. PatientName and PatientID -> the caller's pseudonym (at every depth).
4. Attributes listed in Table E.1-1:

   * Retain Patient Characteristics: the rows whose option column says K,
     except EthnicGroup (free text, special-category data), are kept.
   * Retain Longitudinal Temporal Information with Modified Dates: rows whose
     option column says C, and - because that column is missing for
     attributes added to Annex E since 2020 - any DA/DT/TM row whose basic
     action is not a plain X (it is type 1/2 temporal data the profile
     expects to keep in some form; PatientBirthDate and coding-resource
     versions excepted, see :data:`NOT_SHIFTED`): DA/DT are shifted, TM kept. Other VRs
     with a C there (TimezoneOffsetFromUTC) fall through to the basic action.
   * Clean Descriptors: rows with C in that column are cleaned (text) or
     kept and walked (sequences).
   * Otherwise the basic action. Combined codes take the first alternative
     (X before Z before D), i.e. the most conservative one: the library does
     not know which attributes a given IOD makes type 1/2. ``U`` replaces UI
     values with keyed UIDs, ``U*`` on a sequence keeps it and walks it.
     ``D`` on a UI value is a keyed UID; ``D`` on a sequence empties it
     (a dummy sequence item cannot be invented generically).
5. Attributes not in the table (Annex E: retained, but cleaned inside
   sequences), with safety nets:

   * sequences are kept and walked;
   * PN (person names) -> remove;
   * DA/DT -> shifted with the dates option, removed without it;
   * UI -> keyed UID unless the value is well-known or the attribute names a
     class/transfer syntax/coding scheme (see :data:`NEVER_MAPPED_UI`);
   * public tags unknown to the data dictionary -> remove (their content
     cannot be judged; VR UN);
   * everything else is kept.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Final

from pydicom.datadict import dictionary_has_tag, keyword_for_tag, repeater_has_tag, tag_for_keyword

from .annex_e import AnnexERule, rule_for_tag
from .options import DeidOptions

__all__ = [
    "Action",
    "Decision",
    "decide",
    "is_private_tag",
    "PSEUDONYM_TAGS",
    "PATIENT_CHARACTERISTICS",
    "NEVER_MAPPED_UI",
    "NOT_SHIFTED",
    "TEXT_VRS",
    "dummy_value",
    "basic_decision",
    "tag_label",
]


class Action(enum.Enum):
    KEEP = "keep"
    RECURSE = "recurse"  # keep a sequence and apply the policy to its items
    REMOVE = "remove"
    EMPTY = "empty"
    DUMMY = "dummy"
    UID = "uid"
    SHIFT = "shift"
    CLEAN = "clean"
    PSEUDONYM = "pseudonym"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    rule: AnnexERule | None = None
    private: bool = False


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)


PSEUDONYM_TAGS: Final = frozenset({_tag("PatientName"), _tag("PatientID")})

PATIENT_CHARACTERISTICS: Final = frozenset(
    _tag(k)
    for k in (
        "PatientSex",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientSexNeutered",
        "SmokingStatus",
        "PregnancyStatus",
    )
)

NEVER_MAPPED_UI: Final = frozenset(
    _tag(k)
    for k in (
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "ReferencedSOPClassUIDInFile",
        "ReferencedTransferSyntaxUIDInFile",
        "ReferencedRelatedGeneralSOPClassUIDInFile",
        "SOPClassUID",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "SOPClassesInStudy",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "StoredInstanceTransferSyntaxUID",
        "ReferencedSOPClassUID",
        "SOPClassesSupported",
        "AvailableTransferSyntaxUID",
        "FlowTransferSyntaxUID",
        "MACCalculationTransferSyntaxUID",
        "EncryptedContentTransferSyntaxUID",
        "SegmentationTemplateUID",
        "PertinentSOPClassesInStudy",
        "PertinentSOPClassesInSeries",
        "RTVCommunicationSOPClassUID",
    )
)
"""UI attributes that name a class, syntax, scheme or template, never an instance.

Their values are kept even when not in the DICOM registry (a vendor's private
SOP class UID identifies a product, not a patient); remapping them would
break decoding and SOP class handling.
"""

NOT_SHIFTED: Final = frozenset(_tag(k) for k in ("PatientBirthDate", "ContextGroupVersion", "ContextGroupLocalVersion"))
"""Temporal rows the dates option leaves to the basic action although their
basic action is not a plain X: the birth date (the option does not cover it;
PatientAge is kept instead) and coding-resource versions (not events)."""

TEXT_VRS: Final = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "CS"})
TEMPORAL_VRS: Final = frozenset({"DA", "DT", "TM"})
_DATE_VRS: Final = frozenset({"DA", "DT"})

_DUMMIES: Final[dict[str, object]] = {
    "PN": "ANONYMIZED",
    "LO": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
}


def dummy_value(vr: str) -> object | None:
    """The D-action value for ``vr``; ``None`` means "empty it instead"."""
    return _DUMMIES.get(vr)


def is_private_tag(tag: int) -> bool:
    return (int(tag) >> 16) % 2 == 1


@functools.lru_cache(maxsize=16384)
def tag_label(tag: int) -> str:
    """Keyword if public and known, else ``(gggg,eeee)``. Never a value."""
    tag = int(tag)
    if not is_private_tag(tag):
        keyword = keyword_for_tag(tag)
        if keyword:
            return keyword
        rule = rule_for_tag(tag)
        if rule is not None and rule.keyword:
            return rule.keyword
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _is_repeating(group: int, base: int) -> bool:
    return base <= group <= base + 0x1E and group % 2 == 0


def basic_decision(rule: AnnexERule, vr: str) -> Decision:
    codes = rule.codes
    reason = f"annexE:{rule.basic}"
    if "U" in codes or "U*" in codes:
        if vr == "UI":
            return Decision(Action.UID, reason, rule)
        if vr == "SQ":
            return Decision(Action.RECURSE, reason, rule)
    first = next(c for c in codes if c in ("X", "Z", "D", "U", "U*"))
    if vr == "SQ":
        return Decision(Action.REMOVE if first == "X" else Action.EMPTY, reason, rule)
    if first == "X":
        return Decision(Action.REMOVE, reason, rule)
    if first == "Z":
        return Decision(Action.EMPTY, reason, rule)
    if vr == "UI":
        return Decision(Action.UID, reason, rule)
    if dummy_value(vr) is None:
        return Decision(Action.EMPTY, reason, rule)
    return Decision(Action.DUMMY, reason, rule)


@functools.lru_cache(maxsize=16384)
def decide(tag: int, vr: str, options: DeidOptions) -> Decision:
    """The action for an element with ``tag`` and ``vr`` at any depth.

    Pure, so its answers are cached (the arguments are an int, a str and the frozen options).
    """
    tag = int(tag)
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 1:
        return Decision(Action.REMOVE, "private", private=True)
    if group == 0x0000:
        return Decision(Action.REMOVE, "command-group")
    if group == 0x0002:
        return Decision(Action.REMOVE, "file-meta-in-dataset")
    if element == 0x0000:
        return Decision(Action.REMOVE, "group-length")
    if _is_repeating(group, 0x5000):
        return Decision(Action.REMOVE, "curve")
    if _is_repeating(group, 0x6000):
        return Decision(Action.REMOVE, "overlay")
    if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
        # Not a curve or an overlay (out of range), but the dictionary's repeater masks name it.
        return Decision(Action.REMOVE, "repeating-group-out-of-range")
    if tag in PSEUDONYM_TAGS:
        return Decision(Action.PSEUDONYM, "pseudonym")

    rule = rule_for_tag(tag)
    if rule is not None:
        if options.retain_patient_characteristics and tag in PATIENT_CHARACTERISTICS:
            return Decision(Action.KEEP, "option:patient-characteristics", rule)
        if options.retain_modified_dates and vr in TEMPORAL_VRS:
            temporal = rule.option("rtnLongModifDatesOpt") == "C" or (rule.basic != "X" and tag not in NOT_SHIFTED)
            if temporal:
                if vr in _DATE_VRS:
                    return Decision(Action.SHIFT, "option:modified-dates", rule)
                return Decision(Action.KEEP, "option:modified-dates-time", rule)
        if options.clean_descriptors and rule.option("cleanDescOpt") == "C":
            if vr == "SQ":
                return Decision(Action.RECURSE, "option:clean-descriptors", rule)
            if vr in TEXT_VRS:
                return Decision(Action.CLEAN, "option:clean-descriptors", rule)
        return basic_decision(rule, vr)

    if vr == "SQ":
        return Decision(Action.RECURSE, "unlisted-sequence")
    if vr == "PN":
        return Decision(Action.REMOVE, "unlisted-person-name")
    if vr in _DATE_VRS:
        if options.retain_modified_dates:
            return Decision(Action.SHIFT, "unlisted-date")
        return Decision(Action.REMOVE, "unlisted-date")
    if vr == "UI":
        if tag in NEVER_MAPPED_UI:
            return Decision(Action.KEEP, "class-uid")
        return Decision(Action.UID, "unlisted-uid")
    if not (dictionary_has_tag(tag) or repeater_has_tag(tag)):
        return Decision(Action.REMOVE, "unknown-public")
    return Decision(Action.KEEP, "unlisted")
