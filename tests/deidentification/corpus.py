"""Test corpus: pydicom's test files with identifiers planted at every depth.

Nothing is downloaded: the files come from the locally installed
``pydicom-data`` package via ``pydicom.data.get_testdata_file``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from pydicom import dcmread, dcmwrite
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from clinic_ai.deid import date_shift_days, patient_key_from_dataset, patient_pseudonym

# Secrets and project key used throughout the tests.
UID_SECRET = b"uid-secret-for-tests-0123456789abcdef"
PATIENT_SECRET = b"patient-secret-for-tests-0123456789"
PROJECT_KEY = "project-alpha"


def identity_for(ds: Dataset) -> tuple[str, int]:
    """(pseudonym, date shift) the way the caller computes them."""
    key = patient_key_from_dataset(ds)
    return patient_pseudonym(PATIENT_SECRET, PROJECT_KEY, key), date_shift_days(PATIENT_SECRET, PROJECT_KEY, key)


# Distinctive identifiers. Every one of them must be absent from every output
# (values and raw bytes), whatever the options.
PATIENT_NAME = "Doe^Jane^Quincy"
PATIENT_ID = "MRN55501234"
ISSUER = "STMUNGOS-HOSP"
BIRTH_DATE = "19610314"
PATIENT_ADDRESS = "42 Wallaby Way Sydney"
PATIENT_PHONE = "+61-2-5550-1234"
MOTHER_NAME = "Doe^Marybeth"
OTHER_PID = "OTHERID99887"
REFERRING = "House^Gregory"
PERFORMING = "Quinn^Michaela"
OPERATOR = "Ratched^Mildred"
PHYSICIAN_OF_RECORD = "Kildare^Jamesworth"
INSTITUTION = "St Mungos Hospital"
INSTITUTION_ADDRESS = "1 Diagon Alley London"
STATION = "MUNGOCT01"
DEPARTMENT = "Janus Ward"
STUDY_DESCRIPTION = "CT HEAD for Jane Doe MRN55501234"
SERIES_DESCRIPTION = "AX T1 Quinn reading"
IMAGE_COMMENTS = "Patient Doe called back 0412345678 seen 2024-03-11"
ACCESSION = "ACC98765432"
REQUESTED_PROCEDURE_DESCRIPTION = "Head scan Wallaby"
REQUESTED_PROCEDURE_ID = "RP77123"
SPS_ID = "SPS88123"
PRIVATE_CREATOR = "ACME PHI CREATOR"
PRIVATE_VALUE = "Secret Jane Doe Private"
PRIVATE_NESTED_VALUE = "PrivNested MRN55501234"
SOURCE_AE = "MUNGOPACS"
SENDING_AE = "MUNGOSEND"
IMPLEMENTATION_VERSION = "MUNGO_IMPL_9"
OVERLAY_TEXT = "Overlay Jane Doe"
CURVE_TEXT = "Curve Jane Doe"
CONTENT_TEXT = "Dictated by Gregory House for Jane"

# Substrings the leak scanner looks for (case-insensitively in values, in
# original and upper case in raw bytes). Chosen so that no legitimate DICOM
# text contains them.
NEEDLES = (
    "Jane",
    "Quincy",
    "MRN55501234",
    "55501234",
    "STMUNGOS",
    "Mungos",
    "Wallaby",
    "5550-1234",
    "Marybeth",
    "OTHERID99887",
    "Gregory",
    "Michaela",
    "Ratched",
    "Mildred",
    "Kildare",
    "Jamesworth",
    "Diagon",
    "MUNGO",
    "Janus",
    "Quinn",
    "0412345678",
    "ACC98765432",
    "RP77123",
    "SPS88123",
    "ACME PHI",
    "PrivNested",
)

# Dates planted (in addition to whatever the source file carries).
STUDY_DATE = "20240311"
ACQUISITION_DATE = "20240312"
ACQUISITION_DATETIME = "20240312093015.123456+0100"
INSTANCE_CREATION_DATE = "20240313"
SPS_START_DATE = "20240301"
PPS_START_DATE = "20240302"
PRIOR_STUDY_UID = "1.2.826.0.1.3680043.55501234.1.1"
PLANTED_UIDS = (PRIOR_STUDY_UID,)

CT_STUDY_UID = "1.2.826.0.1.3680043.55501234.2.1"


@dataclass(frozen=True)
class CorpusFile:
    name: str
    source: str  # pydicom test file name
    data: bytes  # planted, serialised input (Part 10)
    compressed: bool
    multiframe: bool


CORPUS_SOURCES = {
    # name: (pydicom test file, compressed, multi-frame)
    "ct": ("CT_small.dcm", False, False),
    "mr": ("MR_small.dcm", False, False),
    "us_j2k": ("US1_J2KR.dcm", True, False),
    "sc_jpeg": ("SC_rgb_jpeg_dcmtk.dcm", True, False),
    "deflated": ("image_dfl.dcm", False, False),
    "enhanced_mr_multiframe": ("emri_small.dcm", False, True),
    "rle_multiframe": ("emri_small_RLE.dcm", True, True),
    "implicit_rtdose": ("rtdose.dcm", False, True),
}


def load_source(filename: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(get_testdata_file(filename))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def plant_phi(
    ds: Dataset,
    *,
    patient_name: str = PATIENT_NAME,
    patient_id: str = PATIENT_ID,
    birth_date: str = BIRTH_DATE,
    study_uid: str | None = None,
    sop_instance_uid: str | None = None,
    referenced_sop_instance_uid: str | None = None,
) -> Dataset:
    """Plant identifiers at every depth of ``ds`` (in place) and return it."""
    if study_uid:
        ds.StudyInstanceUID = study_uid
    if sop_instance_uid:
        ds.SOPInstanceUID = sop_instance_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid

    # File meta
    ds.file_meta.SourceApplicationEntityTitle = SOURCE_AE
    ds.file_meta.SendingApplicationEntityTitle = SENDING_AE
    ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION

    # Patient
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = ISSUER
    ds.PatientBirthDate = birth_date
    ds.PatientAddress = PATIENT_ADDRESS
    ds.PatientTelephoneNumbers = PATIENT_PHONE
    ds.PatientMotherBirthName = MOTHER_NAME
    ds.OtherPatientIDs = OTHER_PID
    other = Dataset()
    other.PatientID = OTHER_PID
    other.IssuerOfPatientID = ISSUER
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientSex = "F"
    ds.PatientAge = "062Y"
    ds.PatientSize = "1.68"
    ds.PatientWeight = "61.5"

    # People, places, equipment
    ds.ReferringPhysicianName = REFERRING
    ds.PerformingPhysicianName = PERFORMING
    ds.OperatorsName = OPERATOR
    ds.PhysiciansOfRecord = PHYSICIAN_OF_RECORD
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = INSTITUTION_ADDRESS
    ds.StationName = STATION
    ds.InstitutionalDepartmentName = DEPARTMENT

    # Descriptors and free text
    ds.StudyDescription = STUDY_DESCRIPTION
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.ImageComments = IMAGE_COMMENTS
    ds.AccessionNumber = ACCESSION
    ds.StudyID = "SID55501234"

    # Dates (top level)
    ds.StudyDate = STUDY_DATE
    ds.SeriesDate = STUDY_DATE
    ds.AcquisitionDate = ACQUISITION_DATE
    ds.ContentDate = ACQUISITION_DATE
    ds.AcquisitionDateTime = ACQUISITION_DATETIME
    ds.InstanceCreationDate = INSTANCE_CREATION_DATE
    ds.StudyTime = "093000"
    ds.TimezoneOffsetFromUTC = "+0100"

    # Request attributes, nested descriptors, IDs and dates
    request = Dataset()
    request.RequestedProcedureDescription = REQUESTED_PROCEDURE_DESCRIPTION
    request.AccessionNumber = ACCESSION
    request.RequestedProcedureID = REQUESTED_PROCEDURE_ID
    request.ScheduledProcedureStepID = SPS_ID
    request.ScheduledProcedureStepDescription = "CT HEAD for Jane"
    request.ScheduledProcedureStepStartDate = SPS_START_DATE
    request.StudyInstanceUID = PRIOR_STUDY_UID
    request.ScheduledProtocolCodeSequence = Sequence([_code("CTHEAD", "99LOCAL", "CT head routine")])
    ds.RequestAttributesSequence = Sequence([request])

    # An unlisted sequence (kept and walked) carrying a nested date, an
    # accession number, a UID reference and a nested person name.
    referenced_request = Dataset()
    referenced_request.AccessionNumber = ACCESSION
    referenced_request.StudyInstanceUID = PRIOR_STUDY_UID
    referenced_request.RequestedProcedureID = REQUESTED_PROCEDURE_ID
    referenced_request.PerformedProcedureStepStartDate = PPS_START_DATE
    referenced_request.RequestingPhysician = REFERRING
    ds.ReferencedRequestSequence = Sequence([referenced_request])

    # References to other instances
    if referenced_sop_instance_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = referenced_sop_instance_uid
        ds.ReferencedImageSequence = Sequence([ref])
        src = Dataset()
        src.ReferencedSOPClassUID = ds.SOPClassUID
        src.ReferencedSOPInstanceUID = referenced_sop_instance_uid
        src.PurposeOfReferenceCodeSequence = Sequence([_code("121320", "DCM", "Uncompressed predecessor")])
        ds.SourceImageSequence = Sequence([src])

    # Structured content with names and free text
    content = Dataset()
    content.ValueType = "TEXT"
    content.TextValue = CONTENT_TEXT
    content.PersonName = REFERRING
    ds.ContentSequence = Sequence([content])

    # Private creator + private data + private sequence with PHI inside
    block = ds.private_block(0x0041, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    inner = Dataset()
    inner_block = inner.private_block(0x0043, PRIVATE_CREATOR, create=True)
    inner_block.add_new(0x01, "LO", PRIVATE_NESTED_VALUE)
    inner.PatientName = patient_name
    block.add_new(0x02, "SQ", Sequence([inner]))

    # Functional groups: dates and a person name two sequence levels down
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        per_frame = []
        for i in range(frames):
            content = Dataset()
            content.FrameAcquisitionDateTime = f"{ACQUISITION_DATE}0930{15 + i:02d}.000000"
            content.FrameReferenceDateTime = f"{ACQUISITION_DATE}0930{15 + i:02d}.000000"
            content.FrameAcquisitionNumber = i + 1
            group = Dataset()
            group.FrameContentSequence = Sequence([content])
            per_frame.append(group)
        ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
        shared = Dataset()
        operator = Dataset()
        operator.PersonName = OPERATOR
        operator.InstitutionName = INSTITUTION
        shared.OperatorIdentificationSequence = Sequence([operator])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])

    # Overlay, curve and icon
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60000022, "LO", OVERLAY_TEXT)
    ds.add_new(0x60003000, "OW", b"\xff\xff")
    ds.add_new(0x60004000, "LT", OVERLAY_TEXT)
    ds.add_new(0x50002500, "LO", CURVE_TEXT)
    icon = Dataset()
    icon.Rows = 1
    icon.Columns = 1
    icon.SamplesPerPixel = 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated = 8
    icon.BitsStored = 8
    icon.HighBit = 7
    icon.PixelRepresentation = 0
    icon.PixelData = b"\x00\x00"
    icon.PatientName = patient_name
    ds.IconImageSequence = Sequence([icon])
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def build_file(name: str, **plant_kwargs: object) -> CorpusFile:
    filename, compressed, multiframe = CORPUS_SOURCES[name]
    ds = plant_phi(load_source(filename), **plant_kwargs)  # type: ignore[arg-type]
    return CorpusFile(name=name, source=filename, data=to_bytes(ds), compressed=compressed, multiframe=multiframe)


def build_corpus() -> dict[str, CorpusFile]:
    return {name: build_file(name) for name in CORPUS_SOURCES}
