"""Deterministic, keyed UID replacement.

``map_uid(secret, uid)`` = ``"2.25." + decimal(UUID)`` where the UUID is the
first 128 bits of ``HMAC-SHA256(secret, "clinic_ai/uid/v1\\0" + uid)`` with the
RFC 9562 version (8, "custom") and variant bits set, so the result is a valid
UUID-derived UID (PS3.5 B.2, ITU-T X.667) of at most 44 characters.

* Same secret + same original UID -> same new UID, across files, batches and
  processes: a study uploaded in two batches keeps one StudyInstanceUID and
  every reference stays consistent.
* Without the secret the mapping cannot be inverted or recomputed from a
  guessed original UID (unlike a plain hash).
* The domain-separation prefix keeps these HMACs unrelated to the patient
  pseudonyms even if a caller uses one secret for both.
* Well-known UIDs (the DICOM registry: SOP classes, transfer syntaxes, coding
  schemes...) are never mapped; an unregistered value under ``1.2.840.10008.`` is.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from pydicom._uid_dict import UID_dictionary

__all__ = ["DICOM_UID_ROOT", "UUID_UID_ROOT", "MIN_SECRET_BYTES", "is_well_known_uid", "map_uid", "check_secret"]

DICOM_UID_ROOT: Final = "1.2.840.10008."
UUID_UID_ROOT: Final = "2.25."
MIN_SECRET_BYTES: Final = 16
_DOMAIN: Final = b"clinic_ai/uid/v1\x00"
_WELL_KNOWN: Final = frozenset(UID_dictionary)


def check_secret(secret: bytes, name: str = "secret") -> None:
    """Reject obviously unusable secrets (wrong type, too short)."""
    if not isinstance(secret, bytes | bytearray):
        raise TypeError(f"{name} must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{name} must be at least {MIN_SECRET_BYTES} bytes")


def normalise_uid(uid: str) -> str:
    """Strip the padding a UI value may carry (trailing NUL/space)."""
    return str(uid).strip(" \x00")


def is_well_known_uid(uid: str) -> bool:
    """True for UIDs of the DICOM registry (never PHI, never remapped).

    Registered ones only: a value merely starting with ``1.2.840.10008.`` could carry anything
    after the root (issue 7), so it is mapped like any instance UID."""
    return normalise_uid(uid) in _WELL_KNOWN


def map_uid(secret: bytes, uid: str) -> str:
    """Map an instance UID to its keyed replacement (see the module docstring).

    Well-known UIDs are returned unchanged; empty values stay empty.
    """
    check_secret(secret, "uid_secret")
    uid = normalise_uid(uid)
    if not uid or is_well_known_uid(uid):
        return uid
    digest = hmac.new(bytes(secret), _DOMAIN + uid.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    b = bytearray(digest[:16])
    b[6] = (b[6] & 0x0F) | 0x80  # version 8
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122/9562 variant
    return UUID_UID_ROOT + str(int.from_bytes(b, "big"))
