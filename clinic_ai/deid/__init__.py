"""Pure de-identification library for clinic_ai (no Django, no settings).

Everything secret or project-specific is an argument. Entry points:

* :func:`deidentify_dataset` / :func:`deidentify_file` - DICOM PS3.15 Basic
  Profile driven by Table E.1-1 (``annex_e_table.json``) plus the Retain
  Longitudinal Temporal Information with Modified Dates, Retain Patient
  Characteristics and (optionally) Clean Descriptors options, at every depth.
* :func:`read_dicom` - strict reader (no ``force``; rejects non-DICOM and
  truncated input). :func:`write_dicom` - atomic Part 10 writer.
* :func:`patient_key_from_dataset`, :func:`patient_pseudonym`,
  :func:`date_shift_days`, :func:`derive_patient_identity` - per-project keyed
  pseudonyms and date shifts; :func:`map_uid` - keyed UID mapping.
* :func:`burned_in_text_reason`, :func:`apply_pixel_mask` - burned-in text.
* :func:`validate_released` - the policy's own consistency check of an output (a test oracle;
  what may leave is decided by the independent gate, :mod:`clinic_ai.releasegate`).
* :func:`strip_raster_metadata` - PNG/JPEG metadata removal without recompression.

See ``README.md`` in this package for the decisions and known gaps.
"""

from .annex_e import TABLE_ROW_COUNT, TABLE_SOURCE, AnnexERule, rule_for_tag
from .dicomio import dicom_to_bytes, read_dicom, write_dicom
from .engine import ActedOn, DeidResult, deidentify_dataset, deidentify_file
from .errors import (
    DeidentificationError,
    InvalidInputError,
    MissingPatientIdentityError,
    NotDicomError,
    PixelMaskError,
    ReleaseValidationError,
    TruncatedDicomError,
    UnsupportedDicomError,
    UnsupportedRasterError,
)
from .options import DEID_VERSION, IMPLEMENTATION_CLASS_UID, DeidOptions
from .pixels import Box, TextRegionDetector, apply_pixel_mask, burned_in_text_reason, decode_frames
from .pseudonyms import (
    PatientIdentity,
    date_shift_days,
    derive_patient_identity,
    patient_key_from_dataset,
    patient_pseudonym,
)
from .raster import RasterStripResult, strip_raster_bytes, strip_raster_metadata
from .uids import is_well_known_uid, map_uid
from .validation import validate_released, validate_released_dataset

__all__ = [
    "DEID_VERSION",
    "IMPLEMENTATION_CLASS_UID",
    "TABLE_ROW_COUNT",
    "TABLE_SOURCE",
    "ActedOn",
    "AnnexERule",
    "Box",
    "DeidOptions",
    "DeidResult",
    "DeidentificationError",
    "InvalidInputError",
    "MissingPatientIdentityError",
    "NotDicomError",
    "PatientIdentity",
    "PixelMaskError",
    "RasterStripResult",
    "ReleaseValidationError",
    "TextRegionDetector",
    "TruncatedDicomError",
    "UnsupportedDicomError",
    "UnsupportedRasterError",
    "apply_pixel_mask",
    "burned_in_text_reason",
    "date_shift_days",
    "decode_frames",
    "deidentify_dataset",
    "deidentify_file",
    "derive_patient_identity",
    "dicom_to_bytes",
    "is_well_known_uid",
    "map_uid",
    "patient_key_from_dataset",
    "patient_pseudonym",
    "read_dicom",
    "rule_for_tag",
    "strip_raster_bytes",
    "strip_raster_metadata",
    "validate_released",
    "validate_released_dataset",
    "write_dicom",
]
