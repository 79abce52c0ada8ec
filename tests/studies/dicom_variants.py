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


def voi_lut_gamma(entries: int = 4096, *, first: int = 100, lo: int = 200, hi: int = 3800) -> list[int]:
    """A non-linear VOI LUT (a square-root curve from lo to hi): a linear window cannot imitate it."""
    return [round(lo + (hi - lo) * (i / (entries - 1)) ** 0.5) for i in range(entries)]


def dx_with_voi_lut(
    *,
    luts: list[tuple[tuple[int, int, int], list[int] | bytes]] | None = None,
    size: int = 64,
    windows: tuple[tuple[float, float], ...] = (),
    voi_function: str | None = None,
    pixels=None,
) -> bytes:
    """A 12-bit DX with a rescale intercept of 100 and a VOI LUT Sequence of ``(descriptor, data)``
    items (default: one square-root LUT over inputs 100..4195), and no window unless asked for.

    The default pixels are a ramp over every LUT input plus a few values under and past its ends.
    """
    import numpy as np

    ds = pydicom.dcmread(Path(get_testdata_file("CT_small.dcm")))
    for keyword in ("WindowCenter", "WindowWidth", "RescaleType"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.Modality = "DX"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    if pixels is None:
        pixels = (np.arange(size * size).reshape(size, size) * 4096 // (size * size)).astype(np.uint16)
        pixels[0, :4] = (0, 3, 4095, 4095)  # modality 100, 103, 4195 (the LUT's ends)
    ds.set_pixel_data(np.asarray(pixels, dtype=np.uint16), "MONOCHROME2", 12, generate_instance_uid=False)
    ds.RescaleSlope, ds.RescaleIntercept = 1, 100
    if luts is None:
        luts = [((4096, 100, 12), voi_lut_gamma())]
    items = []
    for descriptor, data in luts:
        item = pydicom.Dataset()
        item.add_new("LUTDescriptor", "US", list(descriptor))
        item.add_new("LUTData", "OW" if isinstance(data, bytes) else "US", data)
        item.LUTExplanation = "Patient Jane Doe's favourite"  # never shown
        items.append(item)
    if items:
        ds.VOILUTSequence = items
    if windows:
        ds.WindowCenter = [c for c, _ in windows]
        ds.WindowWidth = [w for _, w in windows]
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()
