"""Apply: carry out a plan's changes through the API, recording everything (DESIGN §6 and §7).

Order: callbacks first (create, update, pause/resume), then remote actions —
in parallel across vehicles, a vehicle's changes back to back (``actions``) —
then callback deletions once nothing is pending on them.

Every mutating call is journaled before it is sent and its result written
right after, so a crash at any instant leaves a state the next run settles
(``settle``) before planning: an action whose answer was lost is looked up by
the key in its label, never sent twice. Once the run's ``stop`` is set
(Ctrl-C, SIGTERM), nothing more is sent and what is in flight stays pending.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..api.client import FleetApi
from ..core import addresses
from ..core.changes import Change, Plan
from ..core.model import Desired
from ..core.outcomes import Outcome, Progress
from ..core.sensitive import seal_callback
from ..core.vocabulary import Action, Result
from ..errors import Cancelled
from ..state.base import StateStore
from .actions import Gate, RemoteActions
from .callbacks import CallbackSteps
from .context import RunContext
from .ending import applying
from .wakeups import WakeupLedger


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
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
        gate: Gate | None = None,
        wakeups: WakeupLedger | None = None,
        deadline: float | None = None,
        listening: bool = False,
        poll_after: float = 60.0,
    ) -> None:
        """``gate`` is asked before each remote action is sent (the rollout's maxPerMinute);
        ``wakeups`` counts (and holds) wake-ups, by default under the fleet file's budget.

        ``timeout`` bounds each action's wait after it was sent, ``deadline``
        (on ``clock``) the whole run. ``listening``: a webhook receiver records
        outcomes into ``store``; an action is polled only after ``poll_after``
        seconds without news of it.
        """
        self.ctx = RunContext(
            api,
            store,
            desired,
            fingerprint_key,
            progress or Progress(),
            wait,
            timeout,
            stop or api.cancel,
            clock,
            sleep,
            deadline,
            listening,
            poll_after,
        )
        self.parallelism = max(1, parallelism)
        self.callbacks = CallbackSteps(self.ctx)
        self.actions = RemoteActions(
            self.ctx, self.callbacks.id_of, gate, wakeups or WakeupLedger(store, desired.wakeups)
        )

    # settling what earlier runs left pending

    def settle(self) -> list[Outcome]:
        """Find out what became of every journaled action still pending (an earlier run's); record it.

        They are followed like this run's own: until they end or ``timeout``
        passes (with ``wait``; counted from now), in parallel across vehicles;
        without ``wait``, each is looked at once.
        """
        ctx = self.ctx
        inherited = []
        for entry in ctx.store.journal(pending_only=True):
            if entry.vin is None:
                # A callback call cut short: the label lookup before any create adopts it.
                ctx.store.journal_update(entry.key, "Unknown")
                continue
            inherited.append(entry)
        if not inherited or ctx.stop.is_set():
            return []
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="settle") as pool:
            return list(pool.map(self.actions.settle, inherited))

    # the run

    def run(self, plan: Plan) -> list[Outcome]:
        """Carry out what of ``plan`` goes now (its changes no brake holds); one outcome per change."""
        ctx = self.ctx
        self._record_adoptions(plan)
        going = plan.going
        callbacks = [c for c in going if c.vin is None and c.action != Action.DELETE]
        vehicles = [c for c in going if c.vin is not None]
        deletions = [c for c in going if c.action == Action.DELETE]
        ctx.progress.start(len(going))
        outcomes: list[Outcome] = []
        failed_callbacks: set[str] = set()
        for change in callbacks:
            outcome = self._unless_stopped(change) or self.callbacks.carry_out(change)
            if outcome.result != Result.CONFIRMED:
                failed_callbacks.add(change.callback or "")
            outcomes.append(ctx.report(outcome))
        outcomes += self._vehicle_changes(vehicles, failed_callbacks)
        for change in deletions:
            outcomes.append(ctx.report(self._unless_stopped(change) or self.callbacks.delete(change)))
        ctx.progress.finish()
        return outcomes

    def send_one(self, change: Change, *, vid: str) -> Outcome:
        """One action whose path is complete (``reconciler send``), followed like apply's."""
        return self.actions.send_one(change, vid=vid)

    def _unless_stopped(self, change: Change) -> Outcome | None:
        if self.ctx.stop.is_set():
            return Outcome(change.address, Result.SKIPPED, "not sent: the run was interrupted")
        return None

    def _record_adoptions(self, plan: Plan) -> None:
        """Record what refresh found already in place, and the vids it learnt; nothing is sent."""
        store = self.ctx.store
        vids = {c.vin: _vid_in(c.request.path) for c in plan.changes if c.vin and "{vid}" not in c.request.path}
        for adoption in plan.adoptions:
            vin = addresses.vin_of(adoption.address)
            if vin is None:
                label = adoption.address.split(".", 1)[1]
                self.callbacks.ids[label] = adoption.identity
                store.record_callback(
                    label, adoption.identity, seal_callback(self.ctx.desired.callbacks[label], self.ctx.fingerprint_key)
                )
            else:
                if adoption.identity:
                    vids[vin] = adoption.identity
                store.update_vehicle(vin, applying(adoption.address, adoption.after))
            store.add_history(adoption.address, "adopted", "already in place; recorded, nothing sent")
        if vids:
            store.record_vids({vin: vid for vin, vid in vids.items() if vid})

    # vehicles

    def _vehicle_changes(self, changes: list[Change], failed_callbacks: set[str]) -> list[Outcome]:
        ctx = self.ctx
        outcomes: list[Outcome] = []
        ready = []
        for change in changes:
            if change.callback in failed_callbacks:
                skipped = Outcome(
                    change.address, Result.SKIPPED, f"callback {change.callback} failed", change.remote_type or ""
                )
                outcomes.append(ctx.report(skipped))
            else:
                ready.append(change)
        if ready and ctx.stop.is_set():
            return outcomes + [ctx.report(self._unless_stopped(c) or Outcome(c.address, Result.SKIPPED)) for c in ready]
        try:
            vids, unknown = self._resolve_vids({c.vin for c in ready if c.vin and "{vid}" in c.request.path})
        except Cancelled:
            return outcomes + [ctx.report(self._unless_stopped(c) or Outcome(c.address, Result.SKIPPED)) for c in ready]
        by_vehicle: dict[str, list[Change]] = defaultdict(list)
        for change in ready:
            assert change.vin is not None
            if change.vin in unknown:
                missing = Outcome(
                    change.address,
                    Result.FAILED,
                    f"VIN {change.vin} is not in fleet {ctx.desired.fleet}",
                    change.remote_type or "",
                )
                outcomes.append(ctx.report(missing))
                continue
            by_vehicle[change.vin].append(change)
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="apply") as pool:
            futures = [pool.submit(self.actions.vehicle, group, vids) for group in by_vehicle.values()]
            for future in futures:
                outcomes += future.result()
        return outcomes

    def _resolve_vids(self, vins: set[str]) -> tuple[dict[str, str], set[str]]:
        """VIN → vid for ``vins``: one lookup each, or one listing of the fleet when that is cheaper."""
        ctx = self.ctx
        if not vins:
            return {}, set()
        found: dict[str, str] = {}
        if len(vins) > 20:
            for vehicle in ctx.api.pages(f"{ctx.fleet_api}/vehicles", "vehicles"):
                if vehicle.get("vin") in vins:
                    found[str(vehicle["vin"])] = str(vehicle["id"])
        else:
            for vin in sorted(vins):
                for vehicle in ctx.api.pages(f"{ctx.fleet_api}/vehicles", "vehicles", {"vinPrefix": vin}):
                    if vehicle.get("vin") == vin:
                        found[vin] = str(vehicle["id"])
        if found:
            ctx.store.record_vids(found)
        return found, vins - set(found)


def _vid_in(path: str) -> str:
    """The vid in ``/fleets/F/vehicles/{vid}/callbacks/…``."""
    return path.split("/vehicles/", 1)[1].split("/", 1)[0]
