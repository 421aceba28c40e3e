"""``reconciler watch``: refresh, plan and apply in a loop, for drift correction.

One JSON line per run and per action goes to stdout. Runs never overlap (the
state lock: a run that finds it held is skipped), start every ``--interval``
give or take ``--jitter``, and stop cleanly on SIGTERM or Ctrl-C after the run
in progress. A vehicle whose actions keep failing is backed off, doubling.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ..core import addresses, durations
from ..core.changes import Plan
from ..core.outcomes import Outcome, Progress
from ..core.vocabulary import NotifyKind, Result
from ..errors import LockHeldError, ReconcilerError
from ..fleetfile import loader
from ..run import notify, pruning
from ..run.interrupts import Interrupts
from ..run.notify import Delivery
from ..run.session import Options, RunResult, apply_fleet, lock_owner, notify_run
from ..service.metrics import Metrics, serving
from ..state.backends import open_store, state_url
from .shell import Shell

_LOGGED = (Result.CONFIRMED, Result.ACCEPTED, Result.PENDING, Result.FAILED, Result.SKIPPED, Result.HELD)
REPEATED = 3  # failed runs in a row before a vehicle is backed off
RETRIED = "watch tries again on its next run"
MAX_BACKOFF = timedelta(hours=24)


def parse_interval(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``1h`` or ``1d``."""
    try:
        value = durations.seconds(text)
    except durations.FormatError as exc:
        raise ReconcilerError(f"--interval {text!r}: write a duration such as 30s, 15m or 1h ({exc})") from None
    if value <= 0:
        raise ReconcilerError("--interval must be more than zero")
    return value


class JsonLines(Progress):
    """One JSON object a line, flushed at once, for log collectors."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()

    def log(self, **fields: Any) -> None:
        with self.lock:
            self.out.write(json.dumps({"ts": datetime.now(UTC).isoformat(timespec="seconds"), **fields}) + "\n")
            self.out.flush()

    def done(self, outcome: Outcome) -> None:
        self.log(event="action", address=outcome.address, result=outcome.result, detail=outcome.detail)


def run(
    shell: Shell,
    fleet_file: str,
    *,
    interval: float,
    jitter: float,
    once: bool,
    options: Options,
    stop: threading.Event | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    prune_after: float | None = None,
) -> int:
    """``metrics_port``: serve Prometheus metrics there (0 picks a free port, logged) while watching.

    ``prune_after``: once a day (after the first run, then after a run a day
    later), drop finished actions and history older than that many seconds.
    """
    stop = stop or threading.Event()
    logger = JsonLines(shell.stdout)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    failures: Counter[str] = Counter()
    # One rollout wave a run, at most; a refresh that fails is tried again on the next run.
    options = replace(options, auto_approve=True, one_wave=True, after_failed_refresh=RETRIED)
    code = 0
    pruned_at: float | None = None
    with serving(metrics_host, metrics_port, lambda url: logger.log(event="metrics", url=url)) as metrics:
        while True:
            code, opens_at = _one_run(
                fleet_file, options, shell.env, logger, shell.stderr, failures, interval, stop, metrics
            )
            due = prune_after is not None and (pruned_at is None or time.monotonic() - pruned_at >= PRUNE_EVERY)
            if due and _prune(fleet_file, shell.env, prune_after or 0.0, logger):
                pruned_at = time.monotonic()
            if once or stop.is_set():
                break
            wait = interval * (1 + random.uniform(-jitter, jitter))
            if opens_at:  # the change window is closed: sleep until it opens (urgent changes still go each interval)
                until = (datetime.fromisoformat(opens_at) - datetime.now(UTC)).total_seconds()
                wait = min(wait, max(1.0, until))
            logger.log(event="sleep", seconds=round(wait, 1))
            if stop.wait(wait):
                break
    logger.log(event="stop", code=code)
    return code if once else 0


PRUNE_EVERY = 86400.0  # watch --prune-after prunes once a day


def _prune(fleet_file: str, env: Mapping[str, str], older_than: float, logger: JsonLines) -> bool:
    """Prune the state between runs (its lock taken at once, or skipped until the next run); True when done."""
    try:
        store = open_store(state_url(fleet_file, env))
        try:
            lock_id = store.acquire_lock(lock_owner("reconciler watch (prune)"))
            try:
                pruned, cutoff = pruning.prune(store, older_than, datetime.now(UTC))
            finally:
                store.release_lock(lock_id)
        finally:
            store.close()
    except ReconcilerError as exc:
        logger.log(event="prune", error=str(exc))
        return False
    logger.log(
        event="prune",
        before=cutoff,
        actions=pruned.actions,
        statuses=pruned.events,
        history=pruned.history,
        kept=pruned.kept,
    )
    return True


def _one_run(
    fleet_file: str,
    options: Options,
    env: Mapping[str, str],
    logger: JsonLines,
    stderr: TextIO,
    failures: Counter[str],
    interval: float,
    stop: threading.Event,
    metrics: Metrics | None = None,
) -> tuple[int, str]:
    """One run: its exit code, and when the change window opens if it is closed."""
    started = time.monotonic()
    planned: list[Plan] = []

    def review(plan: Plan) -> bool:
        planned.append(plan)
        return True

    try:
        result = apply_fleet(
            fleet_file,
            None,
            options,
            env=env,
            review=review,
            progress=logger,
            stderr=stderr,
            owner="reconciler watch",
            interrupts=Interrupts(stderr, stop=stop, quit_when_idle=False),  # SIGTERM stops the sending at once
        )
    except LockHeldError as exc:
        logger.log(event="run", skipped="state locked", detail=str(exc), code=3)
        if metrics is not None:
            metrics.run_ended(code=3, at=time.time())
        return 3, ""
    except ReconcilerError as exc:
        logger.log(event="run", error=str(exc), code=exc.exit_code)
        if metrics is not None:
            metrics.run_ended(code=exc.exit_code, at=time.time())
        _told(_notify_error(fleet_file, env, exc, stop), logger, metrics)
        return exc.exit_code, ""
    counts = Counter(o.result for o in result.outcomes)
    plan = planned[0] if planned else None
    logger.log(
        event="run",
        code=result.code,
        seconds=round(time.monotonic() - started, 1),
        changes=len(plan.changes) if plan else 0,
        drift=len(plan.drift) if plan else 0,
        adopted=len(plan.adoptions) if plan else 0,
        **{str(name): counts.get(name, 0) for name in _LOGGED},
        **_brakes(result),
    )
    _back_off_repeated_failures(fleet_file, env, result.outcomes, failures, interval, logger)
    if metrics is not None:
        metrics.run_ended(
            code=result.code,
            at=time.time(),
            outcomes=result.outcomes,
            changes=result.changes,
            requests=result.requests,
            drift=len({d.address for d in result.drift}),
            pending=result.pending_actions,
            halted=bool(result.halted),
        )
    _told(notify_run(result, stop), logger, metrics)
    return result.code, result.window_closed if result.window_closed != "later" else ""


def _notify_error(
    fleet_file: str, env: Mapping[str, str], exc: ReconcilerError, stop: threading.Event
) -> list[Delivery]:
    """A run that ended in an error is a ``failed`` event (address ``run``), when the fleet file can say where."""
    try:
        desired = loader.read(fleet_file, env)
    except ReconcilerError:
        return []  # the file itself is what is wrong: no notify: to read
    found = [notify.Event(NotifyKind.FAILED, "run", str(exc))]
    return notify.send(desired.notify, desired.fleet, exc.exit_code, found, stop=stop)


def _told(deliveries: list[Delivery], logger: JsonLines, metrics: Metrics | None) -> None:
    """A log line per notification posted, and the count of them delivered and failed."""
    for delivery in deliveries:
        logger.log(event="notify", url=delivery.target, events=delivery.events, error=delivery.error or None)
    if metrics is not None:
        metrics.notified(sum(1 for d in deliveries if not d.error), sum(1 for d in deliveries if d.error))


def _brakes(result: RunResult) -> dict[str, object]:
    """The brakes' state for the run's log line: rollout wave, halt, closed window."""
    fields: dict[str, object] = {}
    view = result.plan.rollout if result.plan is not None else None
    if view is not None:
        fields["rollout"] = {"state": view.state, "wave": view.wave, "waves": view.waves, "held": view.held}
    if result.halted:
        fields["halted"] = result.halted
    if result.window_closed:
        fields["window_opens_at"] = result.window_closed
    if result.stale:
        fields["stale"] = result.stale
    return fields


def _back_off_repeated_failures(
    fleet_file: str,
    env: Mapping[str, str],
    outcomes: list[Outcome],
    failures: Counter[str],
    interval: float,
    logger: JsonLines,
) -> None:
    """A vehicle failing run after run waits twice the interval, then four times … (a day at most)."""
    failed = {addresses.vin_of(o.address) for o in outcomes if o.result == Result.FAILED}
    succeeded = {addresses.vin_of(o.address) for o in outcomes if o.result == Result.CONFIRMED}
    for vin in succeeded - failed:
        failures.pop(vin or "", None)
    tired = []
    for vin in failed - {None}:
        failures[vin or ""] += 1
        if failures[vin or ""] >= REPEATED:
            tired.append(vin or "")
    if not tired:
        return
    store = open_store(state_url(fleet_file, env))
    try:
        for vin in tired:
            wait = min(MAX_BACKOFF, timedelta(seconds=interval * 2 ** (failures[vin] - REPEATED + 1)))
            until = (datetime.now(UTC) + wait).isoformat(timespec="seconds")
            store.set_backoff(addresses.vehicle_prefix(vin), "RepeatedFailures", until)
            store.add_history(addresses.vehicle_prefix(vin), "backed off", f"{failures[vin]} failed runs in a row")
            logger.log(event="backoff", vehicle=vin, until=until, failed_runs=failures[vin])
    finally:
        store.close()
