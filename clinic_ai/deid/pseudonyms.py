"""Per-project patient pseudonyms and date shifts (pure, keyed HMACs).

The caller owns the secret and the project key; the functions here are
deterministic so that every upload of one patient into one project gets the
same pseudonym and the same date shift, and two projects never share either.

``patient_key_from_dataset`` derives the *patient key* the HMACs are computed
over. The key is itself PHI (it contains the original PatientID or name):
use it only as an argument to these functions, never store or log it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Final

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .errors import MissingPatientIdentityError
from .uids import check_secret

__all__ = [
    "PSEUDONYM_PREFIX",
    "DEFAULT_SHIFT_RANGE",
    "PatientIdentity",
    "patient_key_from_dataset",
    "patient_key_parts",
    "patient_pseudonym",
    "date_shift_days",
    "derive_patient_identity",
]

PSEUDONYM_PREFIX: Final = "ANON-"
DEFAULT_SHIFT_RANGE: Final = (-3650, -365)
_PSEUDONYM_CHARS: Final = 20  # base32 characters = 100 bits

# PatientID values that identify nobody. Seen in exports from modalities,
# teaching files and earlier anonymisers; treating them as real IDs would
# merge every such patient into one pseudonym.
_PLACEHOLDER_IDS: Final = frozenset(
    {
        "",
        "ANON",
        "ANONYMOUS",
        "ANONYMIZED",
        "ANONYMISED",
        "DEIDENTIFIED",
        "DE-IDENTIFIED",
        "NONE",
        "NULL",
        "NIL",
        "NA",
        "N/A",
        "NOID",
        "NO ID",
        "NO_ID",
        "UNKNOWN",
        "UNK",
        "TEST",
        "PATIENT",
        "ID",
        "REMOVED",
        "EMPTY",
    }
)
_SAME_CHAR_RE: Final = re.compile(r"^(.)\1*$")


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """What the caller needs per patient: the pseudonym and the date shift."""

    pseudonym: str
    date_shift_days: int


def _is_placeholder(value: str) -> bool:
    v = value.strip().upper()
    return v in _PLACEHOLDER_IDS or bool(_SAME_CHAR_RE.match(v))  # "0000000", "-", "?"...


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, None)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value).strip(" \x00")


def _normalise_name(value: str) -> str:
    comps = [" ".join(c.split()).upper() for c in value.split("=")[0].split("^")]
    while comps and not comps[-1]:
        comps.pop()
    return "^".join(comps)


def patient_key_from_dataset(ds: Dataset, *, allow_study_fallback: bool = False) -> str:
    """Derive the (PHI-bearing) key that identifies the patient of ``ds``.

    In order of preference:

    1. ``PatientID`` qualified by its issuer (``IssuerOfPatientID``, else the
       first ``IssuerOfPatientIDQualifiersSequence`` UniversalEntityID), so the
       same MRN from two hospitals stays two patients;
    2. normalised ``PatientName`` + ``PatientBirthDate`` (both required), when
       the PatientID is missing or a placeholder ("", "0000", "ANONYMOUS"...);
    3. with ``allow_study_fallback``, the StudyInstanceUID: one pseudonymous
       patient per study. This may split one real patient, never merge two.

    Otherwise :class:`MissingPatientIdentityError` is raised (quarantine the
    file) rather than collapsing unrelated patients into one pseudonym.
    """
    pid = _text(ds, "PatientID")
    if pid and not _is_placeholder(pid):
        issuer = _text(ds, "IssuerOfPatientID")
        if not issuer:
            qualifiers = ds.get("IssuerOfPatientIDQualifiersSequence", None)
            if qualifiers:
                issuer = _text(qualifiers[0], "UniversalEntityID")
        return json.dumps(["pid", issuer, pid], separators=(",", ":"), ensure_ascii=True)
    name = _normalise_name(_text(ds, "PatientName"))
    dob = _text(ds, "PatientBirthDate")
    if name and not _is_placeholder(name.replace("^", "")) and dob and not _is_placeholder(dob):
        return json.dumps(["name-dob", name, dob], separators=(",", ":"), ensure_ascii=True)
    if allow_study_fallback:
        study = _text(ds, "StudyInstanceUID")
        if study:
            return json.dumps(["study", study], separators=(",", ":"), ensure_ascii=True)
    raise MissingPatientIdentityError(
        "cannot identify the patient: PatientID is missing or a placeholder and PatientName/PatientBirthDate "
        "are incomplete"
    )


def patient_key_parts(key: str) -> tuple[str, str, str]:
    """(how the patient was identified, issuer, original identifier) of a key made by
    :func:`patient_key_from_dataset`, for the admins' link table. A key in no known form is shown
    whole as the identifier, never dropped."""
    try:
        parts = json.loads(key)
    except (TypeError, ValueError):
        parts = None
    if not (isinstance(parts, list) and parts and all(isinstance(p, str) for p in parts)):
        return ("unknown", "", str(key))
    kind, rest = parts[0], parts[1:]
    if kind == "pid" and len(rest) == 2:
        return ("Patient ID", rest[0], rest[1])
    if kind == "name-dob" and len(rest) == 2:
        return ("Name and birth date", "", f"{rest[0].replace('^', ' ').strip()}, born {rest[1]}")
    if kind == "study" and len(rest) == 1:
        return ("Study (no patient ID)", "", rest[0])
    return ("unknown", "", str(key))


def _hmac(secret: bytes, domain: str, project_key: str, patient_key: str) -> bytes:
    check_secret(secret)
    if not isinstance(project_key, str) or not project_key:
        raise ValueError("project_key must be a non-empty string")
    if not isinstance(patient_key, str) or not patient_key:
        raise ValueError("patient_key must be a non-empty string")
    message = json.dumps([domain, project_key, patient_key], separators=(",", ":"), ensure_ascii=True)
    return hmac.new(bytes(secret), message.encode("ascii"), hashlib.sha256).digest()


def patient_pseudonym(secret: bytes, project_key: str, patient_key: str) -> str:
    """``"ANON-"`` + 20 base32 characters (100 bits) of a keyed HMAC.

    Deterministic per (secret, project, patient); fits PatientID (LO, 64) and
    a PatientName component; uses only ``A-Z2-7`` after the prefix.
    """
    digest = _hmac(secret, "clinic_ai/patient-pseudonym/v1", project_key, patient_key)
    return PSEUDONYM_PREFIX + base64.b32encode(digest).decode("ascii")[:_PSEUDONYM_CHARS]


def date_shift_days(
    secret: bytes,
    project_key: str,
    patient_key: str,
    *,
    min_days: int = DEFAULT_SHIFT_RANGE[0],
    max_days: int = DEFAULT_SHIFT_RANGE[1],
) -> int:
    """A per-patient shift in days, uniform in ``[min_days, max_days]``.

    The default range (-10 years .. -1 year) never yields 0 and always moves
    dates into the past, so a shifted date is never mistaken for a future one.
    """
    if min_days > max_days:
        raise ValueError("min_days must not exceed max_days")
    if min_days <= 0 <= max_days:
        raise ValueError("the shift range must exclude 0 (a zero shift releases real dates)")
    digest = _hmac(secret, "clinic_ai/date-shift/v1", project_key, patient_key)
    return min_days + int.from_bytes(digest, "big") % (max_days - min_days + 1)


def derive_patient_identity(
    ds: Dataset, *, secret: bytes, project_key: str, allow_study_fallback: bool = False
) -> PatientIdentity:
    """Convenience: key -> (pseudonym, shift) for ``ds``, with one secret."""
    key = patient_key_from_dataset(ds, allow_study_fallback=allow_study_fallback)
    return PatientIdentity(
        pseudonym=patient_pseudonym(secret, project_key, key),
        date_shift_days=date_shift_days(secret, project_key, key),
    )
