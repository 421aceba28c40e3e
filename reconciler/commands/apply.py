"""``reconciler apply``: execute a fresh plan (``-f``) or a saved one (``PLAN``)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..core import planner
from ..core.changes import Plan
from ..core.model import Recorded
from ..errors import ReconcilerError, StalePlanError
from ..fleetfile import loader
from ..render import report, text
from ..render.json_plan import dumps, plan_document
from ..render.report import BarProgress, LineProgress
from ..run import connection, gcpause, saved_plan
from ..run.executor import ACCEPTED, CONFIRMED, PENDING, Executor, Outcome, Progress
from ..state.base import StateStore, open_store, state_url
from .plan import check_targets


@dataclass(frozen=True)
class Options:
    auto_approve: bool = False
    wait: bool = True
    timeout: float = 300.0
    parallelism: int = 32
    lock_timeout: float = 0.0
    targets: tuple[str, ...] = ()
    refresh: bool = True


@dataclass(frozen=True)
class RunResult:
    """What one apply did: the plan it carried out and the outcome of every address."""

    code: int
    plan: Plan | None
    outcomes: list[Outcome]


def run(
    fleet_path: str,
    plan_file: str | None,
    options: Options,
    *,
    env: Mapping[str, str],
    interactive: bool,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    check_targets(options.targets)
    saved = _read_saved(plan_file) if plan_file else None
    if saved is None and not options.auto_approve and not interactive:
        raise ReconcilerError("apply needs --auto-approve when there is no terminal to ask for approval")

    def review(result: Plan) -> bool:
        if saved is not None:
            return True  # a saved plan was reviewed when it was made
        text.write(result, stdout)
        if not result.changes or options.auto_approve:
            return True
        if _approved(stdin, stdout):
            return True
        stdout.write("Apply cancelled: nothing was sent.\n")
        return False

    progress = BarProgress(stderr) if interactive and stderr.isatty() else LineProgress(stderr)
    outcome = apply_fleet(fleet_path, saved, options, env=env, review=review, progress=progress, stderr=stderr)
    if outcome.outcomes:
        report.report(outcome.outcomes, stdout)
    return outcome.code


def apply_fleet(
    fleet_path: str,
    saved: dict[str, Any] | None,
    options: Options,
    *,
    env: Mapping[str, str],
    review: Callable[[Plan], bool],
    progress: Progress,
    stderr: TextIO,
    owner: str = "reconciler apply",
) -> RunResult:
    """Lock, settle, refresh, plan, have ``review`` approve, execute, unlock.

    With ``saved`` (a plan file's content) the plan computed now must be the saved one.
    """
    targets = options.targets
    if saved is not None:
        fleet_path = saved["source"]["file"]
        targets = tuple(saved.get("targets", ()))
        # Recomputed the way it was made, to compare like with like.
        options = replace(options, refresh=bool(saved.get("refreshed")))
    with gcpause.paused():
        desired = loader.read(fleet_path, env)
    url = state_url(fleet_path, env)
    store = open_store(url, fleet=desired.fleet)
    try:
        lock_id = store.acquire_lock(f"{owner} ({_user()})", options.lock_timeout)
        try:
            recorded = store.read()
            if saved is not None:
                recorded = _check_fresh(saved, recorded, store)
            store.initialize(recorded)
            with connection.connect(desired, url, fleet_path, env) as api:
                executor = Executor(
                    api,
                    store,
                    desired,
                    fingerprint_key=recorded.fingerprint_key,
                    parallelism=options.parallelism,
                    wait=options.wait,
                    timeout=options.timeout,
                    progress=progress,
                )
                settled = [o for o in executor.settle() if o.result != "skipped"]
                recorded = store.read()
                observed = (
                    connection.refresh_or_warn(api, desired, recorded, stderr, options.parallelism)
                    if options.refresh
                    else None
                )
                now = datetime.now(UTC).isoformat(timespec="seconds")
                result = planner.plan(desired, recorded, observed, targets=targets, now=now)
                if saved is not None and _changes(result) != saved["changes"]:
                    raise StalePlanError(
                        "the state changed since the plan was made (earlier actions finished); "
                        "run reconciler plan again"
                    )
                if not review(result):
                    return RunResult(1, result, [])
                if result.changes:
                    store.commit_serial()
                outcomes = executor.run(result)  # with no changes: records what refresh found in place
                if result.changes:
                    stderr.write(f"API: {api.usage()}\n")
        finally:
            store.release_lock(lock_id)
    finally:
        store.close()
    held = [Outcome(h.address, PENDING, h.reason) for h in result.held]
    everything = settled + outcomes + held
    ok = all(o.result in (CONFIRMED, ACCEPTED) for o in outcomes + held)
    return RunResult(0 if ok else 4, result, everything)


def _read_saved(path: str) -> dict[str, Any]:
    saved = saved_plan.read(path)
    source = Path(saved["source"]["file"])
    try:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError as exc:
        raise StalePlanError(f"the plan's fleet file {source} cannot be read: {exc}") from exc
    if digest != saved["source"]["sha256"]:
        raise StalePlanError(f"{source} changed since the plan was made; run reconciler plan again")
    return saved


def _check_fresh(saved: dict[str, Any], recorded: Recorded, store: StateStore) -> Recorded:
    """The saved plan's lineage and serial must still be the state's (exit 3 if not)."""
    lineage, serial = saved["state"]["lineage"], saved["state"]["serial"]
    if not store.is_initialized() and serial == 0:
        return replace(recorded, lineage=lineage)  # a state never written takes the plan's lineage
    if (recorded.lineage, recorded.serial) != (lineage, serial):
        raise StalePlanError(
            f"the plan was made against state {lineage} serial {serial}, the state is now "
            f"{recorded.lineage} serial {recorded.serial}; run reconciler plan again"
        )
    return recorded


def _changes(result: Plan) -> Any:
    """The plan's changes as a saved plan holds them, to compare the two."""
    return json.loads(dumps(plan_document(result)["changes"]))


def _approved(stdin: TextIO, stdout: TextIO) -> bool:
    stdout.write("\nApply these changes? Only 'yes' is accepted: ")
    stdout.flush()
    return stdin.readline().strip() == "yes"


def _user() -> str:
    try:
        return f"{getpass.getuser()}, pid {os.getpid()}"
    except (KeyError, OSError):
        return f"pid {os.getpid()}"
