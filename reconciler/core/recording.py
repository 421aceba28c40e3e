"""What the state records once a change is confirmed: pure, for apply and for tests.

A confirmed change makes its ``after`` the recorded configuration of its
address (DESIGN §6). Callbacks are recorded from the desired callback, sealed,
since a plan never holds a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from . import addresses, spec
from .changes import Change
from .model import Backoff, Desired, Recorded, RecordedCallback, RecordedVehicle, VehicleConfig
from .sensitive import seal_callback
from .vocabulary import Action


def record_success(recorded: Recorded, change: Change, desired: Desired, *, callback_id: str = "") -> Recorded:
    """``recorded`` with ``change`` confirmed (Success or AlreadyDone, or a 2xx for callbacks)."""
    if change.vin is None:
        return _record_callback(recorded, change, desired, callback_id)
    vehicle = recorded.vehicles.get(change.vin) or RecordedVehicle(change.vin)
    config = apply_after(vehicle.config, change.address, change.after)
    vehicles = {**recorded.vehicles, change.vin: replace(vehicle, config=config)}
    return replace(recorded, vehicles=vehicles)


def _record_callback(recorded: Recorded, change: Change, desired: Desired, callback_id: str) -> Recorded:
    label = change.callback or change.address.split(".", 1)[1]
    callbacks = dict(recorded.callbacks)
    if change.action == Action.DELETE:
        callbacks.pop(label, None)
        return replace(recorded, callbacks=callbacks)
    previous = callbacks.get(label)
    sealed = seal_callback(desired.callbacks[label], recorded.fingerprint_key)
    cb_id = callback_id or (previous.id if previous else "")
    if change.action in (Action.PAUSE, Action.RESUME):
        status = spec.CALLBACK_PAUSED if change.action == Action.PAUSE else spec.CALLBACK_RUNNING
        base = previous.config if previous else replace(sealed, status=spec.CALLBACK_RUNNING)
        callbacks[label] = RecordedCallback(label, cb_id, replace(base, status=status))
    else:
        # A POST or PUT body carries no status: a new callback runs, an updated one keeps its own.
        status = previous.config.status if previous else spec.CALLBACK_RUNNING
        callbacks[label] = RecordedCallback(label, cb_id, replace(sealed, status=status))
    return replace(recorded, callbacks=callbacks)


def apply_after(config: VehicleConfig, address: str, after: Any) -> VehicleConfig:
    """``config`` with the confirmed ``after`` of a vehicle address (a plan's, or the journal's)."""
    part = addresses.part_of(address)
    if part is None:
        raise ValueError(f"unknown address {address}")
    return part.confirmed(config, after)


def confirmed(vehicle: RecordedVehicle, address: str, after: Any, at: str) -> RecordedVehicle:
    """``vehicle`` once the action on ``address`` that makes it ``after`` was confirmed at ``at``."""
    part = address.split(".", 2)[2]
    return replace(
        vehicle,
        config=apply_after(vehicle.config, address, after),
        confirmed_at={**vehicle.confirmed_at, part: at},
    )


def settled(recorded: Recorded, actions: Mapping[str, tuple[str, str]], now: datetime) -> Recorded:
    """``recorded`` as settling will leave it, for the pending actions the API reports ended (``actions``).

    What ``plan`` (which never writes the state) sees of its own actions that
    ended since: a success is the recorded configuration, not drift; a failure
    is a change to plan again (backed off when its cause says so).
    """
    ended = {
        address: action
        for address, action in recorded.pending.items()
        if action.key in actions and actions[action.key][0] not in spec.PENDING_STATUSES
    }
    if not ended:
        return recorded
    vehicles, backoffs = dict(recorded.vehicles), dict(recorded.backoffs)
    at = stamp(now)
    for address, action in ended.items():
        vin = addresses.vin_of(address) or ""
        status, cause = actions[action.key]
        prefix = addresses.vehicle_prefix(vin)
        if status in spec.SUCCESS_STATUSES:
            if action.after is not None:
                vehicles[vin] = confirmed(vehicles.get(vin) or RecordedVehicle(vin), address, action.after, at)
            backoffs.pop(prefix, None)
        elif (cause or status) in spec.SLOW_FAILURE_CAUSES:
            backoffs[prefix] = Backoff(prefix, cause or status, backoff_until(cause or status, now))
    pending = {address: action for address, action in recorded.pending.items() if address not in ended}
    return replace(recorded, pending=pending, vehicles=vehicles, backoffs=backoffs)


def backoff_until(cause: str, now: datetime) -> str:
    """When a failure that retrying cannot fix soon is worth trying again."""
    if cause == "TooManyWakeUpsOverMonth":
        month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return month.isoformat(timespec="seconds")
    return (now + timedelta(hours=6)).isoformat(timespec="seconds")


def stamp(now: datetime) -> str:
    """A confirmation's time: to the millisecond, as the API dates its reports."""
    return now.isoformat(timespec="milliseconds")
