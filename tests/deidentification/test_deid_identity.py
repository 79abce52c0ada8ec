"""Pseudonyms, patient keys, date shifts and UID mapping (pure helpers)."""

from __future__ import annotations

import re

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from clinic_ai.deid import (
    MissingPatientIdentityError,
    date_shift_days,
    derive_patient_identity,
    is_well_known_uid,
    map_uid,
    patient_key_from_dataset,
    patient_pseudonym,
)

from .corpus import PATIENT_SECRET, PROJECT_KEY, UID_SECRET


def _patient(pid: str = "", issuer: str = "", name: str = "", dob: str = "") -> Dataset:
    ds = Dataset()
    if pid:
        ds.PatientID = pid
    if issuer:
        ds.IssuerOfPatientID = issuer
    if name:
        ds.PatientName = name
    if dob:
        ds.PatientBirthDate = dob
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.99.1"
    return ds


def _pseudonym(ds: Dataset, project: str = PROJECT_KEY, secret: bytes = PATIENT_SECRET) -> str:
    return patient_pseudonym(secret, project, patient_key_from_dataset(ds))


def test_pseudonym_format_and_determinism() -> None:
    a = _pseudonym(_patient("MRN1", "HOSP-A"))
    assert re.fullmatch(r"ANON-[A-Z2-7]{20}", a)
    assert a == _pseudonym(_patient("MRN1", "HOSP-A", name="Other^Spelling"))  # same ID+issuer = same patient
    assert len(a) <= 64


def test_different_patients_get_different_pseudonyms() -> None:
    seen = {_pseudonym(_patient(f"MRN{i}", "HOSP-A")) for i in range(300)}
    assert len(seen) == 300


def test_issuer_separates_identical_ids_from_two_hospitals() -> None:
    assert _pseudonym(_patient("12345", "HOSP-A")) != _pseudonym(_patient("12345", "HOSP-B"))
    assert _pseudonym(_patient("12345", "HOSP-A")) != _pseudonym(_patient("12345"))


def test_issuer_from_qualifiers_sequence() -> None:
    ds = _patient("12345")
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = "2.16.840.1.113883.3.999"
    ds.IssuerOfPatientIDQualifiersSequence = [qualifiers]
    assert _pseudonym(ds) != _pseudonym(_patient("12345"))


def test_projects_and_secrets_are_unlinkable() -> None:
    ds = _patient("MRN1", "HOSP-A")
    assert _pseudonym(ds, project="project-alpha") != _pseudonym(ds, project="project-beta")
    assert _pseudonym(ds, secret=b"another-secret-0123456789abcdef") != _pseudonym(ds)


@pytest.mark.parametrize("placeholder", ["", "0000000", "ANONYMOUS", "unknown", "-", "N/A"])
def test_placeholder_ids_fall_back_to_name_and_birth_date(placeholder: str) -> None:
    a = _patient(placeholder, name="Doe^Jane", dob="19610314")
    b = _patient(placeholder, name="Roe^Richard", dob="19700101")
    assert _pseudonym(a) != _pseudonym(b)  # two patients never collapse into one dummy
    assert _pseudonym(a) == _pseudonym(_patient(placeholder, name="  DOE^jane^ ", dob="19610314"))


def test_missing_identity_is_refused_not_collapsed() -> None:
    with pytest.raises(MissingPatientIdentityError) as info:
        patient_key_from_dataset(_patient("ANONYMOUS", name="Doe^Jane"))  # no birth date
    assert "Jane" not in str(info.value)
    with pytest.raises(MissingPatientIdentityError):
        patient_key_from_dataset(Dataset())
    key = patient_key_from_dataset(_patient("ANONYMOUS"), allow_study_fallback=True)
    other = _patient("ANONYMOUS")
    other.StudyInstanceUID = "1.2.826.0.1.3680043.99.2"
    assert key != patient_key_from_dataset(other, allow_study_fallback=True)


def test_date_shift_range_and_determinism() -> None:
    shifts = [date_shift_days(PATIENT_SECRET, PROJECT_KEY, f"patient-{i}") for i in range(500)]
    assert all(-3650 <= s <= -365 for s in shifts)
    assert len(set(shifts)) > 300
    assert shifts[0] == date_shift_days(PATIENT_SECRET, PROJECT_KEY, "patient-0")
    assert date_shift_days(PATIENT_SECRET, "other-project", "patient-0") != shifts[0]
    assert 10 <= date_shift_days(PATIENT_SECRET, PROJECT_KEY, "p", min_days=10, max_days=20) <= 20
    with pytest.raises(ValueError):
        date_shift_days(PATIENT_SECRET, PROJECT_KEY, "p", min_days=-5, max_days=5)


def test_pseudonym_and_shift_are_independent() -> None:
    ident = derive_patient_identity(_patient("MRN1", "HOSP-A"), secret=PATIENT_SECRET, project_key=PROJECT_KEY)
    assert ident.pseudonym == _pseudonym(_patient("MRN1", "HOSP-A"))
    assert -3650 <= ident.date_shift_days <= -365


def test_secret_and_key_validation() -> None:
    with pytest.raises(ValueError):
        patient_pseudonym(b"short", PROJECT_KEY, "k")
    with pytest.raises(TypeError):
        patient_pseudonym("not-bytes-not-bytes-not-bytes", PROJECT_KEY, "k")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        patient_pseudonym(PATIENT_SECRET, "", "k")


# ------------------------------------------------------------------ UIDs
def test_map_uid_is_a_deterministic_valid_uuid_uid() -> None:
    original = "1.2.826.0.1.3680043.55501234.2.1"
    new = map_uid(UID_SECRET, original)
    assert new == map_uid(UID_SECRET, original) == map_uid(UID_SECRET, original + "\x00")
    assert new.startswith("2.25.") and len(new) <= 64 and UID(new).is_valid
    value = int(new[5:])
    assert value < 2**128
    assert (value >> 76) & 0xF == 8  # RFC 9562 version 8
    assert (value >> 62) & 0x3 == 0b10  # RFC 9562 variant
    assert map_uid(UID_SECRET, original + "1") != new
    assert map_uid(b"a-different-secret-0123456789abcdef", original) != new


def test_well_known_uids_are_never_mapped() -> None:
    for uid in (CTImageStorage, ExplicitVRLittleEndian, "1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.7"):
        assert is_well_known_uid(uid)
        assert map_uid(UID_SECRET, uid) == uid
    assert not is_well_known_uid("1.2.826.0.1.3680043.1")
    assert map_uid(UID_SECRET, "") == ""


def test_uid_mapping_has_no_collisions_on_a_sample() -> None:
    mapped = {map_uid(UID_SECRET, f"1.2.3.4.{i}") for i in range(5000)}
    assert len(mapped) == 5000
