"""``reconciler send VIN ACTION …``: a one-off remote action, journaled and followed like apply's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from ..api.client import FleetApi
from ..core import spec
from ..core.changes import Change, Request
from ..core.model import Desired, Recorded
from ..core.outcomes import Outcome
from ..core.vocabulary import Action, Result
from ..errors import ReconcilerError
from ..fleetfile import loader
from ..run import connection, oneoff
from ..run.executor import Executor
from ..run.wakeups import WakeupLedger, reserve_warning
from ..state.backends import open_store, state_url
from ..state.base import StateStore
from .shell import Shell


def run(
    shell: Shell,
    vin: str,
    action: str,
    args: Sequence[str],
    *,
    fleet_file: str,
    callback: str | None,
    wait: bool,
    timeout: float,
    fmt: str,
    force: bool,
    driver_approval: bool,
) -> int:
    one = oneoff.parse(action, list(args), driver_approval=driver_approval)
    if len(vin) != spec.VIN_LENGTH or not set(vin) <= spec.VIN_ALPHABET:
        raise ReconcilerError(f"{vin!r} is not a VIN: 17 capital letters and digits, never I, O or Q")
    desired = loader.read(fleet_file, shell.env)
    label = _callback_for(desired, vin, one.remote_type, callback)
    _check_declared_flag(desired, vin, one, force, shell.stderr)
    url = state_url(fleet_file, shell.env)
    store = open_store(url, fleet=desired.fleet)
    try:
        recorded = store.read()
        store.initialize(recorded)
        _check_wakeups(store, desired, vin, one, force, shell.stderr)
        with connection.connect(desired, url, fleet_file, shell.env) as api:
            cb_id = _callback_id(api, recorded, desired, label)
            vid = _vid(api, store, recorded, desired, vin)
            key = f"reconciler:{uuid.uuid4().hex[:24]}"
            path = f"/fleets/{desired.fleet}/vehicles/{vid}/callbacks/{cb_id}/remotes"
            change = Change(
                address=f"vehicle.{vin}.{one.part}",
                action=Action.SEND,
                before=None,
                after={one.flag[0]: one.flag[1]} if one.flag else None,
                request=Request("POST", path, one.body, label=key),
                summary=one.name,
                key=key,
                vin=vin,
                remote_type=one.remote_type,
                callback=label,
            )
            executor = Executor(
                api,
                store,
                desired,
                fingerprint_key=recorded.fingerprint_key,
                wait=wait,
                timeout=timeout,
                wakeups=WakeupLedger(store, desired.wakeups, hold=False),  # checked above
            )
            outcome = executor.send_one(change, vid=vid)
    finally:
        store.close()
    _print(outcome, one, vin, label, change, fmt, shell.stdout)
    if outcome.result in (Result.CONFIRMED, Result.ACCEPTED):
        return 0
    return 1 if outcome.result == Result.FAILED else 4


def _callback_for(desired: Desired, vin: str, remote_type: str, chosen: str | None) -> str:
    """--callback if it subscribes; else the vehicle's route; else the one callback that subscribes."""
    if chosen is not None:
        callback = desired.callbacks.get(chosen)
        if callback is None:
            raise ReconcilerError(f"--callback {chosen}: no such callback in {desired.source}")
        if remote_type not in callback.remote_types:
            raise ReconcilerError(f"callback {chosen} does not subscribe to {remote_type}; add it to its remoteTypes")
        return chosen
    vehicle = desired.vehicles.get(vin)
    if vehicle and remote_type in vehicle.routes:
        return vehicle.routes[remote_type]
    candidates = [label for label, cb in desired.callbacks.items() if remote_type in cb.remote_types]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ReconcilerError(
            f"no callback subscribes to {remote_type}: add it to a callback's remoteTypes "
            "in the fleet file and apply it first"
        )
    raise ReconcilerError(
        f"callbacks {', '.join(candidates)} all subscribe to {remote_type}; choose one with --callback"
    )


def _check_declared_flag(desired: Desired, vin: str, one: oneoff.OneOff, force: bool, stderr: TextIO) -> None:
    if one.flag is None or vin not in desired.vehicles:
        return
    name, value = one.flag
    declared = getattr(desired.vehicles[vin].config, name)
    if declared is None or declared == value:
        return
    message = (
        f"{desired.source} declares {vin} {name}: {str(declared).lower()}; the next apply will revert this {one.name}"
    )
    if not force:
        raise ReconcilerError(f"{message}. Change the file instead, or pass --force to send it anyway")
    stderr.write(f"warning: {message}\n")


def _check_wakeups(
    store: StateStore, desired: Desired, vin: str, one: oneoff.OneOff, force: bool, stderr: TextIO
) -> None:
    """A one-off that would take a wake-up from the reserve needs --force, unless it is urgent."""
    message = reserve_warning(store, desired.wakeups, vin, datetime.now(UTC))
    if not message:
        return
    if not force and one.flag is None:  # immobilization and stolen are what the reserve is for
        raise ReconcilerError(f"{message}. Pass --force to send it anyway")
    stderr.write(f"warning: {message}\n")


def _callback_id(api: FleetApi, recorded: Recorded, desired: Desired, label: str) -> str:
    callback = recorded.callbacks.get(label)
    if callback is not None:
        return callback.id
    for item in api.pages(f"/fleets/{desired.fleet}/remote/callbacks", "callbacks"):
        if (item.get("subscribe") or {}).get("label") == label:
            return str(item["id"])
    raise ReconcilerError(f"callback {label} does not exist in the API yet: run reconciler apply first")


def _vid(api: FleetApi, store: StateStore, recorded: Recorded, desired: Desired, vin: str) -> str:
    vehicle = recorded.vehicles.get(vin)
    if vehicle is not None and vehicle.vid:
        return vehicle.vid
    for item in api.pages(f"/fleets/{desired.fleet}/vehicles", "vehicles", {"vinPrefix": vin}):
        if item.get("vin") == vin:
            store.record_vids({vin: str(item["id"])})
            return str(item["id"])
    raise ReconcilerError(f"VIN {vin} is not in fleet {desired.fleet}; nothing was sent")


def _print(outcome: Outcome, one: oneoff.OneOff, vin: str, label: str, change: Change, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        document = {
            "vin": vin,
            "action": one.name,
            "remote_type": one.remote_type,
            "callback": label,
            "key": change.key,
            "result": outcome.result,
            "detail": outcome.detail,
            "request": change.request.body,
        }
        out.write(json.dumps(document) + "\n")
    else:
        out.write(f"{one.name} → {vin} via callback {label}: {outcome.result} {outcome.detail}\n")
