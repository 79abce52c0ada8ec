"""De-identification of one DICOM dataset: the walk, the markers, the file meta.

The input dataset is never modified; the output is a new dataset built
element by element (values that are immutable, such as the pixel data bytes,
are shared rather than copied, which is why the pixel data stays byte for
byte identical and compressed data stays compressed).

Elements still in their encoded form (pydicom ``RawDataElement``, as
``read_dicom(..., decode_values=False)`` leaves them) are decided on their
tag and VR; the ones the policy keeps are copied as they were read, bytes
unchanged, and only the others are decoded. The output datasets carry the
source's encoding (VR, byte order, character set), so pydicom writes the
kept bytes back verbatim instead of decoding and re-encoding them.
"""

from __future__ import annotations

import copy
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import PersonName

from .annex_e import TABLE_SOURCE
from .descriptors import clean_descriptor
from .dicomio import check_supported, dicom_to_bytes, element_vr, read_dicom
from .encoding import (
    EMPTIED_UNREGISTERED,
    GRAMMAR_VRS,
    REASON_BAD_VALUE,
    kept_uid_registered,
    kept_value_ok,
    mapped_uid_ok,
)
from .errors import InvalidInputError, UnsupportedDicomError
from .files import write_atomic
from .options import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, DeidOptions
from .policy import Action, Decision, basic_decision, decide, dummy_value, tag_label
from .pseudonyms import PatientIdentity
from .temporal import shift_da, shift_dt
from .uids import check_secret, is_well_known_uid, map_uid

__all__ = ["ActedOn", "DeidResult", "deidentify_dataset", "deidentify_file", "PSEUDONYM_RE"]

PSEUDONYM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""What a caller-supplied pseudonym may look like (fits LO and a PN component)."""

_TABLE_EDITION = next((tok for tok in re.findall(r"\d{4}[a-e]", TABLE_SOURCE)), "")
_FILE_META_KEPT = {0x00020001, 0x00020002, 0x00020010}  # version, SOP class, transfer syntax
_STRUCTURAL = frozenset(
    {
        "private",
        "command-group",
        "file-meta-in-dataset",
        "group-length",
        "curve",
        "overlay",
        "repeating-group-out-of-range",
    }
)


@dataclass(frozen=True, slots=True)
class ActedOn:
    """One audit line: what was done where, how many times. Never a value.

    ``path`` is a chain of keywords (private/unknown tags as ``(gggg,eeee)``)
    separated by ``>``, without item indices, e.g.
    ``RequestAttributesSequence>AccessionNumber``.
    """

    action: str
    path: str
    count: int


@dataclass(slots=True)
class DeidResult:
    """The de-identified dataset and a PHI-free account of what was done."""

    dataset: Dataset
    options: DeidOptions
    removed: int = 0
    """Public elements removed (X), at any depth, including file meta elements."""
    emptied: int = 0
    """Elements emptied (Z), including D sequences and unparseable dates."""
    replaced: int = 0
    """Dummy values (D) and pseudonyms written over existing values."""
    cleaned: int = 0
    """Descriptor values reduced by the Clean Descriptors option."""
    uids_mapped: int = 0
    dates_shifted: int = 0
    private_removed: int = 0
    """Private elements removed (creators, data, private sequences; a removed
    private sequence counts once)."""
    acted_on: tuple[ActedOn, ...] = field(default_factory=tuple)

    def to_audit_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary for the audit log (no values, no PHI)."""
        return {
            "deid_version": self.options.deid_version,
            "annex_e_source": TABLE_SOURCE,
            "options": {
                "retain_modified_dates": self.options.retain_modified_dates,
                "retain_patient_characteristics": self.options.retain_patient_characteristics,
                "clean_descriptors": self.options.clean_descriptors,
            },
            "counts": {
                "removed": self.removed,
                "emptied": self.emptied,
                "replaced": self.replaced,
                "cleaned": self.cleaned,
                "uids_mapped": self.uids_mapped,
                "dates_shifted": self.dates_shifted,
                "private_removed": self.private_removed,
            },
            "acted_on": [{"action": a.action, "path": a.path, "count": a.count} for a in self.acted_on],
        }


def _values(value: Any) -> list[Any]:
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _pack(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _encoded_text(value: Any) -> bytes:
    """A decoded text value as the bytes ``encoding.kept_value_ok`` checks."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return "\\".join("" if v is None else str(v) for v in _values(value)).encode("latin-1", "replace")


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | bytes | bytearray):
        return len(value.strip(b" \x00") if isinstance(value, bytes | bytearray) else value.strip(" \x00")) == 0
    if isinstance(value, PersonName):
        return not str(value).strip(" \x00^=")
    if isinstance(value, MultiValue | list | tuple | Sequence):
        return len(value) == 0
    return False


class _Walker:
    def __init__(
        self, options: DeidOptions, uid_secret: bytes, pseudonym: str, shift: int, *, audit_paths: bool = True
    ) -> None:
        self.options = options
        self.audit_paths = audit_paths  # False: counts only, no ``acted_on`` lines
        self.uid_secret = uid_secret
        self.pseudonym = pseudonym
        self.shift = shift
        self.counts: Counter[str] = Counter()
        self.audit: Counter[tuple[str, str]] = Counter()
        self._uid_cache: dict[str, str] = {}

    def decide(self, tag: int, vr: str) -> Decision:
        return decide(tag, vr, self.options)  # cached by policy.decide

    # -- bookkeeping -------------------------------------------------------
    def note(self, counter: str, action: str, path: str, n: int = 1) -> None:
        if n:
            self.counts[counter] += n
            if self.audit_paths:
                self.audit[(action, path)] += n

    def map_uid(self, uid: str) -> str:
        new = self._uid_cache.get(uid)
        if new is None:
            new = map_uid(self.uid_secret, uid)
            self._uid_cache[uid] = new
        return new

    # -- the walk ----------------------------------------------------------
    def dataset(self, src: Dataset, parent: str) -> Dataset:
        out = _like(src)
        implicit = src.original_encoding[0] is True
        for key in sorted(src.keys()):
            tag = int(key)
            early = self.decide(tag, "")
            # Decide on private/structural groups before touching the value,
            # so undecodable private data cannot stop the walk.
            if early.action is Action.REMOVE and early.reason in _STRUCTURAL:
                # Private elements are audited per group, "(gggg,xxxx)".
                label = f"({tag >> 16:04X},xxxx)" if early.private else tag_label(tag)
                path = f"{parent}>{label}" if parent else label
                self.note("private_removed" if early.private else "removed", f"remove:{early.reason}", path)
                continue
            raw = src.get_item(key)
            if isinstance(raw, RawDataElement) and raw.value is not None:
                try:
                    vr = element_vr(src, raw)
                except Exception as exc:
                    path = f"{parent}>{tag_label(tag)}" if parent else tag_label(tag)
                    raise InvalidInputError(f"cannot decode element {path}", detail=type(exc).__name__) from None
                if " " not in vr:  # ambiguous VRs ("US or SS") are resolved by decoding
                    action = self.decide(tag, vr).action
                    if action is Action.KEEP and (raw.VR is not None or implicit):
                        if vr in GRAMMAR_VRS and not self._kept(out, tag, vr, raw.value, parent):
                            continue
                        out[raw.tag] = raw  # immutable: shared, written back byte for byte
                        continue
                    if action is Action.REMOVE:
                        self.note("removed", "remove", f"{parent}>{tag_label(tag)}" if parent else tag_label(tag))
                        continue
            path = f"{parent}>{tag_label(tag)}" if parent else tag_label(tag)
            try:
                elem = src[key]
            except Exception as exc:
                raise InvalidInputError(f"cannot decode element {path}", detail=type(exc).__name__) from None
            vr = str(elem.VR)
            try:
                self.apply(out, elem, vr, self.decide(tag, vr), path)
            except InvalidInputError:
                raise
            except Exception as exc:
                raise InvalidInputError(f"cannot process element {path}", detail=type(exc).__name__) from None
        return out

    def apply(self, out: Dataset, elem: DataElement, vr: str, decision: Decision, path: str) -> None:
        action, tag, value = decision.action, elem.tag, elem.value
        if action is Action.KEEP:
            parent = path.rpartition(">")[0]
            if vr in GRAMMAR_VRS and not self._kept(out, int(tag), vr, _encoded_text(value), parent):
                return
            # deepcopy keeps the value exactly as read (no re-validation) and
            # shares immutable bytes, so pixel data is not duplicated.
            out.add(copy.deepcopy(elem))
        elif action is Action.RECURSE:
            items = [self.dataset(item, path) for item in (value or [])]
            out.add(DataElement(tag, "SQ", Sequence(items)))
        elif action is Action.REMOVE:
            self.note("removed", "remove", path)
        elif action is Action.EMPTY:
            out.add(DataElement(tag, vr, Sequence() if vr == "SQ" else empty_value_for_VR(vr)))
            if not _is_empty(value):
                self.note("emptied", "empty", path)
        elif action is Action.DUMMY:
            out.add(DataElement(tag, vr, dummy_value(vr)))
            if not _is_empty(value):
                self.note("replaced", "dummy", path)
        elif action is Action.PSEUDONYM:
            out.add(DataElement(tag, vr, self.pseudonym))
            if not _is_empty(value):
                self.note("replaced", "pseudonym", path)
        elif action is Action.UID:
            self._uids(out, elem, vr, path)
        elif action is Action.SHIFT:
            self._shift(out, elem, vr, path)
        elif action is Action.CLEAN:
            self._clean(out, elem, vr, decision, path)
        else:  # pragma: no cover - exhaustive
            raise AssertionError(action)

    def _kept(self, out: Dataset, tag: int, vr: str, raw: bytes, parent: str) -> bool:
        """May a kept value stay as it came? Rejects a value that fails its grammar; empties (into
        ``out``) a valid UID that is not registered where it must be (``encoding.py``)."""
        if not kept_value_ok(tag, vr, raw):
            raise InvalidInputError(REASON_BAD_VALUE)
        if vr == "UI" and not kept_uid_registered(tag, raw):
            out.add(DataElement(tag, "UI", ""))
            self.note("emptied", EMPTIED_UNREGISTERED, f"{parent}>{tag_label(tag)}" if parent else tag_label(tag))
            return False
        return True

    def _uids(self, out: Dataset, elem: DataElement, vr: str, path: str) -> None:
        if vr != "UI":
            out.add(DataElement(elem.tag, vr, empty_value_for_VR(vr)))
            self.note("emptied", "empty", path)
            return
        new_values, mapped = [], 0
        for v in _values(elem.value):
            v = "" if v is None else str(v).strip(" \x00")
            if v and not is_well_known_uid(v):
                if not mapped_uid_ok(v):  # text where a UID belongs: not a value to hash and keep going
                    raise InvalidInputError(REASON_BAD_VALUE)
                new_values.append(self.map_uid(v))
                mapped += 1
            else:
                new_values.append(v)
        out.add(DataElement(elem.tag, "UI", _pack(new_values) if new_values else ""))
        self.note("uids_mapped", "uid", path, mapped)

    def _shift(self, out: Dataset, elem: DataElement, vr: str, path: str) -> None:
        shifter: Callable[[str, int], str | None] = shift_da if vr == "DA" else shift_dt
        new_values: list[str] = []
        shifted = 0
        for v in _values(elem.value):
            text = "" if v is None else str(v)
            new = shifter(text, self.shift)
            if new is None:  # unparseable: could be a real date, so empty the element
                out.add(DataElement(elem.tag, vr, ""))
                self.note("emptied", "empty:unparseable-date", path)
                return
            shifted += bool(new)
            new_values.append(new)
        out.add(DataElement(elem.tag, vr, _pack(new_values) if new_values else ""))
        self.note("dates_shifted", "shift", path, shifted)

    def _clean(self, out: Dataset, elem: DataElement, vr: str, decision: Decision, path: str) -> None:
        originals = [("" if v is None else str(v)) for v in _values(elem.value)]
        cleaned = [c for c in (clean_descriptor(v) for v in originals if v.strip(" \x00")) if c]
        if not cleaned:
            assert decision.rule is not None
            fallback = basic_decision(decision.rule, vr)
            self.apply(out, elem, vr, fallback, path)
            return
        if vr in ("SH", "CS"):
            cleaned = [c[:16] for c in cleaned]
        elif vr == "LO":
            cleaned = [c[:64] for c in cleaned]
        out.add(DataElement(elem.tag, vr, _pack(cleaned)))
        if cleaned != originals:
            self.note("cleaned", "clean", path)
        else:
            if self.audit_paths:
                self.audit[("clean:unchanged", path)] += 1

    def result(self, dataset: Dataset) -> DeidResult:
        """What the walk did, with ``dataset`` as the output."""
        return DeidResult(
            dataset=dataset,
            options=self.options,
            removed=self.counts["removed"],
            emptied=self.counts["emptied"],
            replaced=self.counts["replaced"],
            cleaned=self.counts["cleaned"],
            uids_mapped=self.counts["uids_mapped"],
            dates_shifted=self.counts["dates_shifted"],
            private_removed=self.counts["private_removed"],
            acted_on=self.audit_lines(),
        )

    def audit_lines(self) -> tuple[ActedOn, ...]:
        return tuple(
            ActedOn(action=a, path=p, count=n) for (a, p), n in sorted(self.audit.items(), key=lambda kv: kv[0][::-1])
        )


def _like(src: Dataset) -> Dataset:
    """An empty dataset with ``src``'s encoding, so raw elements copied from ``src`` are written
    as they are. (If the two ever disagreed, pydicom would decode and re-encode them with
    ``src``'s character set: slower, same result.)"""
    out = Dataset(parent_encoding=getattr(src, "_parent_encoding", None) or "iso8859")
    implicit, little = src.original_encoding
    if implicit is not None and little is not None:
        out.set_original_encoding(implicit, little, src.original_character_set)
    return out


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def method_descriptions(options: DeidOptions, extra_codes: Iterable[tuple[str, str]] = ()) -> list[str]:
    """DeidentificationMethod values (LO, each at most 64 characters)."""
    lines = [f"clinic_ai deidentification {options.deid_version}"[:64]]
    if _TABLE_EDITION:
        lines.append(f"DICOM PS3.15 Table E.1-1 {_TABLE_EDITION}")
    lines.extend(meaning[:64] for _, meaning in [*options.method_codes(), *extra_codes])
    return lines


def _set_markers(out: Dataset, options: DeidOptions) -> None:
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = method_descriptions(options)
    out.DeidentificationMethodCodeSequence = Sequence([_code_item(v, m) for v, m in options.method_codes()])
    out.LongitudinalTemporalInformationModified = "MODIFIED" if options.retain_modified_dates else "REMOVED"


def _file_meta(src: Dataset, out: Dataset, walker: _Walker) -> FileMetaDataset:
    src_meta = getattr(src, "file_meta", None) or FileMetaDataset()
    ts = src_meta.get("TransferSyntaxUID", None)
    if ts is None:
        pixel = src.data_element("PixelData")
        if pixel is not None and pixel.is_undefined_length:
            raise UnsupportedDicomError("encapsulated pixel data without a transfer syntax")
        ts = ExplicitVRLittleEndian
    if UID(str(ts)).is_deflated:
        # Released inflated: the data set of a deflated file is Explicit VR Little Endian, and
        # a file whose bytes must be inflated to be searched is not one the release gate vouches for.
        ts = ExplicitVRLittleEndian
    for tag in src_meta.keys():
        tag = int(tag)
        if tag in _FILE_META_KEPT or tag == 0x00020000:
            continue
        label = f"FileMeta>{tag_label(tag)}"
        if tag == 0x00020003:
            walker.note("uids_mapped", "uid", label)
        elif tag in (0x00020012, 0x00020013):
            walker.note("replaced", "replace", label)
        else:
            walker.note("removed", "remove", label)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = UID(str(ts))
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _check_arguments(options: DeidOptions, uid_secret: bytes, pseudonym: str, shift: int) -> None:
    if not isinstance(options, DeidOptions):
        raise TypeError("options must be a DeidOptions")
    check_secret(uid_secret, "uid_secret")
    if not isinstance(pseudonym, str) or not PSEUDONYM_RE.match(pseudonym):
        raise ValueError("patient_pseudonym must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    if isinstance(shift, bool) or not isinstance(shift, int):
        raise TypeError("date_shift_days must be an int")
    if options.retain_modified_dates and shift == 0:
        raise ValueError("date_shift_days must not be 0 when dates are retained (it would release real dates)")


def deidentify_dataset(
    ds: Dataset,
    *,
    options: DeidOptions,
    uid_secret: bytes,
    patient_pseudonym: str,
    date_shift_days: int,
) -> DeidResult:
    """De-identify ``ds`` and return a new dataset (``ds`` is not modified).

    Applies :func:`policy.decide` to every element at every depth, rewrites the
    file meta (MediaStorageSOPInstanceUID = the new SOPInstanceUID, our
    ImplementationClassUID/VersionName, everything else dropped), sets
    PatientName/PatientID to ``patient_pseudonym`` and writes the markers
    (PatientIdentityRemoved, DeidentificationMethod, its CID 7050 code
    sequence, LongitudinalTemporalInformationModified). BurnedInAnnotation
    is left as the source says; see :mod:`.pixels`.
    """
    _check_arguments(options, uid_secret, patient_pseudonym, date_shift_days)
    check_supported(ds)
    walker = _Walker(options, bytes(uid_secret), patient_pseudonym, date_shift_days)
    out = walker.dataset(ds, "")
    out.PatientName = patient_pseudonym
    out.PatientID = patient_pseudonym
    _set_markers(out, options)
    out.file_meta = _file_meta(ds, out, walker)
    return walker.result(out)


def deidentify_file(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    *,
    options: DeidOptions,
    uid_secret: bytes,
    patient_pseudonym: str | None = None,
    date_shift_days: int | None = None,
    identity: Callable[[Dataset], PatientIdentity] | None = None,
    validate: bool = True,
) -> DeidResult:
    """Read ``src_path`` strictly, de-identify it, write ``dst_path`` atomically.

    Give either ``patient_pseudonym`` and ``date_shift_days``, or ``identity``:
    a callable that receives the *original* dataset and returns a
    :class:`PatientIdentity` (for example ``lambda ds:
    derive_patient_identity(ds, secret=..., project_key=...)``), so the
    file is read once.

    With ``validate`` (default) the serialised output is re-read and checked by
    :func:`validation.validate_released` before it is written; on failure
    nothing is written and :class:`ReleaseValidationError` is raised.
    """
    if identity is not None and (patient_pseudonym is not None or date_shift_days is not None):
        raise TypeError("give either identity or patient_pseudonym/date_shift_days, not both")
    if identity is None and (patient_pseudonym is None or date_shift_days is None):
        raise TypeError("patient_pseudonym and date_shift_days are required without identity")
    ds = read_dicom(src_path, decode_values=False)
    if identity is not None:
        who = identity(ds)
        patient_pseudonym, date_shift_days = who.pseudonym, who.date_shift_days
    assert patient_pseudonym is not None and date_shift_days is not None
    result = deidentify_dataset(
        ds,
        options=options,
        uid_secret=uid_secret,
        patient_pseudonym=patient_pseudonym,
        date_shift_days=date_shift_days,
    )
    data = dicom_to_bytes(result.dataset)
    if validate:
        from .validation import validate_released

        validate_released(data, expected_pseudonym=patient_pseudonym)  # before anything is written
    write_atomic(data, dst_path)
    return result
