"""The DICOM release gate: five rules, each a function, each refusal naming its rule.

1. ``structure``: :func:`structure.parse_part10`, one strict reading of the output or none.
2. ``two-readings``: pydicom re-reads the output without ``force`` and must see exactly the same
   element tree (tags at every depth, file meta included). A file that two readers read two ways
   is exactly what hid patient data from the old checks.
3. ``allow-list`` (and ``markers``): every element at every depth is allowed by pydicom's
   dictionary and PS3.15 Table E.1-1 under the options in force; no private, UN, group length,
   command, curve/overlay or unknown tag; the de-identification markers agree with the options.
4. ``value-grammar``: every value obeys its VR's grammar (PS3.5 6.2); SOP classes are known
   storage classes; every UID under the DICOM root is a registered one; text decodes in the
   declared character set; no non-finite floats.
5. ``identifying-value``: no identifying value of the original (see :mod:`harvest`) appears in
   the output's bytes outside the pixel data, nor in any value pydicom reads from it.

Any exception inside the gate is itself a refusal (rule ``unreadable``): the gate fails closed.
"""

from __future__ import annotations

import datetime
import functools
import io
import math
import re
import struct
import warnings
from dataclasses import dataclass

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.charset import convert_encodings, decode_bytes, default_encoding
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import RawDataElement
from pydicom.filereader import _is_implicit_vr, data_element_generator
from pydicom.hooks import hooks

from .dictionary import (
    CODING_SCHEME_OIDS,
    DICOM_ROOT,
    KNOWN_UIDS,
    OUR_IMPLEMENTATION_CLASS_UID,
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    PIXEL_DATA,
    SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    UUID_ROOT,
    VENDOR_SOP_CLASSES,
    dictionary_vr,
    keyword,
    profile_rows,
)
from .harvest import harvest
from .refusal import GateRefused
from .structure import Node, Parsed, parse_part10, tree

__all__ = ["GateOptions", "check_dicom_release"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOptions:
    """The de-identification options the output claims to have been made under."""

    retain_modified_dates: bool
    retain_patient_characteristics: bool
    clean_descriptors: bool
    clean_pixel_data: bool

    def method_codes(self) -> frozenset[str]:
        """The CID 7050 codes (scheme DCM) an output made under these options must declare."""
        codes = {"113100"}
        if self.clean_pixel_data:
            codes.add("113101")
        if self.clean_descriptors:
            codes.add("113105")
        if self.retain_modified_dates:
            codes.add("113107")
        if self.retain_patient_characteristics:
            codes.add("113108")
        return frozenset(codes)


PSEUDONYM = re.compile(r"ANON-[A-Z2-7]{20}")
"""The de-identifier's pseudonym shape, required when the caller does not know the pseudonym."""
_DUMMIES = frozenset({"ANONYMIZED", "19000101", "19000101000000", "000000", "000D", "0", ""})
_ALLOWED_META = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
_REQUIRED_META = frozenset({0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012})
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_CLEANABLE_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "CS"})
_TEMPORAL = frozenset({"DA", "DT", "TM"})
_MARKER_CODES = frozenset({"113100", "113101", "113105", "113107", "113108"})
_STORAGE_CLASS_TAGS = frozenset({0x00080016, 0x00020002})
_SOP_CLASS_TAGS = frozenset({0x00081150, 0x00041510})


def _value_text(parsed: Parsed, node: Node, codec: str = "latin-1") -> str:
    return parsed.value(node).decode(codec).rstrip(" \x00")


def _values(parsed: Parsed, node: Node) -> list[str]:
    text = _value_text(parsed, node)
    return [v.strip(" \x00") for v in text.split("\\")] if text else []


def _empty(parsed: Parsed, node: Node) -> bool:
    if node.items is not None:
        return not node.items
    return not parsed.value(node).strip(b" \x00")


def _instance_uid_ok(uid: str) -> bool:
    return uid == "" or uid.startswith(UUID_ROOT) or uid in KNOWN_UIDS


# --------------------------------------------------------------------------- rule 2
_VOCABULARY_TAGS = frozenset({0x00080100, 0x00080102, 0x00080103, 0x00080104, 0x00080119, 0x00080120})
"""Coded-entry attributes: vocabulary, searched for name words case-sensitively (see rule 5)."""


def _text_of(value) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


_PLAIN_CHARSETS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6", "ISO_IR 100", "ISO_IR 192"})
"""Character sets whose text the raw-byte search already covers (needles are searched as Latin-1
and as UTF-8 bytes). Under any other, every text value pydicom decodes is searched as well."""


def _maybe_sequence(raw: RawDataElement, tag: int) -> bool:
    if raw.VR not in (None, "SQ", "UN"):
        return False
    return raw.VR == "SQ" or raw.length == 0xFFFFFFFF or bool(tag >> 16 & 1) or dictionary_vr(tag) in (None, "SQ")


def _pydicom_tree(ds, texts: list[str], vocabulary: list[str], words: frozenset[int], depth: int, decode: bool):
    """pydicom's element tree, and the text of the values pydicom decoded.

    Elements pydicom still holds encoded are converted only when pydicom could read them as a
    sequence (SQ, UN or no VR with an undefined length, a dictionary SQ, a tag the dictionary
    does not know), or when ``decode`` (an uncommon character set) asks for their text. The
    others are the very bytes the gate's own reader found at the same place (the trees are
    compared), which rule 5 searches as raw bytes."""
    out = []
    for key in sorted(ds.keys(), key=int):  # int order: BaseTag compares in Python
        tag = int(key)
        raw = ds.get_item(key)
        vr, value = raw.VR, raw.value
        converted = not isinstance(raw, RawDataElement)
        if not converted and (decode or _maybe_sequence(raw, tag)):
            elem = ds[key]
            vr, value, converted = elem.VR, elem.value, True
        if vr == "SQ":
            out.append((tag, [_pydicom_tree(item, texts, vocabulary, words, depth + 1, decode) for item in value]))
            continue
        out.append((tag, None))
        if not converted or (tag == PIXEL_DATA and depth == 0) or value is None:
            continue
        (vocabulary if vr == "CS" or tag in words else texts).append(_text_of(value))
    return out


class _NotLean(Exception):
    """The lean reading met something only pydicom's full conversion can tell: read it fully."""


def _lean_elements(elements, texts: list[str], vocabulary: list[str], words: frozenset[int], depth: int) -> list:
    """:func:`_pydicom_tree`'s tree and texts without building a pydicom Dataset per sequence item.

    pydicom's own functions do the reading (``_is_implicit_vr``, ``data_element_generator``,
    the ``raw_element_vr`` hook), composed as ``read_sequence`` / ``read_sequence_item`` /
    ``read_dataset`` compose them; only the Dataset objects, which cost most of the re-read,
    are left out. Anything else (a maybe-sequence pydicom would decode as a value, an
    exception) falls back to the full conversion, so the answer is pydicom's either way."""
    out = []
    for key in sorted(elements, key=int):
        tag, elem = int(key), elements[key]
        if isinstance(elem, RawDataElement):
            if not _maybe_sequence(elem, tag):
                out.append((tag, None))
                continue
            data: dict = {}
            hooks.raw_element_vr(elem, data, encoding=None, ds=None)
            if data["VR"] != "SQ":
                raise _NotLean
            items = _lean_sequence(elem.value or b"", elem.is_implicit_VR, elem.is_little_endian)
            out.append((tag, [_lean_elements(item, texts, vocabulary, words, depth + 1) for item in items]))
        elif elem.VR == "SQ":  # an undefined-length sequence, converted by the generator itself
            out.append(
                (
                    tag,
                    [
                        _lean_elements({k: item.get_item(k) for k in item.keys()}, texts, vocabulary, words, depth + 1)
                        for item in elem.value
                    ],
                )
            )
        else:  # converted while reading (as pydicom does SpecificCharacterSet): its text, as below
            out.append((tag, None))
            if not (tag == PIXEL_DATA and depth == 0) and elem.value is not None:
                (vocabulary if elem.VR == "CS" or tag in words else texts).append(_text_of(elem.value))
    return out


def _elements(ds) -> dict:
    """``{tag: ds.get_item(tag)}`` for every element: as they are held, a deferred one read."""
    return {
        key: ds.get_item(key) if isinstance(elem, RawDataElement) and elem.value is None else elem
        for key, elem in ds.items()
    }


def _lean_sequence(value: bytes, implicit: bool, little: bool) -> list[dict]:
    head = struct.Struct("<HHL" if little else ">HHL")
    fp, n, items = io.BytesIO(value), len(value), []
    while fp.tell() < n:  # read_sequence, with bytelength = len(value) as convert_SQ passes it
        header = fp.read(8)
        if len(header) < 8:
            raise _NotLean
        group, element, length = head.unpack(header)
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        items.append(_lean_dataset(fp, implicit, little, None if length == 0xFFFFFFFF else length))
    return items


def _lean_dataset(fp, implicit: bool, little: bool, length: int | None) -> dict:
    start = fp.tell()
    implicit = _is_implicit_vr(fp, implicit, little, None, is_sequence=True)
    fp.seek(start)
    elements: dict = {}
    generator = data_element_generator(fp, implicit, little, None, None, default_encoding, None)
    try:
        if length is None:
            for elem in generator:
                elements[elem.tag] = elem
        else:
            while fp.tell() - start < length:
                elem = next(generator)
                elements[elem.tag] = elem
    except StopIteration:
        pass
    except EOFError:
        if pydicom_config.settings.reading_validation_mode == pydicom_config.RAISE:
            raise
    except NotImplementedError:
        pass
    return elements


def vocabulary_tags(options: GateOptions) -> frozenset[int]:
    return _vocabulary_tags(options.clean_descriptors)


@functools.cache
def _vocabulary_tags(clean_descriptors: bool) -> frozenset[int]:
    """Elements whose values are vocabulary (besides CS): coded entries, and the descriptors the
    Clean Descriptors option keeps (reduced to clinical vocabulary by the de-identifier)."""
    if not clean_descriptors:
        return _VOCABULARY_TAGS
    return _VOCABULARY_TAGS | frozenset(tag for tag, row in profile_rows().items() if row.clean_descriptors == "C")


def rule_two_readings(output: bytes, parsed: Parsed, words: frozenset[int]) -> tuple[list[str], list[str]]:
    """pydicom (no ``force``) must read the same tree. Returns the value texts pydicom read
    (free text, vocabulary)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(io.BytesIO(output), force=False)
            texts: list[str] = []
            vocabulary: list[str] = []
            charset = ds.get("SpecificCharacterSet", "") or ""
            terms = [charset] if isinstance(charset, str) else list(charset)
            decode = not all(str(term).strip() in _PLAIN_CHARSETS for term in terms)
            theirs = None
            if not decode:
                try:
                    theirs = _lean_elements(_elements(ds), texts, vocabulary, words, 0)
                except Exception:
                    theirs = None  # pydicom's full conversion decides, below
            if theirs is None:
                texts, vocabulary = [], []
                theirs = _pydicom_tree(ds, texts, vocabulary, words, 0, decode)
            their_meta = [int(t) for t in ds.file_meta.keys()]
        except Exception:
            raise GateRefused("two-readings", "pydicom cannot read the released file as DICOM.") from None
    if their_meta != [n.tag for n in parsed.meta] or theirs != tree(parsed.dataset):
        raise GateRefused("two-readings", "pydicom reads the file differently from the release check's own reader.")
    return texts, vocabulary


# --------------------------------------------------------------------------- rule 3
_VERDICTS: dict[GateOptions, dict[tuple[int, str, bool], bool]] = {}
_VERDICTS_MAX = 20_000


class _AllowList:
    def __init__(self, parsed: Parsed, options: GateOptions, pseudonym: str | None) -> None:
        self.parsed, self.options, self.pseudonym = parsed, options, pseudonym
        self.rows = profile_rows()
        self.verdicts = _VERDICTS.setdefault(options, {})
        self.by_value = False  # set by the check of a node when its verdict depends on its value

    def refuse(self, tag: int, why: str) -> GateRefused:
        return GateRefused("allow-list", f"{keyword(tag)}: {why}.")

    def walk(self, nodes: list[Node], depth: int) -> None:
        for node in nodes:
            walk_items = self.check(node, depth)
            if walk_items and node.items:
                for item in node.items:
                    self.walk(item, depth + 1)

    def check(self, node: Node, depth: int) -> bool:
        """Refuse ``node`` or allow it; ``True``: its items are to be checked too.

        An allowance that the tag, the VR and the level decide alone (most: the value is not
        looked at) is remembered for these options; refusals and verdicts on values are not."""
        key = (node.tag, node.vr, depth == 0)
        verdict = self.verdicts.get(key)
        if verdict is not None:
            return verdict
        self.by_value = False
        verdict = self.check_node(node, depth)
        if not self.by_value:
            if len(self.verdicts) > _VERDICTS_MAX:
                self.verdicts.clear()
            self.verdicts[key] = verdict
        return verdict

    def check_node(self, node: Node, depth: int) -> bool:
        tag, vr, opts = node.tag, node.vr, self.options
        group, element = tag >> 16, tag & 0xFFFF
        if group % 2:
            raise self.refuse(tag, "private elements are not released")
        if group == 0x0000:
            raise self.refuse(tag, "command elements are not released")
        if group == 0x0002:
            raise self.refuse(tag, "file meta elements belong only in the file meta group")
        if element == 0x0000:
            raise self.refuse(tag, "group lengths are not released")
        if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
            raise self.refuse(tag, "curves and overlays are not released")
        if tag == 0xFFFCFFFC or tag not in DicomDictionary:
            raise self.refuse(tag, "the element is unknown to the data dictionary")
        if vr == "UN":
            raise self.refuse(tag, "values of unknown VR are not released")
        if tag == PIXEL_DATA and depth > 0:
            raise self.refuse(tag, "pixel data is released only at the top level")
        if tag in (PATIENT_NAME, PATIENT_ID):
            self.by_value = True
            self.check_pseudonym(node)
            return False
        row = self.rows.get(tag)
        if row is None:
            if vr == "SQ":
                return True
            if vr == "PN":
                raise self.refuse(tag, "person names outside the profile are not released")
            if vr in ("DA", "DT") and not opts.retain_modified_dates:
                raise self.refuse(tag, "dates are not released without the modified-dates option")
            if vr == "UI":
                self.by_value = True
                for uid in _values(self.parsed, node):
                    if not (_instance_uid_ok(uid) or uid in CODING_SCHEME_OIDS or uid in VENDOR_SOP_CLASSES):
                        raise self.refuse(tag, "a UID is neither replaced nor a registered one")
            return False
        codes = row.codes
        if opts.retain_patient_characteristics and row.characteristics == "K":
            return False
        if opts.retain_modified_dates and vr in _TEMPORAL:
            if row.modified_dates == "C" or (codes - {"X"} and tag != PATIENT_BIRTH_DATE):
                return False
        if opts.clean_descriptors and row.clean_descriptors == "C":
            if vr == "SQ":
                return True
            if vr in _CLEANABLE_VRS:
                return False
        if vr == "SQ":
            if codes & {"U", "U*"}:
                return True
            self.by_value = True  # (its items)
            if codes & {"Z", "D"} and not node.items:
                return False
            raise self.refuse(tag, "the profile removes or empties this sequence")
        if "K" in codes:
            return False
        self.by_value = True
        if vr == "UI" and codes & {"U", "D"}:
            if all(_instance_uid_ok(uid) for uid in _values(self.parsed, node)):
                return False
            raise self.refuse(tag, "a UID the profile replaces was not replaced")
        empty = _empty(self.parsed, node)
        if empty and codes & {"Z", "D", "U"}:
            return False
        if codes & {"D", "U"} and vr != "UI" and self.is_dummy(node):
            return False
        if codes == {"X"}:
            raise self.refuse(tag, "the profile removes this element")
        raise self.refuse(tag, "the profile requires this element to be empty or a dummy value")

    def is_dummy(self, node: Node) -> bool:
        if node.vr in _TEXT_VRS:
            return all(v in _DUMMIES or v == self.pseudonym for v in _values(self.parsed, node))
        return not any(self.parsed.value(node))  # binary: zero is the dummy

    def check_pseudonym(self, node: Node) -> None:
        text = _value_text(self.parsed, node, "ascii")
        if text == "":
            return
        if self.pseudonym is not None and text == self.pseudonym:
            return
        if self.pseudonym is None and PSEUDONYM.fullmatch(text):
            return
        raise self.refuse(node.tag, "the value is not the patient's pseudonym")


def _top(parsed: Parsed, nodes: list[Node], tag: int) -> Node | None:
    return next((n for n in nodes if n.tag == tag), None)


def rule_allow_list(parsed: Parsed, options: GateOptions, pseudonym: str | None) -> None:
    meta_tags = {n.tag for n in parsed.meta}
    for tag in sorted(meta_tags - _ALLOWED_META):
        raise GateRefused("allow-list", f"FileMeta {keyword(tag)}: not allowed in released file meta.")
    if not _REQUIRED_META <= meta_tags:
        raise GateRefused("allow-list", "The file meta information is incomplete.")
    if _value_text(parsed, _top(parsed, parsed.meta, 0x00020012)) != OUR_IMPLEMENTATION_CLASS_UID:
        raise GateRefused("allow-list", "The file meta does not name the de-identifier as its implementation.")
    for meta_tag, ds_tag in ((0x00020002, 0x00080016), (0x00020003, 0x00080018)):
        node = _top(parsed, parsed.dataset, ds_tag)
        if node is None or _value_text(parsed, node) != _value_text(parsed, _top(parsed, parsed.meta, meta_tag)):
            raise GateRefused("allow-list", f"FileMeta {keyword(meta_tag)} does not match {keyword(ds_tag)}.")
    _AllowList(parsed, options, pseudonym).walk(parsed.dataset, 0)


def rule_markers(parsed: Parsed, options: GateOptions, pseudonym: str | None) -> None:
    ds = parsed.dataset

    def refuse(reason: str) -> GateRefused:
        return GateRefused("markers", reason)

    name, pid = _top(parsed, ds, PATIENT_NAME), _top(parsed, ds, PATIENT_ID)
    if name is None or pid is None or _value_text(parsed, name) != _value_text(parsed, pid):
        raise refuse("PatientName and PatientID must both hold the patient's pseudonym.")
    if not _value_text(parsed, name):
        raise refuse("PatientName and PatientID must both hold the patient's pseudonym.")
    removed = _top(parsed, ds, 0x00120062)
    if removed is None or _value_text(parsed, removed) != "YES":
        raise refuse("PatientIdentityRemoved is not YES.")
    method = _top(parsed, ds, 0x00120063)
    if method is None or _empty(parsed, method):
        raise refuse("DeidentificationMethod is missing.")
    sequence = _top(parsed, ds, 0x00120064)
    codes: set[str] = set()
    for item in (sequence.items if sequence is not None else None) or []:
        scheme, value = _top(parsed, item, 0x00080102), _top(parsed, item, 0x00080100)
        if scheme is None or value is None or _value_text(parsed, scheme) != "DCM":
            raise refuse("DeidentificationMethodCodeSequence holds a code that is not a DCM code.")
        code = _value_text(parsed, value)
        if code not in _MARKER_CODES:
            raise refuse("DeidentificationMethodCodeSequence holds a code outside CID 7050.")
        codes.add(code)
    if codes != options.method_codes():
        raise refuse("DeidentificationMethodCodeSequence does not match the options in force.")
    longitudinal = _top(parsed, ds, 0x00280303)
    state = _value_text(parsed, longitudinal) if longitudinal is not None else ""
    if options.retain_modified_dates and state != "MODIFIED":
        raise refuse("LongitudinalTemporalInformationModified must be MODIFIED when dates are kept shifted.")
    if not options.retain_modified_dates and state not in ("", "REMOVED"):
        raise refuse("LongitudinalTemporalInformationModified must be REMOVED when dates are not kept.")
    if options.clean_pixel_data:
        burned = _top(parsed, ds, 0x00280301)
        if burned is None or _value_text(parsed, burned) != "NO":
            raise refuse("BurnedInAnnotation must be NO after the pixels were cleaned.")


# --------------------------------------------------------------------------- rule 4
_UI = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_AS = re.compile(r"[0-9]{1,3}[DWMY]")
"""PS3.5 asks for three digits; modalities write "75Y". Digits and a unit carry no text either way."""
_CS = re.compile(r"[A-Z0-9 _]{0,16}")
_DS = re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *")
_IS = re.compile(r" *[+-]?[0-9]+ *")
_TM = re.compile(r"([0-9]{2})(([0-9]{2})(([0-9]{2})(\.[0-9]{1,6})?)?)?")
_DT = re.compile(r"([0-9]{4,14})(\.[0-9]{1,6})?([+-][0-9]{4})?")
_MAX_LEN = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "SH": 16, "TM": 14, "UI": 64}
_MAX_TEXT = {"LT": 10240, "ST": 1024}
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
"""Control characters other than TAB, LF, FF, CR and ESC (which LT/ST/UT may hold)."""
_VALUE_CONTROL = re.compile("[\x00-\x1a\x1c-\x1f]")
"""Control characters other than ESC (ISO 2022 escapes), in single-line values."""
_CHARSETS = {
    "": "ascii",
    "ISO_IR 6": "ascii",
    "ISO 2022 IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 166": "tis_620",
    "ISO_IR 13": "shift_jis",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
}


def _date_ok(text: str) -> bool:
    if len(text) != 8 or not text.isdigit():
        return False
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


_TM_ACR_NEMA = re.compile(r"([0-9]{2}):([0-9]{2})(:([0-9]{2})(\.[0-9]{1,6})?)?")


def _time_ok(text: str) -> bool:
    if ":" in text:  # the ACR-NEMA form PS3.5 still asks readers to accept (Table 6.2-1, TM, note)
        m = _TM_ACR_NEMA.fullmatch(text)
        return bool(m) and int(m.group(1)) < 24 and int(m.group(2)) < 60 and int(m.group(4) or 0) < 61
    m = _TM.fullmatch(text)
    if not m:
        return False
    hh, mm, ss = int(m.group(1)), int(m.group(3) or 0), int(m.group(5) or 0)
    return hh < 24 and mm < 60 and ss < 61


def _datetime_ok(text: str) -> bool:
    m = _DT.fullmatch(text)
    if not m or len(text) > 26:
        return False
    digits, fraction, offset = m.group(1), m.group(2), m.group(3)
    if len(digits) % 2 or (fraction and len(digits) != 14):
        return False
    year, month, day = digits[:4], digits[4:6] or "01", digits[6:8] or "01"
    if not _date_ok(year + month + day):
        return False
    if len(digits) > 8 and not _time_ok(digits[8:]):
        return False
    return offset is None or (int(offset[1:3]) <= 14 and int(offset[3:]) < 60)


_PASSED: set[tuple[int, str, bytes, object]] = set()
"""(tag, VR, value bytes, character set) of text values that passed :meth:`_Grammar.check`
(a pure function of them): most values repeat from file to file. Only passes are kept."""
_PASSED_MAX, _PASSED_MAX_LENGTH = 50_000, 256
_FLOAT_VRS = frozenset({"FL", "FD", "OF", "OD"})


class _Grammar:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.little = parsed.little
        charset = _top(parsed, parsed.dataset, 0x00080005)
        terms = [t.strip() for t in _value_text(parsed, charset, "ascii").split("\\")] if charset is not None else [""]
        self.codec = _CHARSETS.get(terms[0]) if len(terms) == 1 else None
        self.terms = terms
        if self.codec is None:
            self.encodings = convert_encodings(terms)  # ISO 2022 code extensions: pydicom decodes them

    def refuse(self, tag: int, why: str) -> GateRefused:
        return GateRefused("value-grammar", f"{keyword(tag)}: {why}.")

    def decode(self, raw: bytes, vr: str) -> str:
        if vr not in ("PN", "LO", "SH", "LT", "ST", "UT", "UC"):
            return raw.decode("ascii")
        if self.codec is not None:
            return raw.decode(self.codec)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return decode_bytes(raw, self.encodings, {0x5C, 0x3D, 0x5E, 0x0D, 0x0A, 0x09, 0x0C})

    def walk(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.items is not None:
                for item in node.items:
                    self.walk(item)
            elif node.fragments is None:
                self.check(node)

    def check(self, node: Node) -> None:
        tag, vr = node.tag, node.vr
        if vr not in _TEXT_VRS and vr not in _FLOAT_VRS:
            return  # no grammar to check (and a native PixelData is not copied for nothing)
        raw = self.parsed.value(node)
        if vr in _TEXT_VRS and len(raw) <= _PASSED_MAX_LENGTH:
            # A value is checked once per character set: the same bytes pass the same way.
            key = (tag, vr, raw, self.codec if self.codec is not None else tuple(self.terms))
            if key in _PASSED:
                return
            self.check_value(node, tag, vr, raw)
            if len(_PASSED) >= _PASSED_MAX:
                _PASSED.clear()
            _PASSED.add(key)
            return
        self.check_value(node, tag, vr, raw)

    def check_value(self, node: Node, tag: int, vr: str, raw: bytes) -> None:
        if vr in ("FL", "FD", "OF", "OD"):
            size = 4 if vr in ("FL", "OF") else 8
            fmt = ("<" if self.little else ">") + ("f" if size == 4 else "d") * (len(raw) // size)
            if not all(math.isfinite(v) for v in struct.unpack(fmt, raw)):
                raise self.refuse(tag, "a floating-point value is not finite")
            return
        if vr not in _TEXT_VRS:
            return
        try:
            text = self.decode(raw, vr)
        except (UnicodeDecodeError, UnicodeError, LookupError, ValueError, UserWarning):
            raise self.refuse(tag, "the text does not decode in the declared character set") from None
        text = text.rstrip(" \x00")  # padding
        if vr in ("LT", "ST", "UT"):
            if len(text) > _MAX_TEXT.get(vr, 2**32 - 2) or _TEXT_CONTROL.search(text):
                raise self.refuse(tag, "the text is too long or holds control characters")
            return
        values = text.split("\\") if vr != "UR" else [text]
        for value in values:
            self.value(tag, vr, value)

    def value(self, tag: int, vr: str, value: str) -> None:
        if _VALUE_CONTROL.search(value):
            raise self.refuse(tag, "a value holds control characters")
        limit = _MAX_LEN.get(vr)
        if limit is not None and len(value) > limit:
            raise self.refuse(tag, f"a value is longer than {vr} allows")
        if value == "":
            return
        ok = True
        if vr == "UI":
            ok = bool(_UI.fullmatch(value))
            if ok and value.startswith(DICOM_ROOT) and value not in KNOWN_UIDS:
                raise self.refuse(tag, "a UID in the DICOM root is not a registered one")
            if ok and tag in _STORAGE_CLASS_TAGS and value not in STORAGE_SOP_CLASSES:
                raise self.refuse(tag, "the SOP class is not a known storage class")
            if ok and tag in _SOP_CLASS_TAGS and value not in SOP_CLASSES and value not in VENDOR_SOP_CLASSES:
                raise self.refuse(tag, "the referenced SOP class is not a known one")
        elif vr == "DA":
            ok = _date_ok(value)
        elif vr == "TM":
            ok = _time_ok(value.rstrip())
        elif vr == "DT":
            ok = _datetime_ok(value.rstrip())
        elif vr == "AS":
            ok = bool(_AS.fullmatch(value))
        elif vr == "CS":
            ok = bool(_CS.fullmatch(value))
        elif vr == "DS":
            ok = bool(_DS.fullmatch(value)) and math.isfinite(float(value))
        elif vr == "IS":
            ok = bool(_IS.fullmatch(value)) and -(2**31) <= int(value) < 2**31
        elif vr == "AE":
            ok = value.isascii()
        elif vr == "PN":
            groups = value.split("=")
            ok = len(groups) <= 3 and all(len(g) <= 64 and len(g.split("^")) <= 5 for g in groups)
        elif vr == "UR":
            ok = value.isascii() and not value.startswith(" ")
        if not ok:
            raise self.refuse(tag, f"a value does not follow the {vr} grammar")


def rule_value_grammar(parsed: Parsed) -> None:
    grammar = _Grammar(parsed)
    for node in parsed.meta:
        if node.vr == "UI":
            grammar.check(node)
    grammar.walk(parsed.dataset)


# --------------------------------------------------------------------------- rule 5
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")  # word characters
_NONE, _DIGIT, _WORD = 0, 1, 2


def _edge_ok(hay: bytes, i: int, edge: int) -> bool:
    if edge == _NONE or i < 0 or i >= len(hay):
        return True
    return hay[i] not in (_DIGITS if edge == _DIGIT else _ALNUM)


def _occurs(hay: bytes, needle: bytes, before: int, after: int) -> bool:
    """``needle`` in ``hay`` with the given edges (no digit / no letter or digit) on each side."""
    i = hay.find(needle)
    while i >= 0:
        if _edge_ok(hay, i - 1, before) and _edge_ok(hay, i + len(needle), after):
            return True
        i = hay.find(needle, i + 1)
    return False


def _encodings(text: str) -> list[bytes]:
    out: list[bytes] = []
    for codec in ("latin-1", "utf-8"):
        try:
            b = text.encode(codec)
        except UnicodeEncodeError:
            continue
        if b not in out:
            out.append(b)
    return out


def _found(items: set[str], before: int, after: int, fold: bool, haystack: bytes, text: str) -> bool:
    """Whether any of ``items`` is in the raw bytes or in the text pydicom read (UTF-8 encoded,
    so both are searched the same way); ``fold``: case-insensitively (ASCII letters)."""
    if not items:
        return False
    text_bytes = text.encode("utf-8", "surrogateescape")
    if fold:
        haystack, text_bytes = haystack.lower(), text_bytes.lower()
    for item in items:
        for needle in _encodings(item.lower() if fold else item):
            if _occurs(haystack, needle, before, after) or _occurs(text_bytes, needle, before, after):
                return True
    return False


def _vocabulary_spans(nodes: list[Node], spans: list[tuple[int, int]], words: frozenset[int]) -> None:
    for node in nodes:
        if node.items is not None:
            for item in node.items:
                _vocabulary_spans(item, spans, words)
        elif node.vr == "CS" or node.tag in words:
            spans.append((node.start, node.start + node.length))


def _cut(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    pieces, pos = [], 0
    for start, stop in sorted(spans):
        pieces.append(data[pos:start])
        pos = max(pos, stop)
    pieces.append(data[pos:])
    return b"\n".join(pieces)


def rule_identifying_values(
    original: bytes, parsed: Parsed, texts: list[str], vocabulary: list[str], words: frozenset[int]
) -> None:
    """UIDs, dates and whole names are searched everywhere outside the pixel data (names
    case-insensitively). Name components and IDs are searched as whole words: case-insensitively
    in free text and raw bytes, case-sensitively in vocabulary values (CS, coded entries, cleaned
    descriptors: :func:`vocabulary_tags`), where "ABDOMEN" or "PERFUSION" is a body part or an
    image type, not the "Abdomen" of a test patient's name."""
    needles = harvest(original)
    data = parsed.data
    pixel = [parsed.pixel_span] if parsed.pixel_span is not None else []
    everything = _cut(data, pixel)
    all_text = "\n".join(texts + vocabulary)
    kind = None
    if _found(needles.uids, _DIGIT, _DIGIT, False, everything, all_text):
        kind = "a UID"
    elif _found(needles.dates, _DIGIT, _NONE, False, everything, all_text) or _found(
        {f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in needles.dates}, _NONE, _NONE, False, everything, all_text
    ):
        kind = "a date"
    elif _found(needles.names, _NONE, _NONE, True, everything, all_text):
        kind = "a person name"
    elif needles.words:
        spans: list[tuple[int, int]] = []
        _vocabulary_spans(parsed.dataset, spans, words)
        free = _cut(data, pixel + spans)
        vocab_bytes = b"\n".join(data[a:b] for a, b in spans)
        if _found(needles.words, _WORD, _WORD, True, free, "\n".join(texts)) or _found(
            needles.words, _WORD, _WORD, False, vocab_bytes, "\n".join(vocabulary)
        ):
            kind = "a name or identifier"
    if kind is not None:
        raise GateRefused("identifying-value", f"An identifying value of the original ({kind}) is in the output.")


# --------------------------------------------------------------------------- the gate
def check_dicom_release(
    original: bytes, output: bytes, *, options: GateOptions, expected_pseudonym: str | None
) -> None:
    """Return ``None`` when ``output`` may be released; raise :class:`GateRefused` otherwise."""
    try:
        if not isinstance(options, GateOptions):
            raise TypeError("options")
        original, output = bytes(original), bytes(output)
        parsed = parse_part10(output)
        words = vocabulary_tags(options)
        texts, vocabulary = rule_two_readings(output, parsed, words)
        rule_value_grammar(parsed)  # before the allow-list: text in a UID is a grammar fault first
        rule_allow_list(parsed, options, expected_pseudonym)
        rule_markers(parsed, options, expected_pseudonym)
        rule_identifying_values(original, parsed, texts, vocabulary, words)
    except GateRefused:
        raise
    except Exception:
        raise GateRefused("unreadable", "The release check could not read the file.") from None
