"""An independent release gate: the last check before a file leaves the quarantine.

It shares no code with the de-identifier (it imports nothing from ``clinic_ai.deid`` or ``clinic_ai.deidentification``,
nor Django, nor Celery): its own strict DICOM reader, its own allow-list written from pydicom's
data dictionary and PS3.15 Table E.1-1, its own reading of the original's identifying values.
A file it cannot vouch for is refused with :class:`GateRefused` (``rule``, ``reason``); any
error inside the gate is a refusal too.
"""

from __future__ import annotations

from .dicom import GateOptions, check_dicom_release
from .raster import check_raster_release
from .refusal import GateRefused

__all__ = ["GateOptions", "GateRefused", "check_dicom_release", "check_raster_release"]
