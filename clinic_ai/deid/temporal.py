"""Shifting DA and DT values by a whole number of days.

* ``DA`` ``YYYYMMDD`` (and the ACR-NEMA ``YYYY.MM.DD``) -> shifted ``YYYYMMDD``.
* ``DT`` keeps its precision: ``YYYY`` / ``YYYYMM`` values are shifted via
  their first day and truncated back; the time-of-day part is kept verbatim.
  A UTC offset suffix (``&ZZXX``) is dropped: together with
  TimezoneOffsetFromUTC (removed) it locates the acquiring site.
* ``TM`` is never changed: a shift by whole days leaves the time of day.

A value that cannot be parsed returns ``None`` and the caller empties the
element: an unparsed date could be an unshifted real date.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Final

__all__ = ["shift_da", "shift_dt"]

_DA_RE: Final = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_OLD_RE: Final = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_DT_RE: Final = re.compile(r"^(\d{4})(\d{2})?(\d{2})?((?:\d{2}){0,3}(?:\.\d{1,6})?)([+-]\d{4})?$")


def _shift_date(year: int, month: int, day: int, days: int) -> _dt.date | None:
    try:
        return _dt.date(year, month, day) + _dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None


def shift_da(value: str, days: int) -> str | None:
    """Shift one DA value; ``""`` stays ``""``; ``None`` if unparseable."""
    value = str(value).strip(" \x00")
    if not value:
        return ""
    m = _DA_RE.match(value) or _DA_OLD_RE.match(value)
    if not m:
        return None
    shifted = _shift_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), days)
    return shifted.strftime("%Y%m%d") if shifted is not None and shifted.year >= 1 else None


def shift_dt(value: str, days: int) -> str | None:
    """Shift one DT value (see the module docstring)."""
    value = str(value).strip(" \x00")
    if not value:
        return ""
    m = _DT_RE.match(value)
    if not m:
        return None
    year, month, day, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    if rest and not day:
        return None  # a time part without a full date is not a valid DT
    shifted = _shift_date(int(year), int(month or 1), int(day or 1), days)
    if shifted is None or shifted.year < 1:
        return None
    out = f"{shifted.year:04d}"
    if month:
        out += f"{shifted.month:02d}"
    if day:
        out += f"{shifted.day:02d}"
    return out + rest
