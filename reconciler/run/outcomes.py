"""What became of each change, how progress is told, and what an action's end records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api import spec
from ..core import addresses
from ..core.model import VehicleConfig
from ..core.recording import apply_after, backoff_until, stamp
from ..core.wakeups import month_of
from ..state.base import JournalEntry, StateStore

CONFIRMED, ACCEPTED, PENDING, FAILED, SKIPPED = "confirmed", "accepted", "pending", "failed", "skipped"
HELD = "held"  # not sent: the vehicle's wake-up budget is spent, or the rollout halted (apply exits 4 or 5)
WAITS = "waits"  # not sent yet, as planned: a later rollout wave, a closed change window
CANNOT = "cannot apply"  # the vehicle cannot take it: never sent, not a failure
RESULTS = (CONFIRMED, ACCEPTED, PENDING, FAILED, SKIPPED, HELD, WAITS, CANNOT)
OK_RESULTS = (CONFIRMED, ACCEPTED, CANNOT, WAITS)
# How each kind of held address is reported (``changes.Held.kind``).
HELD_RESULTS = {
    "pending": PENDING,
    "backoff": PENDING,
    "wave": WAITS,
    "window": WAITS,
    "halted": HELD,
    "wakeups": HELD,
}


@dataclass(frozen=True)
class Outcome:
    """What became of one change (or of one address the plan held back)."""

    address: str
    result: str
    detail: str = ""
    remote_type: str = ""
    kind: str = ""  # why it was not sent, when it was held (``changes.Held.kind``): wave, window, wakeups …


class Progress:
    """Told of each outcome as it comes; the CLI shows a bar or a line per action."""

    def start(self, total: int) -> None: ...

    def done(self, outcome: Outcome) -> None: ...

    def finish(self) -> None: ...


def record_final(store: StateStore, entry: JournalEntry, status: str, cause: str, rid: str) -> str:
    """Record how an action ended; for apply's polling and the webhook receiver alike.

    Success and AlreadyDone make the action's ``after`` the recorded configuration.
    A failure whose cause is the vehicle's (wake-up budget, privacy, rights,
    battery) backs off every action on that vehicle: the date it ends is returned.
    """
    assert entry.vin is not None
    with store.transaction():  # all of it or none of it; inside the caller's transaction, part of that one
        if status in spec.SUCCESS_STATUSES:
            if entry.after is not None:  # a one-off action (horn, lights …) leaves nothing to record
                part = entry.address.split(".", 2)[2]
                confirmed = (part, stamp(datetime.now(UTC)))
                store.update_vehicle(entry.vin, applying(entry.address, entry.after), confirmed=confirmed)
            store.clear_backoff(addresses.vehicle_prefix(entry.vin))
            store.add_history(entry.address, status, rid)
            return ""
        store.add_history(entry.address, "failed", f"{cause} ({rid})")
        if cause == "TooManyWakeUpsOverMonth":  # spent until the month ends, whatever our count said
            store.spend_wakeups(entry.vin, month_of(datetime.now(UTC)))
        if cause in spec.SLOW_FAILURE_CAUSES:
            until = backoff_until(cause, datetime.now(UTC))
            store.set_backoff(addresses.vehicle_prefix(entry.vin), cause, until)
            return until
        return ""


def applying(address: str, after: Any) -> Callable[[VehicleConfig], VehicleConfig]:
    return lambda config: apply_after(config, address, after)
