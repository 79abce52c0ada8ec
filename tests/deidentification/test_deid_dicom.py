"""End-to-end DICOM de-identification over the planted corpus."""

from __future__ import annotations

import datetime as dt
import io
import json
import warnings
from dataclasses import dataclass
from functools import cache

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from clinic_ai.deid import (
    DEID_VERSION,
    IMPLEMENTATION_CLASS_UID,
    DeidOptions,
    DeidResult,
    NotDicomError,
    ReleaseValidationError,
    TruncatedDicomError,
    UnsupportedDicomError,
    deidentify_dataset,
    deidentify_file,
    derive_patient_identity,
    dicom_to_bytes,
    read_dicom,
    validate_released,
)

from . import corpus as C
from .corpus import PATIENT_SECRET, PROJECT_KEY, UID_SECRET, identity_for
from .leakscan import collect_source_facts, iter_elements, scan_released

NAMES = list(C.CORPUS_SOURCES)
CLEAN = DeidOptions(clean_descriptors=True)
DEFAULT = DeidOptions()


@dataclass(frozen=True)
class Run:
    source: Dataset
    result: DeidResult
    released: bytes
    pseudonym: str
    shift: int

    @property
    def out(self) -> Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(io.BytesIO(self.released))


@cache
def _corpus() -> dict[str, C.CorpusFile]:
    return C.build_corpus()


@cache
def run(name: str, clean: bool = False) -> Run:
    data = _corpus()[name].data
    src = read_dicom(data)
    pseudonym, shift = identity_for(src)
    result = deidentify_dataset(
        src,
        options=CLEAN if clean else DEFAULT,
        uid_secret=UID_SECRET,
        patient_pseudonym=pseudonym,
        date_shift_days=shift,
    )
    return Run(src, result, dicom_to_bytes(result.dataset), pseudonym, shift)


def _shifted(date: str, days: int) -> str:
    return (dt.datetime.strptime(date, "%Y%m%d").date() + dt.timedelta(days=days)).strftime("%Y%m%d")


# ------------------------------------------------------------------ leaks
@pytest.mark.parametrize("clean", [False, True], ids=["default", "clean-descriptors"])
@pytest.mark.parametrize("name", NAMES)
def test_no_planted_identifier_uid_or_date_survives(name: str, clean: bool) -> None:
    r = run(name, clean)
    facts = collect_source_facts(r.source, identifying_texts=True)
    assert C.PRIOR_STUDY_UID in facts.uids and C.STUDY_DATE in facts.dates  # the scanner sees the plants
    leaks = scan_released(r.released, facts=facts)
    assert leaks == []


@pytest.mark.parametrize("name", NAMES)
def test_scanner_finds_the_plants_in_the_input(name: str) -> None:
    """Guard against a blind scanner: the planted input must light it up."""
    data = _corpus()[name].data
    facts = collect_source_facts(read_dicom(data), identifying_texts=True)
    leaks = scan_released(data, facts=facts)
    joined = "\n".join(leaks)
    for needle in ("Jane", "MRN55501234", "ACME PHI", "PrivNested", "Wallaby", "MUNGO"):
        assert needle in joined
    assert "private element" in joined and "original UID" in joined and "original date" in joined


# ------------------------------------------------------------------ pixels
@pytest.mark.parametrize("name", NAMES)
def test_pixel_data_is_byte_identical_and_stays_compressed(name: str) -> None:
    r = run(name)
    out = r.out
    if r.source.file_meta.TransferSyntaxUID.is_deflated:  # released inflated, as the gate requires
        assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    else:
        assert out.file_meta.TransferSyntaxUID == r.source.file_meta.TransferSyntaxUID
    assert out.file_meta.TransferSyntaxUID.is_compressed == C.CORPUS_SOURCES[name][1]
    assert out.PixelData == r.source.PixelData
    for keyword in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation", "NumberOfFrames"):
        assert out.get(keyword) == r.source.get(keyword)


# ------------------------------------------------------------------ markers
@pytest.mark.parametrize("clean", [False, True], ids=["default", "clean-descriptors"])
@pytest.mark.parametrize("name", ["ct", "us_j2k", "deflated"])
def test_markers_code_sequence_and_file_meta(name: str, clean: bool) -> None:
    r = run(name, clean)
    out = r.out
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert any(DEID_VERSION in m for m in out.DeidentificationMethod)
    codes = {(i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence}
    expected = {("113100", "DCM"), ("113107", "DCM"), ("113108", "DCM")}
    if clean:
        expected.add(("113105", "DCM"))
    assert codes == expected
    meaning = {i.CodeValue: i.CodeMeaning for i in out.DeidentificationMethodCodeSequence}
    assert meaning["113100"] == "Basic Application Confidentiality Profile"
    meta = out.file_meta
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID != r.source.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == out.SOPClassUID == r.source.SOPClassUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName != C.IMPLEMENTATION_VERSION
    assert "SourceApplicationEntityTitle" not in meta and "SendingApplicationEntityTitle" not in meta
    assert out.PatientName == r.pseudonym and out.PatientID == r.pseudonym
    assert r.pseudonym.startswith("ANON-")


def test_burned_in_annotation_is_left_as_the_source_says() -> None:
    assert run("rle_multiframe").out.BurnedInAnnotation == run("rle_multiframe").source.BurnedInAnnotation == "NO"
    assert "BurnedInAnnotation" not in run("ct").out


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("clean", [False, True], ids=["default", "clean-descriptors"])
@pytest.mark.parametrize("name", NAMES)
def test_validate_released_accepts_our_output(name: str, clean: bool) -> None:
    r = run(name, clean)
    validate_released(r.released, expected_pseudonym=r.pseudonym)


@pytest.mark.parametrize("name", ["ct", "us_j2k", "deflated", "enhanced_mr_multiframe"])
def test_validate_released_rejects_the_original(name: str) -> None:
    with pytest.raises(ReleaseValidationError) as info:
        validate_released(_corpus()[name].data)
    message = str(info.value)
    problems = "\n".join(info.value.problems)
    # emri_small already claims PatientIdentityRemoved=YES, but has no code sequence
    assert "PatientIdentityRemoved: not YES" in problems or "113100 (Basic Profile) missing" in problems
    assert "private element present" in problems
    assert "PatientAddress: present but must be removed" in problems
    assert "OverlayComments" in problems or "(6000,4000)" in problems
    assert "UID not replaced" in problems
    for needle in C.NEEDLES:
        assert needle.lower() not in message.lower()
        assert needle.lower() not in problems.lower()


def test_validate_released_catches_a_single_reintroduced_leak() -> None:
    r = run("ct")
    ds = r.out
    ds.InstitutionName = "Anything"
    with pytest.raises(ReleaseValidationError, match="InstitutionName"):
        validate_released(dicom_to_bytes(ds))
    ds = r.out
    ds.RequestAttributesSequence = [Dataset()]
    with pytest.raises(ReleaseValidationError, match="RequestAttributesSequence"):
        validate_released(dicom_to_bytes(ds))
    ds = r.out
    ds.ReferencedRequestSequence[0].StudyInstanceUID = "1.2.3.4.5.6"
    with pytest.raises(ReleaseValidationError, match="ReferencedRequestSequence>StudyInstanceUID"):
        validate_released(dicom_to_bytes(ds))
    ds = r.out
    ds.add_new(0x00291010, "LO", "x")
    with pytest.raises(ReleaseValidationError, match="private"):
        validate_released(dicom_to_bytes(ds))
    with pytest.raises(ReleaseValidationError, match="pseudonym"):
        validate_released(r.released, expected_pseudonym="ANON-SOMEONEELSE")


# ------------------------------------------------------------------ content
def test_identifying_attributes_removed_or_emptied_at_every_depth() -> None:
    out = run("ct").out
    for keyword in (
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "IssuerOfPatientID",
        "PerformingPhysicianName",
        "OperatorsName",
        "PhysiciansOfRecord",
        "InstitutionName",
        "InstitutionAddress",
        "StationName",
        "InstitutionalDepartmentName",
        "StudyDescription",
        "SeriesDescription",
        "ImageComments",
        "RequestAttributesSequence",
        "IconImageSequence",
        "TimezoneOffsetFromUTC",
    ):
        assert keyword not in out, keyword
    for keyword in ("ReferringPhysicianName", "AccessionNumber", "StudyID", "PatientBirthDate"):
        assert keyword in out and not out[keyword].value, keyword
    assert not any(tag.group % 2 for tag in out.keys())
    assert not any(0x5000 <= tag.group <= 0x501E or 0x6000 <= tag.group <= 0x601E for tag in out.keys())
    assert list(out.ContentSequence) == []  # D on a sequence: emptied
    nested = out.ReferencedRequestSequence[0]
    assert not nested.AccessionNumber and "RequestedProcedureID" not in nested and "RequestingPhysician" not in nested


def test_patient_characteristics_are_kept() -> None:
    out = run("ct").out
    assert out.PatientSex == "F"
    assert out.PatientAge == "062Y"
    assert str(out.PatientSize) == "1.68" and str(out.PatientWeight) == "61.5"


def test_patient_characteristics_option_off() -> None:
    src = read_dicom(_corpus()["ct"].data)
    pseudonym, shift = identity_for(src)
    options = DeidOptions(retain_patient_characteristics=False)
    out = deidentify_dataset(
        src, options=options, uid_secret=UID_SECRET, patient_pseudonym=pseudonym, date_shift_days=shift
    ).dataset
    assert not out.PatientSex and "PatientAge" not in out and "PatientWeight" not in out
    codes = {i.CodeValue for i in out.DeidentificationMethodCodeSequence}
    assert "113108" not in codes
    validate_released(dicom_to_bytes(out))


def test_clean_descriptors_keeps_only_clinical_vocabulary() -> None:
    r = run("ct", clean=True)
    out = r.out
    assert out.StudyDescription == "CT HEAD"
    assert out.SeriesDescription == "AX T1"
    assert "ImageComments" not in out  # nothing clinical left: basic action X
    request = out.RequestAttributesSequence[0]
    assert request.RequestedProcedureDescription == "HEAD SCAN"
    assert request.ScheduledProcedureStepDescription == "CT HEAD"
    assert not request.AccessionNumber
    assert "RequestedProcedureID" not in request and "ScheduledProcedureStepID" not in request
    assert request.ScheduledProcedureStepStartDate == _shifted(C.SPS_START_DATE, r.shift)
    assert request.StudyInstanceUID.startswith("2.25.")
    assert r.result.cleaned >= 4


def test_descriptors_removed_by_default() -> None:
    out = run("ct").out
    assert "StudyDescription" not in out and "SeriesDescription" not in out
    assert "RequestAttributesSequence" not in out


# ------------------------------------------------------------------ dates
def test_dates_shifted_consistently_at_every_depth() -> None:
    r = run("ct")
    out, shift = r.out, r.shift
    assert -3650 <= shift <= -365
    assert out.StudyDate == _shifted(C.STUDY_DATE, shift)
    assert out.AcquisitionDate == _shifted(C.ACQUISITION_DATE, shift)
    assert out.InstanceCreationDate == _shifted(C.INSTANCE_CREATION_DATE, shift)
    # DT: date shifted, time of day kept, UTC offset dropped
    assert out.AcquisitionDateTime == _shifted(C.ACQUISITION_DATETIME[:8], shift) + "093015.123456"
    assert out.StudyTime == "093000"  # TM kept: a whole-day shift leaves the time of day
    assert out.ReferencedRequestSequence[0].PerformedProcedureStepStartDate == _shifted(C.PPS_START_DATE, shift)

    def days(a: str, b: str) -> int:
        return (dt.datetime.strptime(b, "%Y%m%d") - dt.datetime.strptime(a, "%Y%m%d")).days

    assert days(out.StudyDate, out.AcquisitionDate) == days(C.STUDY_DATE, C.ACQUISITION_DATE)
    assert r.result.dates_shifted >= 7


def test_nested_functional_group_dates_shifted() -> None:
    r = run("enhanced_mr_multiframe")
    src_frames = r.source.PerFrameFunctionalGroupsSequence
    out_frames = r.out.PerFrameFunctionalGroupsSequence
    assert len(src_frames) == len(out_frames) == 10
    seen = 0
    for before, after in zip(src_frames, out_frames, strict=True):
        b = before.FrameContentSequence[0]
        a = after.FrameContentSequence[0]
        for keyword in ("FrameAcquisitionDateTime", "FrameReferenceDateTime"):
            assert a[keyword].value[:8] == _shifted(b[keyword].value[:8], r.shift)
            assert a[keyword].value[8:] == b[keyword].value[8:]  # time of day kept
        assert a.FrameAcquisitionNumber == b.FrameAcquisitionNumber
        seen += 1
    assert seen == 10
    assert "OperatorIdentificationSequence" not in r.out.SharedFunctionalGroupsSequence[0]  # X/D -> removed


def test_same_patient_same_shift_across_files() -> None:
    ct, mr = run("ct"), run("mr")
    assert ct.pseudonym == mr.pseudonym and ct.shift == mr.shift
    assert ct.out.StudyDate == mr.out.StudyDate


def test_dates_option_off_removes_dates() -> None:
    src = read_dicom(_corpus()["ct"].data)
    pseudonym, _ = identity_for(src)
    options = DeidOptions(retain_modified_dates=False)
    result = deidentify_dataset(
        src, options=options, uid_secret=UID_SECRET, patient_pseudonym=pseudonym, date_shift_days=0
    )
    out = result.dataset
    assert not out.StudyDate and not out.StudyTime
    assert "AcquisitionDateTime" not in out and "SeriesDate" not in out
    assert not out.ContentDate
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert result.dates_shifted == 0
    data = dicom_to_bytes(out)
    validate_released(data)
    assert scan_released(data, facts=collect_source_facts(src, identifying_texts=True)) == []


# ------------------------------------------------------------------ UIDs
def _study(study_uid: str, sop_uid: str, ref: str | None) -> bytes:
    ds = C.plant_phi(
        C.load_source("CT_small.dcm"), study_uid=study_uid, sop_instance_uid=sop_uid, referenced_sop_instance_uid=ref
    )
    return C.to_bytes(ds)


def _deid(data: bytes, secret: bytes = UID_SECRET) -> Dataset:
    src = read_dicom(data)
    pseudonym, shift = identity_for(src)
    res = deidentify_dataset(
        src, options=DEFAULT, uid_secret=secret, patient_pseudonym=pseudonym, date_shift_days=shift
    )
    return dcmread(io.BytesIO(dicom_to_bytes(res.dataset)))


def test_two_batches_of_one_study_keep_one_study_uid_and_consistent_references() -> None:
    sop_a = "1.2.826.0.1.3680043.55501234.3.1"
    sop_b = "1.2.826.0.1.3680043.55501234.3.2"
    batch1 = _deid(_study(C.CT_STUDY_UID, sop_a, None))
    batch2 = _deid(_study(C.CT_STUDY_UID, sop_b, sop_a))
    assert batch1.StudyInstanceUID == batch2.StudyInstanceUID
    assert batch1.StudyInstanceUID != C.CT_STUDY_UID
    assert batch1.SeriesInstanceUID == batch2.SeriesInstanceUID
    assert batch1.FrameOfReferenceUID == batch2.FrameOfReferenceUID
    assert batch1.SOPInstanceUID != batch2.SOPInstanceUID
    assert batch2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == batch1.SOPInstanceUID
    assert batch2.SourceImageSequence[0].ReferencedSOPInstanceUID == batch1.SOPInstanceUID
    assert batch2.ReferencedImageSequence[0].ReferencedSOPClassUID == batch1.SOPClassUID  # class UIDs kept
    assert batch2.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue == "121320"
    assert batch1.ReferencedRequestSequence[0].StudyInstanceUID == batch2.ReferencedRequestSequence[0].StudyInstanceUID


def test_another_secret_gives_unlinkable_uids() -> None:
    data = _study(C.CT_STUDY_UID, "1.2.826.0.1.3680043.55501234.3.1", None)
    a, b = _deid(data), _deid(data, secret=b"another-project-secret-0123456789")
    assert a.StudyInstanceUID != b.StudyInstanceUID and a.SOPInstanceUID != b.SOPInstanceUID


@pytest.mark.parametrize("name", NAMES)
def test_all_instance_uids_are_valid_2_25_uids(name: str) -> None:
    r = run(name)
    for path, elem in iter_elements(r.out):
        if elem.VR != "UI" or not elem.value:
            continue
        values = [elem.value] if isinstance(elem.value, str) else list(elem.value)
        for v in values:
            uid = UID(v)
            assert uid.is_valid, path
            assert len(uid) <= 64
            assert uid.startswith("2.25.") or uid.startswith("1.2.840.10008.") or uid.name != str(uid), path
    assert r.out.SOPClassUID == r.source.SOPClassUID
    assert r.result.uids_mapped >= 4


# ------------------------------------------------------------------ result/audit
def test_input_dataset_is_not_modified() -> None:
    data = _corpus()["ct"].data
    src = read_dicom(data)
    before = C.to_bytes(src)
    pseudonym, shift = identity_for(src)
    deidentify_dataset(src, options=CLEAN, uid_secret=UID_SECRET, patient_pseudonym=pseudonym, date_shift_days=shift)
    assert C.to_bytes(src) == before


@pytest.mark.parametrize("clean", [False, True], ids=["default", "clean-descriptors"])
def test_result_counts_and_audit_hold_no_phi(clean: bool) -> None:
    r = run("ct", clean)
    audit = json.dumps(r.result.to_audit_dict())
    for needle in C.NEEDLES:
        assert needle.lower() not in audit.lower()
    facts = collect_source_facts(r.source, identifying_texts=True)
    for value in facts.uids | facts.dates:
        assert value not in audit
    assert r.pseudonym not in audit
    counts = r.result.to_audit_dict()["counts"]
    assert counts["removed"] >= 15 and counts["emptied"] >= 3 and counts["replaced"] >= 2
    assert counts["uids_mapped"] >= 5 and counts["dates_shifted"] >= 5 and counts["private_removed"] >= 3
    lines = {(a.action, a.path) for a in r.result.acted_on}
    assert ("remove:private", "(0041,xxxx)") in lines
    assert ("remove:overlay", "(6000,4000)") in lines or ("remove:overlay", "OverlayComments") in lines
    assert ("remove", "FileMeta>SourceApplicationEntityTitle") in lines
    assert ("pseudonym", "PatientName") in lines
    assert ("shift", "ReferencedRequestSequence>PerformedProcedureStepStartDate") in lines
    if clean:
        assert ("clean", "RequestAttributesSequence>RequestedProcedureDescription") in lines
    else:
        assert ("remove", "RequestAttributesSequence") in lines


# ------------------------------------------------------------------ rejection
def _assert_no_phi(message: str) -> None:
    for needle in C.NEEDLES:
        assert needle.lower() not in message.lower()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"hello, I am not DICOM" * 20,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
        b"\x00" * 128 + b"DICX" + b"\x00" * 64,
    ],
    ids=["empty", "text", "png", "bad-prefix"],
)
def test_non_dicom_bytes_are_rejected(payload: bytes) -> None:
    with pytest.raises(NotDicomError) as info:
        read_dicom(payload)
    assert "DICOM" in str(info.value)


def test_dataset_without_preamble_is_rejected() -> None:
    data = _corpus()["ct"].data
    assert data[128:132] == b"DICM"
    with pytest.raises(NotDicomError):
        read_dicom(data[132:])  # file meta + dataset, no preamble/prefix: pydicom would need force=True


@pytest.mark.parametrize("name", ["ct", "us_j2k", "enhanced_mr_multiframe", "deflated", "implicit_rtdose"])
@pytest.mark.parametrize("fraction", [0.35, 0.6, 0.9, 0.999])
def test_truncated_files_are_rejected_without_phi_in_the_message(name: str, fraction: float) -> None:
    data = _corpus()[name].data
    cut = data[: int(len(data) * fraction)]
    with pytest.raises((TruncatedDicomError, NotDicomError, UnsupportedDicomError)) as info:
        read_dicom(cut)
    _assert_no_phi(str(info.value))
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_truncated_header_is_rejected() -> None:
    data = _corpus()["ct"].data
    # cut inside the planted header elements (well before the pixel data)
    with pytest.raises((TruncatedDicomError, UnsupportedDicomError)):
        read_dicom(data[:900])


def test_dicomdir_is_rejected() -> None:
    with pytest.raises(UnsupportedDicomError):
        read_dicom(get_testdata_file("DICOMDIR"))


def test_deidentify_file_refuses_truncated_input_and_writes_nothing(tmp_path) -> None:
    src = tmp_path / "in.dcm"
    dst = tmp_path / "out.dcm"
    src.write_bytes(_corpus()["ct"].data[:20000])
    with pytest.raises(TruncatedDicomError):
        deidentify_file(
            src, dst, options=DEFAULT, uid_secret=UID_SECRET, patient_pseudonym="ANON-X", date_shift_days=-400
        )
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.dcm"]


# ------------------------------------------------------------------ file API
def test_deidentify_file_round_trip_with_identity_callable(tmp_path) -> None:
    src = tmp_path / "in.dcm"
    dst = tmp_path / "out.dcm"
    data = _corpus()["deflated"].data
    src.write_bytes(data)
    result = deidentify_file(
        src,
        dst,
        options=DEFAULT,
        uid_secret=UID_SECRET,
        identity=lambda ds: derive_patient_identity(ds, secret=PATIENT_SECRET, project_key=PROJECT_KEY),
    )
    assert src.read_bytes() == data
    released = dst.read_bytes()
    assert released[128:132] == b"DICM" and released[:128] == b"\x00" * 128
    validate_released(dst)
    out = read_dicom(dst)
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # released inflated, as the gate requires
    assert out.PatientID == result.dataset.PatientID == run("deflated").pseudonym
    assert scan_released(released, facts=collect_source_facts(read_dicom(data), identifying_texts=True)) == []


def test_argument_checks() -> None:
    src = read_dicom(_corpus()["mr"].data)
    kwargs = dict(options=DEFAULT, uid_secret=UID_SECRET, patient_pseudonym="ANON-X", date_shift_days=-400)
    with pytest.raises(ValueError, match="must not be 0"):
        deidentify_dataset(src, **{**kwargs, "date_shift_days": 0})
    with pytest.raises(ValueError, match="patient_pseudonym"):
        deidentify_dataset(src, **{**kwargs, "patient_pseudonym": "Doe^Jane"})
    with pytest.raises(ValueError, match="uid_secret"):
        deidentify_dataset(src, **{**kwargs, "uid_secret": b"short"})
    with pytest.raises(TypeError):
        deidentify_dataset(src, **{**kwargs, "options": {}})
    with pytest.raises(TypeError):
        deidentify_file("a", "b", options=DEFAULT, uid_secret=UID_SECRET)
