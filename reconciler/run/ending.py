"""What ends an action, written to the state: for apply's polling, settling and the webhook receiver alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..core import addresses, spec
from ..core.model import VehicleConfig
from ..core.recording import apply_after, backoff_until, stamp
from ..core.wakeups import month_of
from ..state.base import JournalEntry, StateStore


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
