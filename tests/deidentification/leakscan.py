"""Leak scanner: re-parse released bytes and look for anything of the source.

It deliberately shares no code with the library's own validation: it walks
the re-parsed output with plain pydicom, and compares against values
collected from the *input*.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from .corpus import NEEDLES

DICOM_ROOT = "1.2.840.10008."
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


def iter_elements(ds: Dataset, path: str = "") -> Iterator[tuple[str, object]]:
    """(path, element) for every element at every depth, file meta included."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and not path:
        for elem in meta:
            yield f"FileMeta>{elem.keyword or elem.tag}", elem
    for elem in ds:
        here = f"{path}>{elem.keyword or elem.tag}" if path else str(elem.keyword or elem.tag)
        yield here, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                yield from iter_elements(item, f"{here}[{i}]")


def text_values(elem: object) -> list[str]:
    vr = elem.VR  # type: ignore[attr-defined]
    if vr in _BINARY_VRS or vr == "SQ":
        return []
    value = elem.value  # type: ignore[attr-defined]
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        values = [value]
    else:
        values = list(value)
    out = []
    for v in values:
        out.append(v.decode("latin-1") if isinstance(v, bytes) else str(v))
    return out


@dataclass
class SourceFacts:
    """What the scanner must not find again, collected from an input file."""

    uids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)


def collect_source_facts(ds: Dataset, *, identifying_texts: bool) -> SourceFacts:
    """Instance UIDs, dates and (optionally) identifying texts of the input.

    ``identifying_texts`` collects the values of PN elements and of a fixed
    list of identifying keywords (names, IDs, institution, station...).
    """
    facts = SourceFacts()
    identifying = {
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "InstitutionName",
        "InstitutionAddress",
        "StationName",
        "InstitutionalDepartmentName",
        "AccessionNumber",
        "StudyID",
        "DeviceSerialNumber",
        "RequestedProcedureID",
        "PatientAddress",
        "SourceApplicationEntityTitle",
        "SendingApplicationEntityTitle",
        "StudyDescription",
        "SeriesDescription",
        "ImageComments",
        "ProtocolName",
    }
    for _path, elem in iter_elements(ds):
        vr = elem.VR  # type: ignore[attr-defined]
        keyword = elem.keyword  # type: ignore[attr-defined]
        if elem.tag.group % 2 == 1:  # type: ignore[attr-defined]
            continue
        if vr == "UI" and keyword not in {"TransferSyntaxUID", "ImplementationClassUID"}:
            for v in text_values(elem):
                v = v.strip(" \x00")
                if v and not v.startswith(DICOM_ROOT) and UID(v).name == v:
                    facts.uids.add(v)
        elif vr == "DA":
            facts.dates.update(v.strip() for v in text_values(elem) if v.strip())
        elif vr == "DT":
            facts.dates.update(v.strip()[:8] for v in text_values(elem) if len(v.strip()) >= 8)
        elif identifying_texts and (vr == "PN" or keyword in identifying):
            facts.texts.update(v.strip(" \x00^") for v in text_values(elem) if len(v.strip(" \x00^")) >= 4)
    return facts


def raw_payload(data: bytes) -> bytes:
    """The released bytes with a deflated dataset inflated (so it can be searched)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    if ds.file_meta.TransferSyntaxUID.is_deflated:
        start = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
        return data[:start] + zlib.decompress(data[start:], -zlib.MAX_WBITS)
    return data


def scan_released(
    data: bytes,
    *,
    facts: SourceFacts | None = None,
    needles: Iterable[str] = NEEDLES,
    allowed_texts: Iterable[str] = (),
) -> list[str]:
    """Every leak found in ``data`` (empty list = clean)."""
    leaks: list[str] = []
    needles = list(needles)
    allowed = set(allowed_texts)
    payload = raw_payload(data)
    for needle in needles:
        for form in {needle, needle.upper()}:
            if form.encode("latin-1") in payload:
                leaks.append(f"raw bytes contain {needle!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data))  # re-parse (inflates deflated data)
    for path, elem in iter_elements(ds):
        if elem.tag.group % 2 == 1:  # type: ignore[attr-defined]
            leaks.append(f"{path}: private element")
            continue
        values = text_values(elem)
        for v in values:
            low = v.lower()
            for needle in needles:
                if needle.lower() in low:
                    leaks.append(f"{path}: contains planted {needle!r}")
            if facts is None:
                continue
            stripped = v.strip(" \x00")
            if elem.VR == "UI" and stripped in facts.uids:  # type: ignore[attr-defined]
                leaks.append(f"{path}: original UID")
            if elem.VR == "DA" and stripped in facts.dates:  # type: ignore[attr-defined]
                leaks.append(f"{path}: original date")
            if elem.VR == "DT" and stripped[:8] in facts.dates:  # type: ignore[attr-defined]
                leaks.append(f"{path}: original date")
            if elem.VR != "UI":  # type: ignore[attr-defined]
                for uid in facts.uids:
                    if len(uid) >= 10 and uid in stripped:
                        leaks.append(f"{path}: contains an original UID")
                for text in facts.texts:
                    if text in allowed:
                        continue
                    if text.lower() in low:
                        leaks.append(f"{path}: contains original identifying text")
    for uid in facts.uids if facts else ():
        if len(uid) >= 10 and uid.encode("ascii") in payload:
            leaks.append("raw bytes contain an original UID")
    return leaks


def every_table_as_text() -> dict[str, str]:
    """Every row of every table of the database, as text, except the patient link table (the one
    place meant to hold original patient keys, readable by project admins only)."""
    from django.db import connection

    from clinic_ai.deidentification.models import PatientLink

    link_table = PatientLink._meta.db_table
    dump = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table == link_table:
                continue
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names come from the database
            dump[table] = "\n".join(" | ".join(str(v) for v in row) for row in cursor.fetchall())
    return dump
