"""Release gate: re-read a de-identified object and check it independently.

:func:`validate_released` reads the serialised output (bytes or a path)
**without force**, exactly as a recipient would, and checks:

* file meta: only the version, SOP class/instance (matching the dataset),
  transfer syntax and our implementation class UID/version name;
* markers: PatientIdentityRemoved = YES, a DeidentificationMethod, a
  DeidentificationMethodCodeSequence containing 113100 (DCM), and
  LongitudinalTemporalInformationModified = MODIFIED when 113107 is declared;
* every element at every depth against the policy implied by the declared
  option codes: no private element, nothing Annex E removes, only empty
  values where it empties, only our dummy where it replaces, UID values either
  well-known or under our ``2.25.`` root, dates that parse, descriptors
  already in cleaned form, PatientName/PatientID equal to the pseudonym.

It cannot prove that a shifted date or a mapped UID was derived from the
original: that is what the tests' leak scanner checks against the source.
"""

from __future__ import annotations

import os
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .descriptors import is_clean_descriptor
from .dicomio import DicomSource, element_vr, read_dicom
from .engine import PSEUDONYM_RE
from .errors import InvalidInputError, ReleaseValidationError
from .options import CODE_BASIC_PROFILE, CODE_RETAIN_MODIFIED_DATES, IMPLEMENTATION_CLASS_UID, DeidOptions
from .policy import Action, Decision, decide, dummy_value, is_private_tag, tag_label
from .temporal import shift_da, shift_dt
from .uids import UUID_UID_ROOT, is_well_known_uid

__all__ = ["check_header", "check_value", "validate_released", "validate_released_dataset"]

_ALLOWED_META = {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}


def _values(value: Any) -> list[Any]:
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip(" \x00")


def _non_empty(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bytes | bytearray):
        return len(value.strip(b" \x00")) > 0
    if isinstance(value, MultiValue | list | tuple):
        return any(_non_empty(v) for v in value)
    return bool(_text(value).strip("^="))


def _walk(ds: Dataset, options: DeidOptions, pseudonym: str | None, parent: str, problems: list[str]) -> None:
    for tag in sorted(int(t) for t in ds.keys()):
        path = f"{parent}>{tag_label(tag)}" if parent else tag_label(tag)
        if is_private_tag(tag):
            problems.append(f"{path}: private element present")
            continue
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.value is not None:
            # Still encoded: decode only what there is to check. A kept element has nothing to
            # check; a removed or emptied one passes when it holds no bytes at all.
            vr = element_vr(ds, raw)
            if " " not in vr and vr != "SQ":
                action = decide(tag, vr, options).action
                if action is Action.KEEP or (action in (Action.REMOVE, Action.EMPTY) and not raw.value):
                    continue
        elem = ds[tag]
        vr = str(elem.VR)
        decision = decide(tag, vr, options)
        if vr == "SQ" and decision.action in (Action.KEEP, Action.RECURSE):
            for item in elem.value or []:
                _walk(item, options, pseudonym, path, problems)
        else:
            check_value(path, vr, decision, elem.value, pseudonym, problems)


def check_value(path: str, vr: str, decision: Decision, value: Any, pseudonym: str | None, problems: list[str]) -> None:
    """Check one element's decoded value against its decision (sequences: only REMOVE/EMPTY)."""
    action = decision.action
    if action is Action.REMOVE:
        if vr == "SQ" or _non_empty(value):
            problems.append(f"{path}: present but must be removed ({decision.reason})")
    elif action is Action.EMPTY:
        if (vr == "SQ" and value) or (vr != "SQ" and _non_empty(value)):
            problems.append(f"{path}: must be empty ({decision.reason})")
    elif action is Action.DUMMY:
        dummy = dummy_value(vr)
        if any(_non_empty(v) and _text(v) != _text(dummy) for v in _values(value)):
            problems.append(f"{path}: not the dummy value ({decision.reason})")
    elif action is Action.PSEUDONYM:
        text = _text(value)
        if pseudonym is not None and text != pseudonym:
            problems.append(f"{path}: not the expected pseudonym")
        elif pseudonym is None and text and not PSEUDONYM_RE.match(text):
            problems.append(f"{path}: does not look like a pseudonym")
    elif action is Action.UID:
        for v in _values(value):
            uid = _text(v)
            if uid and not (is_well_known_uid(uid) or uid.startswith(UUID_UID_ROOT)):
                problems.append(f"{path}: UID not replaced")
                break
    elif action is Action.SHIFT:
        parse = shift_da if vr == "DA" else shift_dt
        if any(parse(_text(v), 0) is None for v in _values(value)):
            problems.append(f"{path}: unparseable date value")
    elif action is Action.CLEAN:
        dummy = _text(dummy_value(vr))
        if not all(is_clean_descriptor(_text(v)) or _text(v) == dummy for v in _values(value)):
            problems.append(f"{path}: descriptor not in cleaned form")


def _codes(ds: Dataset) -> set[str]:
    codes: set[str] = set()
    for item in ds.get("DeidentificationMethodCodeSequence", None) or []:
        if _text(item.get("CodingSchemeDesignator", "")) == "DCM":
            codes.add(_text(item.get("CodeValue", "")))
    return codes


def validate_released_dataset(ds: Dataset, *, expected_pseudonym: str | None = None) -> None:
    """The checks of :func:`validate_released` on an already parsed dataset."""
    problems: list[str] = []
    options = check_header(ds, expected_pseudonym, problems)
    _walk(ds, options, expected_pseudonym, "", problems)
    if problems:
        raise ReleaseValidationError(problems)


def check_header(ds: Dataset, expected_pseudonym: str | None, problems: list[str]) -> DeidOptions:
    """File meta and marker checks; returns the options the markers declare (for the walk)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        problems.append("file meta information missing")
    else:
        for tag in meta.keys():
            if int(tag) not in _ALLOWED_META:
                problems.append(f"FileMeta>{tag_label(int(tag))}: not allowed in released file meta")
        if _text(meta.get("ImplementationClassUID", "")) != IMPLEMENTATION_CLASS_UID:
            problems.append("FileMeta>ImplementationClassUID: not ours")
        if _text(meta.get("MediaStorageSOPInstanceUID", "")) != _text(ds.get("SOPInstanceUID", "")):
            problems.append("FileMeta>MediaStorageSOPInstanceUID: does not match SOPInstanceUID")
        if _text(meta.get("MediaStorageSOPClassUID", "")) != _text(ds.get("SOPClassUID", "")):
            problems.append("FileMeta>MediaStorageSOPClassUID: does not match SOPClassUID")

    if _text(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        problems.append("PatientIdentityRemoved: not YES")
    if not _non_empty(ds.get("DeidentificationMethod", None)):
        problems.append("DeidentificationMethod: missing")
    codes = _codes(ds)
    if CODE_BASIC_PROFILE[0] not in codes:
        problems.append("DeidentificationMethodCodeSequence: 113100 (Basic Profile) missing")
    if CODE_RETAIN_MODIFIED_DATES[0] in codes:
        if _text(ds.get("LongitudinalTemporalInformationModified", "")) != "MODIFIED":
            problems.append("LongitudinalTemporalInformationModified: not MODIFIED although dates are shifted")
    options = DeidOptions.from_method_codes(codes)
    if expected_pseudonym is None:
        name, pid = _text(ds.get("PatientName", "")), _text(ds.get("PatientID", ""))
        if name != pid:
            problems.append("PatientName/PatientID: not the same pseudonym")
    return options


def validate_released(source: DicomSource | os.PathLike, *, expected_pseudonym: str | None = None) -> None:
    """Re-read ``source`` without force and check it may be released.

    Raises :class:`ReleaseValidationError` listing every problem (by tag or
    keyword, never by value); returns ``None`` when the object passes.
    """
    try:
        ds = read_dicom(source, decode_values=False)
    except InvalidInputError as exc:
        raise ReleaseValidationError([f"not a readable DICOM file: {exc}"]) from None
    validate_released_dataset(ds, expected_pseudonym=expected_pseudonym)
