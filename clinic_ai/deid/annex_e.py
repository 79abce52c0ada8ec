"""DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile).

The table ships with the package (``annex_e_table.json``, copied from the
shared data set; its ``source`` field says where it came from) and is parsed
once, at import. Rows are keyed by their exact tag; the three repeating-group
rows (curves ``(50xx,xxxx)``, overlay data ``(60xx,3000)`` and overlay
comments ``(60xx,4000)``) are stored as (value, mask) pairs.

Notes on the data (checked when the module was written):

* The file holds 658 rows although the README says 655: the three extra rows
  are the repeating-group rows, whose literal first tags ``(5000,0000)``,
  ``(6000,3000)`` and ``(6000,4000)`` also appear as ordinary rows carrying
  the option columns. Both forms are loaded; they agree on the basic action.
* Masks are written ``"(5000,0000) mask (FF00,0000)"`` rather than
  ``(50xx,xxxx)``; both spellings are accepted.
* 26 rows have an empty keyword: attributes newer than the pydicom 3.0.2 data
  dictionary (for example the (0010,0011)-(0010,0016) and (0010,0041)-(0010,0047)
  person/pronoun attributes). They are matched by tag.
* The option columns come from a 2020 edition and are missing for attributes
  added since; the policy module compensates for dates (see ``policy.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Final

__all__ = [
    "AnnexERule",
    "TABLE_SOURCE",
    "TABLE_ROW_COUNT",
    "rule_for_tag",
    "all_rules",
    "parse_tag",
]

_TAG_RE: Final = re.compile(r"^\(([0-9A-Fa-fxX]{4}),([0-9A-Fa-fxX]{4})\)$")
_MASK_RE: Final = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)\s+mask\s+\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")
_VALID_CODES: Final = frozenset({"X", "Z", "D", "U", "C", "K", "U*"})


@dataclass(frozen=True, slots=True)
class AnnexERule:
    """One row of Table E.1-1."""

    tag: int
    keyword: str
    basic: str
    """The Basic Profile action, e.g. ``"X"``, ``"Z/D"`` or ``"X/Z/U*"``."""
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    """Option columns present for this row, e.g. ``{"rtnLongModifDatesOpt": "C"}``."""
    mask: int = 0xFFFFFFFF

    @property
    def codes(self) -> tuple[str, ...]:
        """The basic action split into its alternatives, in preference order."""
        return tuple(self.basic.split("/"))

    def option(self, name: str) -> str | None:
        return self.options.get(name)

    @property
    def tag_str(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


def parse_tag(text: str) -> tuple[int, int]:
    """Parse ``"(gggg,eeee)"``, ``"(50xx,xxxx)"`` or ``"(5000,0000) mask (FF00,0000)"``.

    Returns ``(value, mask)``; ``mask`` is ``0xFFFFFFFF`` for an exact tag.
    """
    text = text.strip()
    m = _MASK_RE.match(text)
    if m:
        value = int(m.group(1) + m.group(2), 16)
        mask = int(m.group(3) + m.group(4), 16)
        return value & mask, mask
    m = _TAG_RE.match(text)
    if not m:
        raise ValueError(f"unparseable Annex E tag: {text!r}")
    hexstr = m.group(1) + m.group(2)
    value = int("".join("0" if c in "xX" else c for c in hexstr), 16)
    mask = int("".join("0" if c in "xX" else "F" for c in hexstr), 16)
    return value, mask


def _load() -> tuple[str, int, dict[int, AnnexERule], tuple[AnnexERule, ...]]:
    raw = json.loads(resources.files(__package__).joinpath("annex_e_table.json").read_text(encoding="utf-8"))
    source = str(raw["source"])
    rows = raw["rows"]
    exact: dict[int, AnnexERule] = {}
    masked: list[AnnexERule] = []
    for row in rows:
        value, mask = parse_tag(row["tag"])
        basic = str(row["basic"]).strip()
        for code in basic.split("/"):
            if code not in _VALID_CODES:
                raise ValueError(f"unknown Annex E action {basic!r} for {row['tag']}")
        keyword = str(row.get("keyword") or "")
        if keyword == "(repeating group)":
            keyword = ""
        options = MappingProxyType(
            {k: str(v) for k, v in row.items() if k not in ("tag", "keyword", "basic") and v not in (None, "")}
        )
        rule = AnnexERule(tag=value, keyword=keyword, basic=basic, options=options, mask=mask)
        if mask == 0xFFFFFFFF:
            if value in exact:
                raise ValueError(f"duplicate Annex E row for {row['tag']}")
            exact[value] = rule
        else:
            masked.append(rule)
    return source, len(rows), exact, tuple(masked)


TABLE_SOURCE: Final[str]
TABLE_ROW_COUNT: Final[int]
TABLE_SOURCE, TABLE_ROW_COUNT, _EXACT, _MASKED = _load()


def _is_repeating_group(group: int, base: int) -> bool:
    # Curves and overlays repeat over the even groups base .. base+0x1E.
    return base <= group <= base + 0x1E and group % 2 == 0


def rule_for_tag(tag: int) -> AnnexERule | None:
    """The Table E.1-1 row that applies to ``tag`` (exact rows win over masks)."""
    rule = _EXACT.get(int(tag))
    if rule is not None:
        # The literal (5000,0000)/(6000,xxxx) rows only describe group 5000/6000;
        # the masks below cover the rest of each repeating group.
        return rule
    group = int(tag) >> 16
    for masked in _MASKED:
        base = masked.tag >> 16
        if (int(tag) & masked.mask) == masked.tag and _is_repeating_group(group, base):
            return masked
    return None


def all_rules() -> tuple[AnnexERule, ...]:
    """Every exact-tag rule followed by the repeating-group rules."""
    return tuple(_EXACT.values()) + _MASKED
