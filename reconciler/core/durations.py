"""Durations and shares as fleet.yaml and the command line write them: ``30s``, ``10m``, ``1h``; ``5%`` or 20."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_SECONDS = 366 * 86400  # a year: anything longer is a slip of the keyboard (and overflows date arithmetic)
MAX_COUNT = 10_000_000  # vehicles: more than any fleet has (the schema says the same)
_SHARE = re.compile(r"(\d+(?:\.\d+)?)\s*%\Z")


class FormatError(ValueError):
    """Not a duration, or not a share."""


def seconds(text: str | int | float) -> float:
    """Seconds in ``90``, ``30s``, ``10m``, ``1h`` or ``2d``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise FormatError(f"{text!r} is not a duration: write 30s, 10m or 1h")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    if value < 0:
        raise FormatError(f"{text!r} is negative")
    if value > MAX_SECONDS:
        raise FormatError(f"{text!r} is longer than a year")
    return value


def describe(total: float) -> str:
    """``90s`` → ``1m30s``: a duration as people read it."""
    rest = round(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if rest or not parts:
        parts.append(f"{rest}s")
    return "".join(parts)


@dataclass(frozen=True)
class Share:
    """A part of a whole: a percentage (``5%``) or a number of items (``20``)."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str | int) -> Share:
        if isinstance(text, int) and not isinstance(text, bool):
            if text < 0:
                raise FormatError(f"{text} is negative")
            if text > MAX_COUNT:
                raise FormatError(f"{text} is more vehicles than any fleet has")
            return cls(float(text), percent=False)
        match = _SHARE.match(str(text).strip())
        if not match:
            raise FormatError(f"{text!r} is neither a number nor a percentage such as 5%")
        value = float(match.group(1))
        if value > 100:
            raise FormatError(f"{text!r} is more than 100%")
        return cls(value, percent=True)

    def of(self, whole: int) -> int:
        """How many of ``whole`` items: a percentage rounds up (5% of 30 is 2), a count is capped at ``whole``."""
        if self.percent:
            return min(whole, math.ceil(self.value * whole / 100 - 1e-9))
        return min(whole, int(self.value))

    def __str__(self) -> str:
        number = f"{self.value:g}"
        return f"{number}%" if self.percent else number
