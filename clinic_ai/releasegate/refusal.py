"""The one exception of the release gate."""

from __future__ import annotations

__all__ = ["GateRefused"]


class GateRefused(Exception):
    """The gate will not let a file out.

    ``rule`` is a short machine name (``"structure"``, ``"two-readings"``, ``"allow-list"``,
    ``"markers"``, ``"value-grammar"``, ``"identifying-value"``, ``"raster"``, ``"unreadable"``);
    ``reason`` is a sentence for a person. Neither ever quotes a value from the file: only fixed
    text, tags and dictionary keywords.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"[{rule}] {reason}")
        self.rule = rule
        self.reason = reason
