"""Hostile encodings (issue 7) through `manage.py deidentify` and through a browser upload.

Every case of ``hostile.py`` (fresh identifiers each run) must be held or rejected, with a reason
that is a sentence free of patient data, and none of its planted values may survive anywhere: not
in an output file (its raw bytes, and every value pydicom reads from it, opaque OB/UN included),
not in the report, not in any table, not in any log record. The de-identifier alone must do this:
nothing here relies on a release gate after it.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.core.management import call_command
from pydicom.dataset import Dataset

from clinic_ai.studies import storage
from clinic_ai.studies.models import Image, ImageStatus, UploadedFile, UploadStatus
from tests.conftest import run_pipeline_inline, upload_through_api

from .hostile import Case, build_cases, clean_case
from .leakscan import every_table_as_text

CASES = build_cases()


# -- an independent scanner ----------------------------------------------------------------


def _forms(value: str) -> set[str]:
    """The forms a planted value could take in a file, a table or a log line."""
    forms = {value, value.upper(), value.lower(), value.replace("^", " ")}
    if len(value) == 8 and value.isdigit():  # a date, also as a date column prints it
        forms.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return forms


def _find(text: str | bytes, planted: dict[str, str]) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    low = text.lower()
    return sorted({label for label, value in planted.items() if any(f.lower() in low for f in _forms(value))})


def _pydicom_values(data: bytes) -> list[str]:
    """Every value pydicom reads from ``data`` (forced, file meta included), as text: strings as
    they decode, bytes (OB, OW, UN, values it could not decode) as latin-1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    out: list[str] = []

    def walk(dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            try:
                elem = dataset[tag]
                value = elem.value
            except Exception:  # undecodable: its raw bytes, as read
                raw = dataset.get_item(tag)
                out.append(bytes(getattr(raw, "value", b"") or b"").decode("latin-1"))
                continue
            if elem.VR == "SQ":
                for item in value or []:
                    walk(item)
                continue
            values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
            for v in values:
                out.append(bytes(v).decode("latin-1") if isinstance(v, bytes | bytearray | memoryview) else str(v))

    walk(getattr(ds, "file_meta", Dataset()))
    walk(ds)
    return out


def leaks_in_file(data: bytes, planted: dict[str, str]) -> list[str]:
    """Planted values found in a file's raw bytes or in any value pydicom reads from it."""
    found = set(_find(data, planted))
    try:
        for value in _pydicom_values(data):
            found.update(_find(value, planted))
    except Exception:
        pass  # not DICOM at all: its raw bytes were searched
    return sorted(found)


def _is_sentence_without(reason: str, planted: dict[str, str]) -> bool:
    return bool(reason) and reason[0].isupper() and reason.endswith(".") and not _find(reason, planted)


def _log_text(caplog) -> str:
    return "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)


# -- the generator itself ------------------------------------------------------------------


def test_there_are_at_least_twice_as_many_cases_as_classes_and_every_class_is_covered():
    assert len(CASES) >= 14
    assert {case.klass for case in CASES} >= set(range(1, 7))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_scanner_finds_every_planted_value_in_the_input(case: Case):
    assert leaks_in_file(case.data, case.planted) == sorted(case.planted)


def test_identifiers_are_fresh_every_run():
    assert build_cases()[0].planted["PatientName"] != build_cases()[0].planted["PatientName"]


def test_the_clean_baseline_is_released_without_its_identifiers(tmp_path, db):
    """The cases are variants of a file the de-identifier releases: what stops them is the variant."""
    case = clean_case()
    report = _run_cli(tmp_path, [case])
    assert [row["status"] for row in report] == ["released"], report
    output = (tmp_path / "out" / report[0]["output"]).read_bytes()
    assert leaks_in_file(output, case.planted) == []


def test_a_valid_but_unregistered_class_uid_is_emptied_not_kept(tmp_path):
    """A vendor's SOP class UID in ReferencedSOPClassUID is a valid UID nobody can vouch for:
    digits can spell a number as well as a class. The pydicom path empties it (the fast path
    leaves the file to it) and the file is released; text there is rejected (the cases above)."""
    from clinic_ai.deid import DeidOptions
    from clinic_ai.deid.fastpath import Fallback, deidentify_bytes
    from clinic_ai.deid.process import process_dicom

    from . import corpus as C
    from .hostile import Identity, _build, baseline, explicit, pad, sequence

    who = Identity.fresh()
    vendor_class = who.hidden_uid  # digits and dots, outside 1.2.840.10008.
    ref = explicit(0x00081150, "UI", pad(vendor_class.encode(), "UI"))
    data = _build(
        who,
        [*baseline(who, is_implicit=False), (0x00081140, sequence(0x00081140, [ref], is_implicit=False))],
        is_implicit=False,
    )
    assert vendor_class.encode() in data
    with pytest.raises(Fallback):
        deidentify_bytes(data, options=DeidOptions(), uid_secret=C.UID_SECRET, identity=C.identity_for)
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(data)
    outcome = process_dicom(
        src,
        dst,
        options=DeidOptions(),
        uid_secret=C.UID_SECRET,
        patient_secret=C.PATIENT_SECRET,
        project_key=C.PROJECT_KEY,
        template_for=lambda device: None,
        detector=None,
    )
    assert outcome.status == "released", outcome.reason
    released = pydicom.dcmread(dst)
    assert released.ReferencedImageSequence[0].ReferencedSOPClassUID == ""
    assert leaks_in_file(dst.read_bytes(), {"vendor class": vendor_class, "name": who.name}) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_deidentifier_alone_rejects_every_case_with_a_reason(case: Case, tmp_path):
    """The library's DICOM step (fast path first, as the pipeline runs it), without the upload's
    own inspection in front of it: it must refuse every case itself, and write nothing."""
    from clinic_ai.deid import DeidOptions
    from clinic_ai.deid.process import process_dicom

    from . import corpus as C

    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(case.data)
    outcome = process_dicom(
        src,
        dst,
        options=DeidOptions(),
        uid_secret=C.UID_SECRET,
        patient_secret=C.PATIENT_SECRET,
        project_key=C.PROJECT_KEY,
        template_for=lambda device: None,
        detector=None,
    )
    assert outcome.status == "rejected", (case.name, outcome.status)
    assert _is_sentence_without(outcome.reason, case.planted), outcome.reason
    assert not dst.exists()


# -- through the command line --------------------------------------------------------------


def _run_cli(tmp_path: Path, cases: list[Case]) -> list[dict]:
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for case in cases:
        (source / f"{case.name}.dcm").write_bytes(case.data)
    report = tmp_path / "report.json"
    call_command("deidentify", str(source), str(target), "--report", str(report), "--no-ocr", stdout=io.StringIO())
    return json.loads(report.read_text())["files"]


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli_holds_or_rejects_and_leaks_nothing(case: Case, tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):
        report = _run_cli(tmp_path, [case])
    (row,) = report
    assert row["status"] in ("held", "rejected"), (case.name, row)
    assert _is_sentence_without(row["reason"], case.planted), row["reason"]
    assert _find(json.dumps(report), case.planted) == []
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert leaks_in_file(path.read_bytes(), case.planted) == [], (case.name, path.name)
    assert _find(_log_text(caplog), case.planted) == []
    for table, text in every_table_as_text().items():
        assert _find(text, case.planted) == [], (case.name, table)


# -- through a browser upload --------------------------------------------------------------


def _files_under(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_upload_holds_or_rejects_and_leaks_nothing(case: Case, client, project, radiologist, caplog):
    client.force_login(radiologist)
    media_before = set(_files_under(settings.MEDIA_ROOT))
    with caplog.at_level(logging.DEBUG):
        upload_through_api(client, project, {f"{case.name}.dcm": case.data})
        run_pipeline_inline()
    upload = UploadedFile.objects.get(batch__project=project)
    image = Image.objects.filter(project=project).first()
    if upload.status == UploadStatus.REJECTED:
        assert image is None
        reason = upload.reason
    else:
        assert image is not None and image.status == ImageStatus.HELD, (case.name, upload.status, image)
        reason = image.hold_reason
        # The held copy is de-identified: nothing planted may be in it either.
        deid = storage.quarantine_path(image.deid_path).read_bytes()
        assert leaks_in_file(deid, case.planted) == [], case.name
    assert _is_sentence_without(reason, case.planted), reason
    # Nothing was released, and no new file under the media root carries a planted value.
    assert not Image.objects.filter(status=ImageStatus.RELEASED).exists()
    for path in set(_files_under(settings.MEDIA_ROOT)) - media_before:
        assert leaks_in_file(path.read_bytes(), case.planted) == [], (case.name, path.name)
    assert _find(_log_text(caplog), case.planted) == []
    for table, text in every_table_as_text().items():
        assert _find(text, case.planted) == [], (case.name, table)
