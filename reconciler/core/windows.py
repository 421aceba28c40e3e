"""Change windows (DESIGN §9.3): when non-urgent changes may go, in the fleet's own time zone. Pure.

A window is ``days``, ``start`` and ``end`` as programs write them; an ``end``
before its ``start`` crosses midnight (Fri 22:00 to 06:00 runs into Saturday).
It is open inside an ``allow`` window (or always, with no ``allow``) and not
inside a ``deny`` window. Local times are turned into instants with the IANA
zone's rules: across a DST change a window keeps its wall-clock times (a time
that does not exist that day, in the spring gap, falls an hour later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import Window, Windows

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HORIZON = 8  # days looked ahead for the next opening: a weekly schedule repeats within 7


@dataclass(frozen=True)
class WindowState:
    """Whether changes may go now, and when that changes (None: not within the horizon)."""

    open: bool
    opens_at: datetime | None = None  # UTC; set when closed
    closes_at: datetime | None = None  # UTC; set when open


def state(windows: Windows | None, now: datetime) -> WindowState:
    """The window state at ``now`` (an aware datetime)."""
    if windows is None or (not windows.allow and not windows.deny):
        return WindowState(True)
    zone = ZoneInfo(windows.timezone)
    always = [(now - timedelta(days=2), now + timedelta(days=HORIZON + 2))]
    allow = _spans(windows.allow, zone, now) if windows.allow else always
    deny = _spans(windows.deny, zone, now)

    def is_open(at: datetime) -> bool:
        return any(a <= at < b for a, b in allow) and not any(a <= at < b for a, b in deny)

    if is_open(now):
        edges = sorted({b for _, b in allow if b > now} | {a for a, _ in deny if a > now})
        return WindowState(True, closes_at=next((e for e in edges if not is_open(e)), None))
    edges = sorted({a for a, _ in allow if a > now} | {b for _, b in deny if b > now})
    return WindowState(False, opens_at=next((e for e in edges if is_open(e)), None))


def _spans(windows: tuple[Window, ...], zone: ZoneInfo, now: datetime) -> list[tuple[datetime, datetime]]:
    """Every occurrence of ``windows`` from two days before ``now`` to the horizon, as UTC instants."""
    today = now.astimezone(zone).date()
    spans = []
    for offset in range(-2, HORIZON + 1):
        day = today + timedelta(days=offset)
        name = _DAY_NAMES[day.weekday()]
        for window in windows:
            if name in window.days:
                start = _instant(day, window.start, zone)
                end_day = day if window.end > window.start else day + timedelta(days=1)
                spans.append((start, _instant(end_day, window.end, zone)))
    return spans


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    # fold=0: a time the spring-forward gap skips is read with the offset before it
    # (02:30 is 03:30 summer time); one the autumn repeats is its first occurrence.
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone).astimezone(UTC)


def describe(windows: Windows, at: datetime) -> str:
    """``2026-11-27 09:00 Europe/Paris``: an instant in the fleet's time zone."""
    return at.astimezone(ZoneInfo(windows.timezone)).strftime("%Y-%m-%d %H:%M ") + windows.timezone
