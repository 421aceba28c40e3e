"""``reconciler watch``: refresh, plan and apply in a loop, for drift correction.

One log line per run and per action goes to stdout (JSON, or text), and no
other line anywhere. Runs never overlap, across processes too (the state lock:
a run that finds it held is skipped; with several watchers on one PostgreSQL
state the next interval takes over from a holder that died, and a run that lost
the lock sends nothing more — the journal is fenced by it). Runs start every
``--interval`` give or take ``--jitter``; SIGTERM or Ctrl-C stops the sending at
once, records what is in flight, and exits 0. A vehicle whose actions keep
failing is backed off, doubling. A run that fails (the state unreachable, the
file broken) is logged, and the next interval tries again.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

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
from ..service.logs import EventLog, Lines, capturing, refused_to_start
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


class _Actions(Progress):
    """An ``action`` line as each action ends (a failure at level warning)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log

    def done(self, outcome: Outcome) -> None:
        level = "warning" if outcome.result == Result.FAILED else "info"
        self.log.log("action", level, address=outcome.address, result=outcome.result, detail=outcome.detail)


class _Readiness:
    """Ready when the fleet file loads (read again only once it changed) and the state answers."""

    def __init__(self, fleet_file: str, env: Mapping[str, str]) -> None:
        self.fleet_file = fleet_file
        self.env = env
        self._seen: tuple[int, int] | None = None
        self._problem = ""
        self.fleet: str | None = None

    def __call__(self) -> tuple[bool, str]:
        try:
            stat = Path(self.fleet_file).stat()
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError as exc:
            return False, f"cannot read {self.fleet_file}: {exc.strerror}"
        if key != self._seen:
            try:
                self.fleet = loader.read(self.fleet_file, self.env).fleet
                self._problem = ""
            except ReconcilerError as exc:
                self._problem = str(exc)
            self._seen = key
        if self._problem:
            return False, self._problem
        try:
            store = open_store(state_url(self.fleet_file, self.env), readonly=True, fleet=self.fleet or "")
            try:
                store.ping()
            finally:
                store.close()
        except ReconcilerError as exc:
            return False, str(exc)
        return True, ""


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
    log_format: str = "json",
) -> int:
    """``metrics_port``: serve Prometheus metrics there (0 picks a free port, logged) while watching,
    with ``/healthz`` and ``/readyz``.

    ``prune_after``: once a day (after the first run, then after a run a day
    later), drop finished actions and history older than that many seconds.
    """
    stop = stop or threading.Event()
    ready = _Readiness(fleet_file, shell.env)
    ready()  # the fleet id, for every line (None until the file loads)
    # Every line carries the run it belongs to: the coming run's id before it, the last one's after it.
    logger = EventLog(shell.stdout, log_format, fleet=ready.fleet, run=_run_id())
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, _: _stopping(stop, signum))
    failures: Counter[str] = Counter()
    # One rollout wave a run, at most; a refresh that fails is tried again on the next run.
    options = replace(options, auto_approve=True, one_wave=True, after_failed_refresh=RETRIED)
    code = 0
    pruned_at: float | None = None
    try:
        with (
            capturing(logger),
            serving(metrics_host, metrics_port, lambda url: logger.info("metrics", url=url), ready) as metrics,
        ):
            logger.info("start", interval=interval, once=once)
            first = True
            while True:
                if not first:
                    logger.bind(run=_run_id())
                first = False
                code, opens_at = _one_run(fleet_file, options, shell.env, logger, failures, interval, stop, metrics)
                due = prune_after is not None and (pruned_at is None or time.monotonic() - pruned_at >= PRUNE_EVERY)
                if due and _prune(fleet_file, shell.env, prune_after or 0.0, logger):
                    pruned_at = time.monotonic()
                if once or stop.is_set():
                    break
                wait = interval * (1 + random.uniform(-jitter, jitter))
                if opens_at:  # the window is closed: sleep until it opens (urgent changes still go each interval)
                    until = (datetime.fromisoformat(opens_at) - datetime.now(UTC)).total_seconds()
                    wait = min(wait, max(1.0, until))
                logger.info("sleep", seconds=round(wait, 1))
                if stop.wait(wait):
                    break
            if _STOPPED_BY:
                logger.info("stopping", signal=signal.Signals(_STOPPED_BY[-1]).name)
    except ReconcilerError as exc:  # before the first run: the metrics port cannot be served
        return refused_to_start(shell.stderr, log_format, ready.fleet, exc)
    logger.info("stop", code=code)
    return code if once else 0


def _run_id() -> str:
    return uuid.uuid4().hex[:12]


_STOPPED_BY: list[int] = []  # the signal that stopped watch (logged once the loop ends: a handler never logs)


def _stopping(stop: threading.Event, signum: int) -> None:
    """SIGTERM or Ctrl-C: nothing more is sent, what is in flight is recorded, and watch exits 0."""
    _STOPPED_BY.append(signum)
    stop.set()


PRUNE_EVERY = 86400.0  # watch --prune-after prunes once a day


def _prune(fleet_file: str, env: Mapping[str, str], older_than: float, logger: EventLog) -> bool:
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
        logger.warning("prune", error=str(exc))
        return False
    logger.info(
        "prune",
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
    logger: EventLog,
    failures: Counter[str],
    interval: float,
    stop: threading.Event,
    metrics: Metrics | None = None,
) -> tuple[int, str]:
    """One run: its exit code, and when the change window opens if it is closed."""
    started = time.monotonic()
    planned: list[Plan] = []
    stderr: TextIO = Lines(logger)  # type: ignore[assignment]  # what apply tells a person: a "note" line each

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
            progress=_Actions(logger),
            stderr=stderr,
            owner="reconciler watch",
            interrupts=Interrupts(stderr, stop=stop, quit_when_idle=False),  # SIGTERM stops the sending at once
        )
    except LockHeldError as exc:
        logger.info("run", skipped="state locked", detail=str(exc), code=3)
        if metrics is not None:
            metrics.run_ended(code=3, at=time.time(), seconds=time.monotonic() - started)
        return 3, ""
    except ReconcilerError as exc:
        logger.error("run", error=str(exc), code=exc.exit_code, seconds=round(time.monotonic() - started, 1))
        if metrics is not None:
            metrics.run_ended(code=exc.exit_code, at=time.time(), seconds=time.monotonic() - started)
        _told(_notify_error(fleet_file, env, exc, stop), logger, metrics)
        return exc.exit_code, ""
    if result.fleet:
        logger.bind(fleet=result.fleet)
    counts = Counter(o.result for o in result.outcomes)
    plan = planned[0] if planned else None
    logger.log(
        "run",
        "info" if result.code == 0 else "warning",
        code=result.code,
        seconds=round(time.monotonic() - started, 1),
        changes=len(plan.changes) if plan else 0,
        drift=len(plan.drift) if plan else 0,
        adopted=len(plan.adoptions) if plan else 0,
        **{str(name): counts.get(name, 0) for name in _LOGGED},
        **_brakes(result),
    )
    try:
        _back_off_repeated_failures(fleet_file, env, result.outcomes, failures, interval, logger)
    except ReconcilerError as exc:  # the state went away after the run: the next run backs them off
        logger.warning("backoff", error=str(exc))
    if metrics is not None:
        metrics.run_ended(
            code=result.code,
            at=time.time(),
            seconds=time.monotonic() - started,
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


def _told(deliveries: list[Delivery], logger: EventLog, metrics: Metrics | None) -> None:
    """A log line per notification posted, and the count of them delivered and failed."""
    for delivery in deliveries:
        level = "warning" if delivery.error else "info"
        logger.log("notify", level, url=delivery.target, events=delivery.events, error=delivery.error or None)
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
    logger: EventLog,
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
            logger.warning("backoff", vehicle=vin, until=until, failed_runs=failures[vin])
    finally:
        store.close()
