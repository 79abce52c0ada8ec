"""Options, version constants and the CID 7050 codes we record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEID_VERSION",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "DeidOptions",
    "CID7050",
    "CODE_BASIC_PROFILE",
    "CODE_CLEAN_PIXEL_DATA",
    "CODE_CLEAN_DESCRIPTORS",
    "CODE_RETAIN_MODIFIED_DATES",
    "CODE_RETAIN_PATIENT_CHARACTERISTICS",
]

DEID_VERSION: Final = "1.0"
"""Version of this library's de-identification behaviour.

Bump it whenever the output for a given input and secrets changes; it is
written into every released object (DeidentificationMethod) and belongs in
the audit log.
"""

IMPLEMENTATION_CLASS_UID: Final = "2.25.238617640568329922866947457739796975674"
"""Our (0002,0012) Implementation Class UID.

A UUID-derived UID (PS3.5 B.2): uuid5(NAMESPACE_URL,
"urn:clinic_ai:deidentification:implementation-class"). Fixed forever.
"""

IMPLEMENTATION_VERSION_NAME: Final = f"CLINICAI_DEID{DEID_VERSION}"[:16]
"""(0002,0013) Implementation Version Name (SH, at most 16 characters)."""

# PS3.16 CID 7050 "De-identification Method", coding scheme DCM.
CODE_BASIC_PROFILE: Final = ("113100", "Basic Application Confidentiality Profile")
CODE_CLEAN_PIXEL_DATA: Final = ("113101", "Clean Pixel Data Option")
CODE_CLEAN_DESCRIPTORS: Final = ("113105", "Clean Descriptors Option")
CODE_RETAIN_MODIFIED_DATES: Final = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")
CODE_RETAIN_PATIENT_CHARACTERISTICS: Final = ("113108", "Retain Patient Characteristics Option")
CID7050: Final = {
    code: meaning
    for code, meaning in (
        CODE_BASIC_PROFILE,
        CODE_CLEAN_PIXEL_DATA,
        CODE_CLEAN_DESCRIPTORS,
        CODE_RETAIN_MODIFIED_DATES,
        CODE_RETAIN_PATIENT_CHARACTERISTICS,
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeidOptions:
    """Per-project de-identification options.

    The Basic Profile is always applied; the fields switch the PS3.15 options
    on top of it. The defaults are the product profile: Basic + Retain
    Longitudinal Temporal Information with Modified Dates + Retain Patient
    Characteristics, descriptors removed.
    """

    retain_modified_dates: bool = True
    """Shift every kept DA/DT by the per-patient offset instead of removing it
    (113107). Times of day (TM) are kept unchanged: a whole-day shift does not
    move them. Off: dates and times are handled by the Basic Profile."""

    retain_patient_characteristics: bool = True
    """Keep PatientSex, PatientAge, PatientSize, PatientWeight and the other
    coded characteristics the option keeps (113108); EthnicGroup is still
    removed (see ``policy.PATIENT_CHARACTERISTICS``)."""

    clean_descriptors: bool = False
    """Keep descriptor/free-text attributes (those with a C in the Annex E
    Clean Descriptors column), reduced to clinical-vocabulary tokens (113105);
    see ``descriptors.clean_descriptor``. Off: they are removed/emptied."""

    deid_version: str = DEID_VERSION
    """Version string recorded in DeidentificationMethod."""

    def method_codes(self) -> list[tuple[str, str]]:
        """The CID 7050 codes that describe these options, in a stable order."""
        codes = [CODE_BASIC_PROFILE]
        if self.clean_descriptors:
            codes.append(CODE_CLEAN_DESCRIPTORS)
        if self.retain_modified_dates:
            codes.append(CODE_RETAIN_MODIFIED_DATES)
        if self.retain_patient_characteristics:
            codes.append(CODE_RETAIN_PATIENT_CHARACTERISTICS)
        return codes

    @classmethod
    def from_method_codes(cls, codes: set[str]) -> DeidOptions:
        """Reconstruct the options recorded in a released object's code sequence."""
        return cls(
            retain_modified_dates=CODE_RETAIN_MODIFIED_DATES[0] in codes,
            retain_patient_characteristics=CODE_RETAIN_PATIENT_CHARACTERISTICS[0] in codes,
            clean_descriptors=CODE_CLEAN_DESCRIPTORS[0] in codes,
        )
