"""The wake-up budget (DESIGN §9.3): pure arithmetic of a vehicle's monthly wake-ups.

A vehicle not contacted within ``awakeFor`` is asleep; the first message to it
costs a wake-up, the others within ``awakeFor`` of the last contact are free.
Wake-ups are counted per vehicle and calendar month (UTC). Once ``perMonth -
reserve`` are spent, the vehicle's non-urgent changes wait for next month;
urgent ones (immobilization, stolen) use the reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DEFAULT_AWAKE_FOR = 180.0  # seconds a vehicle stays awake after a message (about three minutes)


@dataclass(frozen=True)
class WakeupPolicy:
    """``wakeups:``: the monthly allowance, the part kept for drivers and urgent actions, how long a car stays up."""

    per_month: int
    reserve: int = 0
    awake_for: float = DEFAULT_AWAKE_FOR

    @property
    def budget(self) -> int:
        """Wake-ups reconciler may spend on non-urgent changes each month."""
        return max(0, self.per_month - self.reserve)


@dataclass(frozen=True)
class WakeupUse:
    """A vehicle's wake-ups in ``month`` (``YYYY-MM``), whether the API said it has none left, its last contact."""

    month: str
    used: int = 0
    spent: bool = False  # the API answered TooManyWakeUpsOverMonth
    last_contact: str = ""  # ISO-8601 UTC

    def to_json(self) -> dict[str, object]:
        """How ``state show`` and ``explain`` show it."""
        return {"month": self.month, "used": self.used, "spent": self.spent, "last_contact": self.last_contact or None}


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def next_month(now: datetime) -> date:
    """The first day of the month after ``now``'s (UTC): when the budget comes back."""
    first = now.astimezone(UTC).date().replace(day=1)
    return (first + timedelta(days=32)).replace(day=1)


def this_month(use: WakeupUse | None, now: datetime) -> WakeupUse:
    """``use`` if it is of ``now``'s month, else a fresh month (its last contact kept)."""
    month = month_of(now)
    if use is None:
        return WakeupUse(month)
    return use if use.month == month else WakeupUse(month, last_contact=use.last_contact)


def asleep(use: WakeupUse | None, now: datetime, awake_for: float) -> bool:
    """Whether a message now would wake the vehicle: no contact within ``awake_for``."""
    if use is None or not use.last_contact:
        return True
    return now - datetime.fromisoformat(use.last_contact) > timedelta(seconds=awake_for)


def spent_reason(policy: WakeupPolicy | None, use: WakeupUse | None, now: datetime) -> str:
    """Why a non-urgent change to this vehicle waits, or "" when its budget allows it."""
    current = this_month(use, now)
    resumes = next_month(now).isoformat()
    if current.spent:
        return f"wake-up budget spent (the API refuses more wake-ups in {current.month}; resumes {resumes})"
    if policy is None or current.used < policy.budget:
        return ""
    return f"wake-up budget spent ({current.used}/{policy.budget} in {current.month}; resumes {resumes})"
