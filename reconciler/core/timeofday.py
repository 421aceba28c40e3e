"""Times of day and day sets, as fleet.yaml writes them and as the API does.

A program's start and end are minutes after local midnight. fleet.yaml writes
them ``HH:MM`` or as ISO-8601 durations; the API writes durations and, in the
field, pads them in several ways (``PT7H30M``, ``PT07H30M00S``, ``PT7H30M0S``):
all parse to the same minute, so padding never reads as a change.
"""

from __future__ import annotations

import re

from .spec import DAYS

MINUTES_PER_DAY = 24 * 60

_HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])\Z")
_DURATION = re.compile(r"PT(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?\Z")

DAY_SHORTCUTS: dict[str, tuple[str, ...]] = {
    "weekdays": DAYS[:5],
    "weekend": DAYS[5:],
    "everyday": DAYS,
}
_DAY_ORDER = {day: i for i, day in enumerate(DAYS)}


class TimeFormatError(ValueError):
    """A time that is neither HH:MM nor an ISO-8601 duration within one day."""


def parse_time(text: str) -> int:
    """Minutes after midnight for ``HH:MM`` or ``PT…`` within a day.

    Seconds must be zero: programs run on whole minutes.
    """
    hhmm = _HHMM.match(text)
    if hhmm:
        return int(hhmm.group(1)) * 60 + int(hhmm.group(2))
    minutes, seconds = _duration(text)
    if seconds:
        raise TimeFormatError(f"{text!r} has seconds; programs start on whole minutes")
    return minutes


def parse_api_time(text: str) -> int:
    """Minutes after midnight of a duration the API reported (seconds are dropped)."""
    hhmm = _HHMM.match(text)
    if hhmm:
        return int(hhmm.group(1)) * 60 + int(hhmm.group(2))
    return _duration(text)[0]


def _duration(text: str) -> tuple[int, int]:
    match = _DURATION.match(text)
    if not match:
        raise TimeFormatError(f"{text!r} is not a time")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 60 + minutes + seconds // 60
    if total >= MINUTES_PER_DAY:
        raise TimeFormatError(f"{text!r} is past the end of the day")
    return total, seconds % 60


def to_hhmm(minutes: int) -> str:
    """``HH:MM``, the form plans show."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def to_duration(minutes: int) -> str:
    """The API's form, e.g. ``PT7H30M`` (midnight is ``PT0M``)."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"PT{hours}H{rest}M"
    return f"PT{hours}H" if hours else f"PT{rest}M"


def parse_days(value: str | list[str]) -> tuple[str, ...]:
    """A shortcut or a list of day names, as a tuple in week order."""
    if isinstance(value, str):
        return DAY_SHORTCUTS[value]
    return tuple(sorted(set(value), key=_DAY_ORDER.__getitem__))


def api_days(value: object) -> tuple[str, ...]:
    """Day names the API reported, in week order; unknown names are dropped."""
    if not isinstance(value, list):
        return ()
    return tuple(sorted({d for d in value if d in _DAY_ORDER}, key=_DAY_ORDER.__getitem__))


def describe_days(days: tuple[str, ...]) -> str:
    """``weekdays``/``weekend``/``everyday`` when it is one of those, else ``Mon,Wed``."""
    for name, members in DAY_SHORTCUTS.items():
        if days == members:
            return name
    return ",".join(days)
