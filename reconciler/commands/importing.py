"""``reconciler import``: write the fleet file of a fleet already configured, and record it as applied."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..core import profiles, spec, urls
from ..core.model import Desired, Recorded, VehicleConfig
from ..errors import ReconcilerError
from ..fleetfile import loader
from ..fleetfile.yaml_source import load
from ..run import connection, importer, saved_plan
from ..run.session import lock_owner
from ..state.backends import open_store, state_url
from ..state.base import StateStore
from .shell import Shell


def run(
    shell: Shell,
    *,
    output: str,
    fleet: str | None,
    from_file: str | None,
    prefixes: Sequence[str],
    force: bool,
) -> int:
    target = Path(output)
    _check_output(target, force)
    fleet_id, api_url = _identity(fleet, from_file, shell.env)
    url = state_url(target, shell.env)
    # Read first, from the API and (read-only) the state: a failure leaves no file and no state behind.
    readonly = open_store(url, readonly=True, fleet=fleet_id)
    try:
        _check_state(readonly.read(), readonly, force)
    finally:
        readonly.close()
    with connection.connect(_reader(fleet_id, api_url), url, str(target), shell.env) as api:
        imported = importer.read(api, fleet_id, api_url, prefixes)
    text, factoring = importer.fleet_text(imported, datetime.now(UTC))
    desired = importer.read_back(text, str(target), imported, shell.env)
    store = open_store(url, fleet=fleet_id)
    try:
        lock_id = store.acquire_lock(lock_owner("reconciler import"))
        try:
            recorded = store.read()
            _check_state(recorded, store, force)  # again, under the lock: nobody got there meanwhile
            state = importer.self_check(imported, desired, recorded.fingerprint_key)
            _write(target, text, store, recorded, state, imported)
        finally:
            store.release_lock(lock_id)
    finally:
        store.close()
    _summary(imported, factoring, target, text, store.where, shell.stdout)
    return 0


def _check_output(target: Path, force: bool) -> None:
    """Refuse before reading anything: an existing file without --force, or what is not a file."""
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise ReconcilerError(f"{target} exists; import writes a new fleet file: choose another -o, or pass --force")
    if target.is_symlink() or not target.is_file():
        raise ReconcilerError(f"{target} exists and is not a regular file; choose another -o")


def _identity(fleet: str | None, from_file: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """The fleet id and API URL: --fleet / RECONCILER_FLEET / -f file, and RECONCILER_API_URL / -f file."""
    written: dict[str, object] = {}
    if from_file:
        source = load(loader.read_text(from_file, env), from_file)
        written = source.data if isinstance(source.data, dict) else {}
    api = written.get("api")
    fleet_id = fleet or env.get("RECONCILER_FLEET") or str(written.get("fleet") or "")
    api_url = env.get("RECONCILER_API_URL") or str((api or {}).get("url") if isinstance(api, dict) else "") or ""
    api_url = api_url or spec.DEFAULT_BASE_URL
    if not fleet_id:
        raise ReconcilerError("which fleet? pass --fleet FID, set RECONCILER_FLEET, or -f an existing fleet file")
    problem = urls.api_url_problem(api_url) if api_url != loader.SANDBOX else None
    if problem:
        raise ReconcilerError(f"the API URL {problem}")
    return fleet_id, api_url


def _reader(fleet: str, api_url: str) -> Desired:
    return Desired(fleet=fleet, api_url=api_url, callbacks={}, vehicles={})


def _check_state(recorded: Recorded, store: StateStore, force: bool) -> None:
    managed = [vin for vin, v in recorded.vehicles.items() if v.config != VehicleConfig()]
    if (recorded.callbacks or managed) and not force:
        raise ReconcilerError(
            f"the state {store.where} already records {len(recorded.callbacks)} callback(s) and {len(managed)} "
            "configured vehicle(s); import would replace what it records: pass --force, or point "
            "RECONCILER_STATE at a new state"
        )


def _write(
    target: Path, text: str, store: StateStore, recorded: Recorded, state: Recorded, imported: importer.Imported
) -> None:
    """The file and the state, or neither: the file waits in a temp file until the state is committed."""
    temp = target.with_name(f".{target.name}.import-{os.getpid()}")
    saved_plan.write_atomically(temp, text, what="the fleet file")
    try:
        with store.transaction():
            store.initialize(recorded)
            for label in set(recorded.callbacks) - set(state.callbacks):
                store.forget_callback(label)  # no longer in the API as imported: not managed, never deleted
                store.add_history(f"callback.{label}", "forgotten", "not found by import")
            for label, callback in state.callbacks.items():
                store.record_callback(label, callback.id, callback.config)
            store.record_vehicles([(vin, v.vid, v.config) for vin, v in state.vehicles.items()])
            store.commit_serial()
            store.add_history(
                None,
                "imported",
                f"{len(state.callbacks)} callbacks, {len(state.vehicles)} vehicles from {imported.api_url}",
            )
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def _summary(
    imported: importer.Imported,
    factoring: profiles.Factoring,
    target: Path,
    text: str,
    where: str,
    out: TextIO,
) -> None:
    count = importer.count
    out.write(
        f"Imported fleet {imported.fleet} from {imported.api_url}: {count(len(imported.callbacks), 'callback')}, "
        f"{count(len(imported.vids), 'vehicle')} ({len(factoring.entries):,} configured), "
        f"{count(len(factoring.profiles), 'profile')}, in {imported.requests} API requests. Nothing was sent.\n"
    )
    out.write(f"Wrote {target} ({text.count(chr(10)):,} lines) and recorded it in the state {where} as applied.\n")
    variables = imported.variables
    if variables:
        out.write("Set these environment variables before plan or apply (the secrets the API holds; not written):\n")
        width = max(len(name) for name in variables)
        for name, (_, what) in sorted(variables.items()):
            out.write(f"  {name:<{width}}  {what}\n")
    for note in imported.notes + [f"callback {cb.label}: {n}" for cb in imported.callbacks for n in cb.notes]:
        out.write(f"Note: {note}\n")
    out.write(f"Next: reconciler plan -f {target}   (it plans no change)\n")
