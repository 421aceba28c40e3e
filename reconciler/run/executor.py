"""Apply: carry out a plan's changes through the API, recording everything (DESIGN §6 and §7).

Order: callbacks first (create, update, pause/resume), then remote actions —
in parallel across vehicles, one action of a remote type in flight per vehicle
— then callback deletions once nothing is pending on them.

Every mutating call is journaled before it is sent and its result written
right after, so a crash at any instant leaves a state the next run settles
(``settle``) before planning: an action whose answer was lost is looked up by
the key in its label, never sent twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..api import spec
from ..api.client import FleetApi
from ..core import addresses
from ..core.changes import Change, Plan
from ..core.model import Desired, VehicleConfig
from ..core.recording import apply_after
from ..core.sensitive import json_default, reveal, seal_callback
from ..errors import ApiError, AuthError, NotFoundError, ReconcilerError, UnknownOutcome, UnreachableError
from ..state.base import PENDING_JOURNAL_STATUSES, JournalEntry, StateStore

CONFIRMED, ACCEPTED, PENDING, FAILED, SKIPPED = "confirmed", "accepted", "pending", "failed", "skipped"
_FINAL_OK = spec.SUCCESS_STATUSES
_POLL_DELAYS = (0.5, 1.0, 2.0, 3.0, 5.0)  # then every 5 s
# Errors that end the whole run (exit 1): going on would only repeat them.
_FATAL = (AuthError, UnreachableError)


@dataclass(frozen=True)
class Outcome:
    """What became of one change."""

    address: str
    result: str
    detail: str = ""


class Progress:
    """Told of each outcome as it comes; the CLI shows a bar or a line per action."""

    def start(self, total: int) -> None: ...

    def done(self, outcome: Outcome) -> None: ...

    def finish(self) -> None: ...


class Executor:
    def __init__(
        self,
        api: FleetApi,
        store: StateStore,
        desired: Desired,
        *,
        fingerprint_key: bytes,
        parallelism: int = 8,
        wait: bool = True,
        timeout: float = 300.0,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.store = store
        self.desired = desired
        self.parallelism = max(1, parallelism)
        self.wait = wait
        self.timeout = timeout
        self.progress = progress or Progress()
        self._sleep = sleep
        self._clock = clock
        self.fleet_path = f"/fleets/{desired.fleet}"
        self._key = fingerprint_key
        self._callback_ids: dict[str, str] = {}
        self._listed: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    # settling what earlier runs left pending

    def settle(self) -> list[Outcome]:
        """Find out what became of every journaled action still pending; record it."""
        outcomes = []
        for entry in self.store.journal(pending_only=True):
            if entry.vin is None:
                # A callback call cut short: the label lookup before any create adopts it.
                self.store.journal_update(entry.key, "Unknown")
                continue
            outcomes.append(self._settle_one(entry, deadline=self._clock()))
        return outcomes

    def _settle_one(self, entry: JournalEntry, deadline: float) -> Outcome:
        path = entry.request["path"]
        rid = entry.remote_action_id
        if rid is None:
            found = self._find_by_label(path, entry.key)
            if found is None:
                self.store.journal_update(entry.key, "NotSent")
                self.store.add_history(entry.address, "not sent", f"{entry.key} never reached the API")
                return Outcome(entry.address, SKIPPED, "the earlier attempt never reached the API")
            rid = str(found["remoteActionId"])
            self.store.journal_update(entry.key, str(found.get("status", "Accepted")), remote_action_id=rid)
        return self._follow(entry, f"{path}/{rid}", rid, deadline)

    # the run

    def run(self, plan: Plan) -> list[Outcome]:
        """Carry out ``plan``; one outcome per change."""
        self._record_adoptions(plan)
        callbacks = [c for c in plan.changes if c.vin is None and c.action != "delete"]
        vehicles = [c for c in plan.changes if c.vin is not None]
        deletions = [c for c in plan.changes if c.action == "delete"]
        self.progress.start(len(plan.changes))
        outcomes: list[Outcome] = []
        failed_callbacks: set[str] = set()
        for change in callbacks:
            outcome = self._callback_change(change)
            if outcome.result != CONFIRMED:
                failed_callbacks.add(change.callback or "")
            outcomes.append(self._report(outcome))
        outcomes += self._vehicle_changes(vehicles, failed_callbacks)
        for change in deletions:
            outcomes.append(self._report(self._delete_callback(change)))
        self.progress.finish()
        return outcomes

    def _record_adoptions(self, plan: Plan) -> None:
        """Record what refresh found already in place, and the vids it learnt; nothing is sent."""
        vids = {c.vin: _vid_in(c.request.path) for c in plan.changes if c.vin and "{vid}" not in c.request.path}
        for adoption in plan.adoptions:
            vin = addresses.vin_of(adoption.address)
            if vin is None:
                label = adoption.address.split(".", 1)[1]
                self._callback_ids[label] = adoption.identity
                self.store.record_callback(
                    label, adoption.identity, seal_callback(self.desired.callbacks[label], self._key)
                )
            else:
                if adoption.identity:
                    vids[vin] = adoption.identity
                self.store.update_vehicle(vin, _applying(adoption.address, adoption.after))
            self.store.add_history(adoption.address, "adopted", "already in place; recorded, nothing sent")
        if vids:
            self.store.record_vids({vin: vid for vin, vid in vids.items() if vid})

    def _report(self, outcome: Outcome) -> Outcome:
        self.progress.done(outcome)
        return outcome

    # callbacks

    def _callback_change(self, change: Change) -> Outcome:
        label = change.callback or change.address.split(".", 1)[1]
        wanted = self.desired.callbacks[label]
        body = reveal(change.request.body)
        try:
            if change.action == "create":
                existing = self._existing_callbacks().get(label)
                if existing is not None:
                    return self._adopt(change, label, existing)
                answer = self._journaled(change, "POST", f"{self.fleet_path}/remote/callbacks", body)
                cb_id = str(answer["callbackId"])
                self._callback_ids[label] = cb_id
                self.store.record_callback(label, cb_id, replace(seal_callback(wanted, self._key), status="Running"))
                return Outcome(change.address, CONFIRMED, f"created {cb_id}")
            cb_id = self._callback_id(label)
            if change.action == "update":
                self._journaled(change, "PUT", f"{self.fleet_path}/remote/callbacks/{cb_id}", body)
                status = self._recorded_status(label)
                self.store.record_callback(label, cb_id, replace(seal_callback(wanted, self._key), status=status))
                return Outcome(change.address, CONFIRMED, f"updated {cb_id}")
            self._journaled(change, "PUT", f"{self.fleet_path}/remote/callbacks/{cb_id}/status", body)
            recorded = self.store.callbacks().get(label)
            config = recorded.config if recorded else seal_callback(wanted, self._key)
            self.store.record_callback(label, cb_id, replace(config, status=body["status"]))
            return Outcome(change.address, CONFIRMED, f"{change.action}d {cb_id}")
        except _FATAL:
            raise
        except (ApiError, UnknownOutcome) as exc:
            self.store.add_history(change.address, "failed", str(exc))
            return Outcome(change.address, FAILED, str(exc))

    def _adopt(self, change: Change, label: str, existing: dict[str, Any]) -> Outcome:
        """A callback with our label exists (an earlier run's answer was lost, or the state): use it."""
        cb_id = str(existing["id"])
        self._callback_ids[label] = cb_id
        wanted = self.desired.callbacks[label]
        body = reveal(change.request.body)
        if existing.get("subscribe") != body:
            self._journaled(change, "PUT", f"{self.fleet_path}/remote/callbacks/{cb_id}", body)
        status = str(existing.get("status", "Running"))
        self.store.record_callback(label, cb_id, replace(seal_callback(wanted, self._key), status=status))
        self.store.add_history(change.address, "adopted", cb_id)
        return Outcome(change.address, CONFIRMED, f"adopted existing {cb_id}")

    def _existing_callbacks(self) -> dict[str, dict[str, Any]]:
        if self._listed is None:
            listed = self.api.pages(f"{self.fleet_path}/remote/callbacks", "callbacks")
            self._listed = {str(cb["subscribe"].get("label")): cb for cb in listed if cb.get("subscribe")}
        return self._listed

    def _callback_id(self, label: str) -> str:
        if label not in self._callback_ids:
            recorded = self.store.callbacks().get(label)
            if recorded is None:
                raise ReconcilerError(f"callback {label} has no recorded id")
            self._callback_ids[label] = recorded.id
        return self._callback_ids[label]

    def _recorded_status(self, label: str) -> str:
        recorded = self.store.callbacks().get(label)
        return recorded.config.status if recorded else spec.CALLBACK_RUNNING

    def _journaled(self, change: Change, method: str, path: str, body: Any) -> Any:
        key = f"{change.key or change.address}:{method}:{path}:{time.time_ns()}"
        sealed = _sealed(change.request.body)
        self.store.journal_start(
            JournalEntry(
                key, change.address, None, change.callback, None, method, {"path": path, "body": sealed}, change.after
            )
        )
        try:
            answer = self.api.put(path, body) if method == "PUT" else self.api.post(path, body)
        except (ApiError, UnknownOutcome) as exc:
            self.store.journal_update(key, "Failed", failure_cause=str(exc))
            raise
        self.store.journal_update(key, "Done")
        self.store.add_history(change.address, change.action, f"{method} {path}")
        return answer

    def _delete_callback(self, change: Change) -> Outcome:
        label = change.callback or change.address.split(".", 1)[1]
        pending = [e for e in self.store.journal(pending_only=True) if e.callback == label and e.vin]
        if pending:
            return Outcome(change.address, SKIPPED, f"{len(pending)} action(s) still pending on it")
        cb_id = self._callback_id(label)
        path = f"{self.fleet_path}/remote/callbacks/{cb_id}"
        key = f"{change.address}:DELETE:{time.time_ns()}"
        self.store.journal_start(JournalEntry(key, change.address, None, label, None, "DELETE", {"path": path}, None))
        try:
            self.api.delete(path)
        except NotFoundError:
            pass  # already gone
        except _FATAL:
            raise
        except ApiError as exc:
            self.store.journal_update(key, "Failed", failure_cause=str(exc))
            return Outcome(change.address, FAILED, str(exc))
        self.store.journal_update(key, "Done")
        self.store.forget_callback(label)
        self.store.add_history(change.address, "delete", cb_id)
        return Outcome(change.address, CONFIRMED, f"deleted {cb_id}")

    # vehicles

    def _vehicle_changes(self, changes: list[Change], failed_callbacks: set[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        ready = []
        for change in changes:
            if change.callback in failed_callbacks:
                outcomes.append(self._report(Outcome(change.address, SKIPPED, f"callback {change.callback} failed")))
            else:
                ready.append(change)
        vids, unknown = self._resolve_vids({c.vin for c in ready if c.vin and "{vid}" in c.request.path})
        chains: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in ready:
            assert change.vin is not None
            if change.vin in unknown:
                outcomes.append(
                    self._report(
                        Outcome(change.address, FAILED, f"VIN {change.vin} is not in fleet {self.desired.fleet}")
                    )
                )
                continue
            chains[(change.vin, change.remote_type or "")].append(change)
        deadline = self._clock() + self.timeout
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="apply") as pool:
            futures = [pool.submit(self._chain, chain, vids, deadline) for chain in chains.values()]
            for future in futures:
                outcomes += future.result()
        return outcomes

    def _resolve_vids(self, vins: set[str]) -> tuple[dict[str, str], set[str]]:
        """VIN → vid for ``vins``: one lookup each, or one listing of the fleet when that is cheaper."""
        if not vins:
            return {}, set()
        found: dict[str, str] = {}
        if len(vins) > 20:
            for vehicle in self.api.pages(f"{self.fleet_path}/vehicles", "vehicles"):
                if vehicle.get("vin") in vins:
                    found[str(vehicle["vin"])] = str(vehicle["id"])
        else:
            for vin in sorted(vins):
                for vehicle in self.api.pages(f"{self.fleet_path}/vehicles", "vehicles", {"vinPrefix": vin}):
                    if vehicle.get("vin") == vin:
                        found[vin] = str(vehicle["id"])
        if found:
            self.store.record_vids(found)
        return found, vins - set(found)

    def _chain(self, chain: list[Change], vids: dict[str, str], deadline: float) -> list[Outcome]:
        """Send a vehicle's changes of one remote type one after the other."""
        outcomes = []
        for index, change in enumerate(chain):
            last = index == len(chain) - 1
            try:
                outcome = self._send(change, vids, deadline, wait=self.wait or not last)
            except _FATAL:
                raise
            except ReconcilerError as exc:
                outcome = Outcome(change.address, FAILED, str(exc))
            outcomes.append(self._report(outcome))
            if outcome.result not in (CONFIRMED, ACCEPTED):
                for rest in chain[index + 1 :]:
                    outcomes.append(self._report(Outcome(rest.address, SKIPPED, f"waits for {change.address}")))
                break
        return outcomes

    def _send(self, change: Change, vids: dict[str, str], deadline: float, *, wait: bool) -> Outcome:
        assert change.vin is not None
        path = change.request.path.replace("{vid}", vids.get(change.vin, "{vid}"))
        if "{cbid}" in path:
            path = path.replace("{cbid}", self._callback_id(change.callback or ""))
        entry = JournalEntry(
            change.key,
            change.address,
            change.vin,
            change.callback,
            change.remote_type,
            "POST",
            {"path": path, "body": _sealed(change.request.body)},
            change.after,
        )
        self.store.journal_start(entry)
        self.store.add_history(change.address, "send", change.summary)
        answer = self._post_once(entry, path, reveal(change.request.body))
        if isinstance(answer, Outcome):
            return answer
        rid = str(answer["remoteActionId"])
        self.store.journal_update(change.key, spec.PENDING_STATUSES[0], remote_action_id=rid)
        if not wait:
            return Outcome(change.address, ACCEPTED, f"accepted as {rid}")
        return self._follow(entry, f"{path}/{rid}", rid, deadline)

    def send_one(self, change: Change, *, vid: str) -> Outcome:
        """Send one action whose path is complete (``reconciler send``), following it like apply does."""
        deadline = self._clock() + self.timeout
        try:
            return self._send(change, {change.vin or "": vid}, deadline, wait=self.wait)
        except _FATAL:
            raise
        except ReconcilerError as exc:
            return Outcome(change.address, FAILED, str(exc))

    def _post_once(self, entry: JournalEntry, path: str, body: Any) -> Any:
        """POST the action; if its answer is lost, look it up by key before sending it again (once)."""
        for attempt in (1, 2):
            try:
                return self.api.post(path, body)
            except UnknownOutcome as exc:
                found = self._find_by_label(path, entry.key)
                if found is not None:
                    self.store.add_history(entry.address, "found", f"{entry.key} was created: {exc}")
                    return found
                if attempt == 2:
                    self.store.journal_update(entry.key, "Sending", failure_cause=str(exc))
                    return Outcome(entry.address, PENDING, f"outcome unknown, checked on the next run: {exc}")
            except _FATAL:
                raise
            except ApiError as exc:
                self.store.journal_update(entry.key, "Rejected", failure_cause=str(exc))
                self.store.add_history(entry.address, "rejected", str(exc))
                return Outcome(entry.address, FAILED, str(exc))
        raise AssertionError("unreachable")

    def _find_by_label(self, path: str, key: str) -> dict[str, Any] | None:
        for action in self.api.pages(path, "remoteActions"):
            if (action.get("remote") or {}).get("label") == key:
                return action
        return None

    def _follow(self, entry: JournalEntry, path: str, rid: str, deadline: float) -> Outcome:
        """Poll the action until it ends or ``deadline``; record what it ends with."""
        polls = 0
        while True:
            action = self.api.get(path)
            status = str(action.get("status", ""))
            cause = str(action.get("failureCause", "") or "")
            self.store.journal_update(entry.key, status, remote_action_id=rid, failure_cause=cause or None)
            if status in _FINAL_OK:
                return self._confirmed(entry, status, rid)
            if status not in PENDING_JOURNAL_STATUSES:
                return self._failed(entry, status, cause or status, rid)
            if self._clock() >= deadline:
                return Outcome(entry.address, PENDING, f"{rid} still {status} at the timeout")
            delay = _POLL_DELAYS[min(polls, len(_POLL_DELAYS) - 1)]
            self._sleep(min(delay, max(0.0, deadline - self._clock())))
            polls += 1

    def _confirmed(self, entry: JournalEntry, status: str, rid: str) -> Outcome:
        record_final(self.store, entry, status, "", rid)
        return Outcome(entry.address, CONFIRMED, f"{status} ({rid})")

    def _failed(self, entry: JournalEntry, status: str, cause: str, rid: str) -> Outcome:
        until = record_final(self.store, entry, status, cause, rid)
        if until:
            return Outcome(entry.address, FAILED, f"{cause} ({rid}); vehicle not retried before {until}")
        return Outcome(entry.address, FAILED, f"{cause} ({rid})")


def record_final(store: StateStore, entry: JournalEntry, status: str, cause: str, rid: str) -> str:
    """Record how an action ended; for apply's polling and the webhook receiver alike.

    Success and AlreadyDone make the action's ``after`` the recorded configuration.
    A failure whose cause is the vehicle's (wake-up budget, privacy, rights,
    battery) backs off every action on that vehicle: the date it ends is returned.
    """
    assert entry.vin is not None
    if status in _FINAL_OK:
        if entry.after is not None:  # a one-off action (horn, lights …) leaves nothing to record
            store.update_vehicle(entry.vin, _applying(entry.address, entry.after))
        store.clear_backoff(addresses.vehicle_prefix(entry.vin))
        store.add_history(entry.address, status, rid)
        return ""
    store.add_history(entry.address, "failed", f"{cause} ({rid})")
    if cause in spec.SLOW_FAILURE_CAUSES:
        until = _backoff_until(cause)
        store.set_backoff(addresses.vehicle_prefix(entry.vin), cause, until)
        return until
    return ""


def _applying(address: str, after: Any) -> Callable[[VehicleConfig], VehicleConfig]:
    return lambda config: apply_after(config, address, after)


def _vid_in(path: str) -> str:
    """The vid in ``/fleets/F/vehicles/{vid}/callbacks/…``."""
    return path.split("/vehicles/", 1)[1].split("/", 1)[0]


def _backoff_until(cause: str) -> str:
    """When a failure that retrying cannot fix soon is worth trying again."""
    now = datetime.now(UTC)
    if cause == "TooManyWakeUpsOverMonth":
        month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return month.isoformat(timespec="seconds")
    return (now + timedelta(hours=6)).isoformat(timespec="seconds")


def _sealed(body: Any) -> Any:
    """``body`` as the journal keeps it: secrets shown as ``(sensitive)``."""
    return json.loads(json.dumps(body, default=json_default))
