"""Exceptions raised by the de-identification library.

Every message is built from fixed text, tags and keywords only: never from an
element value, a file name or an underlying parser message (those can carry
PHI). Exceptions from lower layers are not chained (``raise ... from None``)
so that a logged traceback cannot leak them either; the lower layer's
exception class name is kept in :attr:`DeidentificationError.detail`.
"""

from __future__ import annotations

__all__ = [
    "DeidentificationError",
    "InvalidInputError",
    "NotDicomError",
    "TruncatedDicomError",
    "UnsupportedDicomError",
    "MissingPatientIdentityError",
    "PixelMaskError",
    "ReleaseValidationError",
    "UnsupportedRasterError",
]


class DeidentificationError(Exception):
    """Base class. ``str(exc)`` never contains PHI."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class InvalidInputError(DeidentificationError):
    """The input cannot be de-identified and must not be released."""


class NotDicomError(InvalidInputError):
    """The input is not a DICOM Part 10 file (no preamble/``DICM`` prefix, or unparseable)."""


class TruncatedDicomError(InvalidInputError):
    """The input ends before the data it declares (cut upload, partial copy)."""


class UnsupportedDicomError(InvalidInputError):
    """A well-formed DICOM file this library refuses (DICOMDIR, no SOP identity, ...)."""


class MissingPatientIdentityError(InvalidInputError):
    """No attribute identifies the patient, so a pseudonym cannot be derived safely."""


class PixelMaskError(DeidentificationError):
    """Pixel data could not be decoded, masked or re-encoded."""


class UnsupportedRasterError(InvalidInputError):
    """A raster image that is neither a well-formed PNG nor a well-formed JPEG."""


class ReleaseValidationError(DeidentificationError):
    """A supposedly de-identified object failed the release checks.

    ``problems`` lists what failed, by tag/keyword only.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:20])
        more = f"; and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"released object failed validation ({len(self.problems)} problem(s)): {shown}{more}")
