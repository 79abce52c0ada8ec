"""DICOM files of several patients and studies, made from pydicom's CT test file."""

import io
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

ORIGINAL_NAME = "Doe^Jane^Q"


def ct_variant(
    *,
    patient_id: str,
    issuer: str = "HOSP-A",
    age: str = "045Y",
    sex: str = "F",
    body_part: str = "CHEST",
    study_description: str = "CT CHEST WITH CONTRAST",
    series_description: str = "AXIAL LUNG WINDOW",
    study_date: str = "20240105",
    modality: str = "CT",
    study_uid: str | None = None,
) -> bytes:
    """A whole CT image of its own patient and study (new UIDs, so new bytes every call)."""
    ds = pydicom.dcmread(Path(get_testdata_file("CT_small.dcm")))
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = issuer
    ds.PatientName = ORIGINAL_NAME
    ds.PatientBirthDate = "19790312"
    ds.PatientAge = age
    ds.PatientSex = sex
    ds.BodyPartExamined = body_part
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = study_date
    ds.Modality = modality
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()
