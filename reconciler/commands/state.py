"""``reconciler state list | show ADDR | history [ADDR] | unlock LOCK_ID``."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime

from ..core import addresses, codec, parts
from ..core.model import RecordedVehicle
from ..core.wakeups import month_of
from ..errors import ReconcilerError, StateError
from ..run import pruning
from ..run.session import lock_owner
from ..state.backends import open_store, state_url
from ..state.base import StateStore
from ..state.urls import redact
from .shell import Shell


def _open(fleet_file: str, env: Mapping[str, str], *, readonly: bool = True) -> StateStore:
    return open_store(state_url(fleet_file, env), readonly=readonly)


def list_addresses(shell: Shell, fleet_file: str) -> int:
    store = _open(fleet_file, shell.env)
    try:
        recorded = store.read()
        pending = {e.address for e in store.journal(pending_only=True)}
    finally:
        store.close()
    shell.stdout.write(f"# state lineage {recorded.lineage}, serial {recorded.serial}\n")
    for label, callback in sorted(recorded.callbacks.items()):
        shell.stdout.write(f"{addresses.callback(label)}  id={callback.id} status={callback.config.status}\n")
    for vin, vehicle in sorted(recorded.vehicles.items()):
        for address in _vehicle_addresses(vin, vehicle):
            flag = "  (action pending)" if address in pending else ""
            shell.stdout.write(f"{address}{flag}\n")
    return 0


def _vehicle_addresses(vin: str, vehicle: RecordedVehicle) -> list[str]:
    return [addresses.vehicle(vin, part.name) for part, _ in parts.managed(vehicle.config)]


def show(shell: Shell, fleet_file: str, address: str) -> int:
    if not addresses.is_valid_target(address):
        raise ReconcilerError(f"{address!r} is not an address; see reconciler state list")
    store = _open(fleet_file, shell.env)
    try:
        recorded = store.read()
        journal = store.journal(address=address)
        events = {entry.key: store.events(entry.key) for entry in journal}
        vin = addresses.vin_of(address)
        use = store.wakeup_use(vin, month_of(datetime.now(UTC))) if vin else None
    finally:
        store.close()
    document: dict[str, object] = {"address": address}
    if vin is None:
        callback = recorded.callbacks.get(address.split(".", 1)[1])
        if callback is None:
            raise StateError(f"nothing is recorded for {address}")
        document.update(id=callback.id, recorded=codec.callback_to_json(callback.config))
    else:
        vehicle = recorded.vehicles.get(vin)
        if vehicle is None:
            raise StateError(f"nothing is recorded for {address}")
        config = parts.config_to_json(vehicle.config)
        part = addresses.part_of(address)
        document.update(vid=vehicle.vid, recorded=config.get(part.field) if part else config)
        if use is not None:  # this month's wake-ups (UTC), counted from what was sent and what the API said
            document["wakeups"] = use.to_json()
    if address in recorded.backoffs:
        backoff = recorded.backoffs[address]
        document["backoff"] = {"cause": backoff.cause, "until": backoff.until}
    document["actions"] = [
        {
            "key": e.key,
            "method": e.method,
            "remote_action_id": e.remote_action_id,
            "status": e.status,
            "failure_cause": e.failure_cause or None,
            "request": e.request,
            "statuses": [{"status": s, "cause": c or None, "at": at} for s, c, at in events[e.key]],
        }
        for e in journal
    ]
    shell.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


def history(shell: Shell, fleet_file: str, address: str | None) -> int:
    store = _open(fleet_file, shell.env)
    try:
        rows = store.history(address)
    finally:
        store.close()
    for at, serial, where, event, detail in rows:
        shell.stdout.write(f"{at}  serial {serial:<4} {where or '-':<48} {event:<12} {detail}\n")
    if not rows:
        shell.stdout.write("No history recorded" + (f" for {address}" if address else "") + ".\n")
    return 0


def prune(shell: Shell, fleet_file: str, older_than: float, *, lock_timeout: float = 0.0) -> int:
    """Drop finished actions and history older than ``older_than`` seconds, under the state lock."""
    store = _open(fleet_file, shell.env, readonly=False)
    try:
        lock_id = store.acquire_lock(lock_owner("reconciler state prune"), lock_timeout)
        try:
            pruned, cutoff = pruning.prune(store, older_than, shell.clock())
        finally:
            store.release_lock(lock_id)
    finally:
        store.close()
    shell.stdout.write(pruning.said(pruned, cutoff) + "\n")
    return 0


def unlock(shell: Shell, fleet_file: str, lock_id: str, *, force: bool) -> int:
    store = _open(fleet_file, shell.env, readonly=False)
    try:
        holder = store.unlock(lock_id, force=force)
    finally:
        store.close()
    shell.stdout.write(f"Released lock {lock_id} held by {holder.owner} (pid {holder.pid} on {holder.host}).\n")
    return 0


def migrate(shell: Shell, fleet_file: str, target: str, *, force: bool) -> int:
    """Copy the state to ``target`` (SQLite ↔ PostgreSQL), under both stores' locks."""
    source_url = state_url(fleet_file, shell.env)
    if source_url == target:
        raise ReconcilerError("--to is the state itself; name another store")
    source = open_store(source_url)
    try:
        destination = open_store(target)
        try:
            held = source.acquire_lock("reconciler state migrate")
            try:
                rows = source.dump()
                destination.load(rows, replace_existing=force)
            finally:
                source.release_lock(held)
        finally:
            destination.close()
    finally:
        source.close()
    counts = ", ".join(f"{len(r)} {table}" for table, r in rows.items() if r)
    shell.stdout.write(
        f"Copied the state from {redact(source_url)} to {redact(target)}: {counts or 'nothing (it was empty)'}.\n"
    )
    shown = redact(target)
    hint = " (put the password back in place of ***)" if shown != target else ""
    shell.stdout.write(f"Use it with: export RECONCILER_STATE={shlex.quote(shown)}{hint}\n")
    return 0
