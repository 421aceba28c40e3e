"""An apply, from the lock to the last wave: what ``reconciler apply`` and ``watch`` both carry out.

Lock the state, settle what earlier runs left pending, refresh, plan, stage
the plan under the brakes, have it reviewed, execute it, judge the rollout's
wave, and — waiting for outcomes — go on wave after wave. The command line's
side (approval, progress, the report) stays with the commands.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from ..api import observe
from ..api.client import FleetApi
from ..core import addresses, durations, rollout
from ..core.changes import FORMAT_VERSION, Drift, Plan
from ..core.model import Desired, Notify, Recorded, Rollout
from ..core.outcomes import HELD_RESULTS, OK_RESULTS, Outcome, Progress
from ..core.targets import check_known
from ..core.vocabulary import Action, Result, RolloutState, When
from ..errors import ReconcilerError, StalePlanError
from ..fleetfile import loader
from ..render.json_plan import change_document, dumps, plan_document
from ..state.backends import open_store, state_url
from ..state.base import HEARTBEAT_FRESH, RECEIVER, StateStore
from . import connection, gcpause, notify, rollouts, saved_plan
from .actions import Gate
from .context import Polls
from .executor import Executor
from .interrupts import Interrupts
from .sendrate import SendRate

DEFAULT_FLEET_FILE = "fleet.yaml"


@dataclass(frozen=True)
class Options:
    auto_approve: bool = False
    wait: bool = True
    timeout: float = 300.0
    parallelism: int = 32
    lock_timeout: float = 0.0
    targets: tuple[str, ...] = ()
    refresh: bool = True
    refresh_capabilities: bool = False
    continue_rollout: bool = False
    ignore_windows: bool = False
    one_wave: bool = False  # watch: at most one rollout wave a run (apply --no-wait too)
    notify: bool = True  # post the run's events to the fleet file's notify: targets
    after_failed_refresh: str = connection.NO_REFRESH  # what to do when the refresh fails, in the caller's words
    deadline: float | None = None  # seconds the whole run may take (--deadline); None: no bound
    poll_after: float = 60.0  # with a receiver running: poll an action only after this long without news


@dataclass(frozen=True)
class RunResult:
    """What one apply did: the plan it carried out and the outcome of every address."""

    code: int
    plan: Plan | None
    outcomes: list[Outcome]
    halted: str = ""  # the rollout's halt (exit 5)
    window_closed: str = ""  # when the change window opens, if it held changes back (exit 3)
    drift: tuple[Drift, ...] = ()  # what the run's refresh found changed outside reconciler
    changes: Mapping[Action, int] = field(default_factory=dict)  # changes sent, by action (create, send …)
    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)  # API answers by (method, status)
    pending_actions: int = 0  # journaled remote actions whose outcome is not known yet, after the run
    fleet: str = ""
    notify: tuple[Notify, ...] = ()  # the fleet file's notify: targets
    stale: str = ""  # why apply stopped before a later wave (exit 3): it was not what the approved plan listed
    polls: Polls = field(default_factory=Polls)  # how outcomes were learnt: status polls, receiver
    listening: str = ""  # where the webhook receiver runs, when apply took outcomes from it


def notify_run(outcome: RunResult, stop: threading.Event | None = None) -> list[notify.Delivery]:
    """Post the run's events to the fleet file's ``notify:`` targets that ask for them (``stop`` ends it)."""
    if not outcome.notify:
        return []
    found = notify.events(outcome.outcomes, outcome.drift, outcome.halted)
    return notify.send(outcome.notify, outcome.fleet, outcome.code, found, stop=stop)


def apply_fleet(
    fleet_file: str,
    saved: dict[str, Any] | None,
    options: Options,
    *,
    env: Mapping[str, str],
    review: Callable[[Plan], bool],
    progress: Progress,
    stderr: TextIO,
    owner: str = "reconciler apply",
    interrupts: Interrupts | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    told: observe.Told | None = None,
) -> RunResult:
    """Lock, settle, refresh, plan, stage (brakes), have ``review`` approve, execute; unlock.

    With ``saved`` (a plan file's content) the plan computed now must be the saved one.
    ``interrupts`` (its ``stop``) ends the sending early; what is in flight stays pending.
    ``told`` hears how each refresh goes (a progress line).
    With a rollout and waiting for outcomes, apply goes on wave after wave (baking
    between them) while they stay within their failure budget.
    """
    interrupts = interrupts or Interrupts(stderr, quit_when_idle=False)
    deadline = time.monotonic() + options.deadline if options.deadline is not None else None
    targets = options.targets
    if saved is not None:
        fleet_file = saved["source"]["file"]
        targets = tuple(saved.get("targets", ()))
        # Recomputed the way it was made, to compare like with like.
        options = replace(options, refresh=bool(saved.get("refreshed")))
    with gcpause.paused():
        desired = loader.read(fleet_file, env)
    url = state_url(fleet_file, env)
    store = open_store(url, fleet=desired.fleet)
    passes: list[_Pass] = []
    listening, polls = "", Polls()
    try:
        lock_id = store.acquire_lock(lock_owner(owner), options.lock_timeout)
        try:
            recorded = store.read()
            check_known(targets, desired, recorded)
            if saved is not None:
                recorded = _check_fresh(saved, recorded, store)
            store.initialize(recorded)
            listening = receiver_alive(store, clock())
            if listening:
                stderr.write(
                    f"Outcomes come from the webhook receiver ({listening}); an action without news for "
                    f"{durations.describe(options.poll_after)} is polled.\n"
                )
            # A 429 whose Retry-After outlasts the run's timeout is a spent quota: it stops all sending at once.
            outlasts = max(1.0, options.timeout)
            with connection.connect(
                desired, url, fleet_file, env, cancel=interrupts.stop, max_retry_after=outlasts
            ) as api:
                executor = Executor(
                    api,
                    store,
                    desired,
                    fingerprint_key=recorded.fingerprint_key,
                    parallelism=options.parallelism,
                    wait=options.wait,
                    timeout=options.timeout,
                    progress=progress,
                    gate=_gate(desired, interrupts),
                    deadline=deadline,
                    listening=bool(listening),
                    poll_after=options.poll_after,
                )
                polls = executor.ctx.polls
                run = _Run(store, api, executor, desired, options, targets, saved, review, interrupts, clock, told)
                approved: _Approved | None = _Approved.of_saved(saved) if saved is not None else None
                while True:
                    first = not passes
                    one = _one_pass(run, first, approved)
                    if one is None:
                        return RunResult(1, passes[-1].plan if passes else None, [])
                    if approved is None:
                        approved = _Approved.of_plan(one.plan)  # what the reviewer saw is what it may send
                    passes.append(one)
                    if one.stale or not _next_wave(run, one, stderr):
                        break
                if any(p.plan.going for p in passes):
                    stderr.write(f"API: {api.usage()}\n")
                requests = dict(api.answers)
            pending = store.count_pending()
        finally:
            store.release_lock(lock_id)
    finally:
        store.close()
    last = passes[-1]
    earlier = [o for p in passes[:-1] for o in p.settled + p.sent]
    outcomes = earlier + _one_per_address(last.settled, last.sent, last.held_outcomes())
    code = 3 if last.stale else _exit_code(outcomes, interrupts, halted=last.halted, window_closed=last.window_closed)
    changes = Counter(c.action for p in passes for c in p.plan.going)
    drift = passes[0].plan.drift
    return RunResult(
        code,
        last.plan,
        outcomes,
        last.halted,
        last.window_closed,
        drift,
        dict(changes),
        requests,
        pending,
        desired.fleet,
        desired.notify,
        last.stale,
        polls,
        listening,
    )


@dataclass
class _Pass:
    """One wave's worth of an apply: what was planned and sent, and where the brakes stood."""

    plan: Plan
    settled: list[Outcome]
    sent: list[Outcome]
    halted: str = ""  # the halt, when the rollout is halted
    window_closed: str = ""  # when it opens, when the window is closed and changes wait
    rollout: Rollout | None = None
    stale: str = ""  # why this wave was not sent: it is not what the approved plan listed

    def held_outcomes(self) -> list[Outcome]:
        held = [
            Outcome(
                h.address,
                HELD_RESULTS.get(h.kind, Result.PENDING),
                h.reason,
                addresses.remote_type_of(h.address),
                h.kind,
            )
            for h in self.plan.held
        ]
        cannot = [
            Outcome(c.address, Result.CANNOT, c.reason, addresses.remote_type_of(c.address))
            for c in self.plan.cannot_apply
        ]
        return held + cannot


@dataclass(frozen=True)
class _Run:
    """What every pass of one apply works with."""

    store: StateStore
    api: FleetApi
    executor: Executor
    desired: Desired
    options: Options
    targets: tuple[str, ...]
    saved: dict[str, Any] | None
    review: Callable[[Plan], bool]
    interrupts: Interrupts
    clock: Callable[[], datetime]
    told: observe.Told | None = None
    sent: set[str] = field(default_factory=set)  # the addresses this apply has sent to: each goes once a run


def _one_pass(run: _Run, first: bool, approved: _Approved | None) -> _Pass | None:
    """Settle, refresh, plan, stage and send what goes now; None when the reviewer says no.

    The first pass is reviewed (or must be the saved plan); a later one —
    the next wave — sends nothing unless what it would send is what the
    approved plan listed for it.
    """
    store, executor, desired, options, targets = run.store, run.executor, run.desired, run.options, run.targets
    settled = [o for o in executor.settle() if o.result != Result.SKIPPED]
    recorded = store.read()
    now = run.clock()
    stamp = now.isoformat(timespec="seconds")
    looking = connection.Looking(targets, stamp, options.refresh_capabilities, options.parallelism, told=run.told)
    observed = None
    if options.refresh:
        observed = connection.refresh_for_apply(run.api, desired, recorded, looking, then=options.after_failed_refresh)
        if first and observed is not None:
            check_known(targets, desired, recorded, observed.listing)
    staged = rollout.schedule(
        desired,
        recorded,
        observed,
        rollouts.wave_entries(store, recorded.rollout),
        now,
        targets=targets,
        continue_rollout=options.continue_rollout and first,
        ignore_windows=options.ignore_windows,
    )
    result = staged.plan
    if not first and any(c.address in run.sent for c in result.going):
        # What an earlier wave of this apply sent is not sent again, whatever its outcome: a failure
        # waits for the next run (its outcome is reported already), as the approved plan listed it once.
        kept = tuple(c for c in result.changes if not (c.schedule.now and c.address in run.sent))
        result = replace(result, changes=kept)
    if first and run.saved is not None:
        _check_same(run.saved, result)
    if first and not run.review(result):
        return None
    if not first and approved is not None:
        stale = approved.unlisted(result)
        if stale:
            return _Pass(result, settled, [], stale=stale)
    connection.record_observed(store, observed)
    if staged.rollout is not None and staged.rollout != recorded.rollout:
        rollouts.save(store, recorded.rollout, staged.rollout)
    if result.going:
        store.commit_serial()
    run.interrupts.sending = True
    sent = executor.run(result)  # what goes now; with nothing, records what refresh found in place
    run.sent.update(c.address for c in result.going)
    after = staged.rollout
    if not targets and after is not None and desired.rollout is not None and after.state == RolloutState.RUNNING:
        judgement = rollout.judgement_of(after, rollouts.wave_entries(store, after), result.going)
        judged = rollout.progress(after, judgement, desired.rollout, run.clock(), advance=False)
        if judged != after:
            rollouts.save(store, after, judged)
            after = judged
    halted = after.halt if after is not None and after.state == RolloutState.HALTED else ""
    closed = ""
    if staged.window_closed and any(h.kind == When.WINDOW for h in result.held):
        closed = (result.window.opens_at if result.window else "") or "later"
    return _Pass(result, settled, sent, halted, closed, after)


@dataclass(frozen=True)
class _Approved:
    """The plan a reviewer approved (shown, or saved): what each later wave may send, by content.

    A change is known by what it does — address, action, before and after, its
    body but for the key in its label (which the serial, bumped by every wave,
    changes) — not by the vehicle or callback ids its path resolves since.
    """

    changes: frozenset[str]
    by_wave: dict[int, frozenset[str]]

    @classmethod
    def of_plan(cls, plan: Plan) -> _Approved:
        return cls.of_documents([change_document(c) for c in plan.changes])

    @classmethod
    def of_saved(cls, saved: dict[str, Any]) -> _Approved:
        return cls.of_documents([c for c in saved["changes"] if isinstance(c, dict)])

    @classmethod
    def of_documents(cls, documents: list[dict[str, Any]]) -> _Approved:
        by_wave: dict[int, set[str]] = {}
        for document in documents:
            wave = (document.get("schedule") or {}).get("wave")
            if isinstance(wave, int):
                by_wave.setdefault(wave, set()).add(_content(document))
        return cls(frozenset(_content(d) for d in documents), {w: frozenset(c) for w, c in by_wave.items()})

    def unlisted(self, plan: Plan) -> str:
        """Why the changes ``plan`` would send now are not the approved plan's, or ""."""
        for change in plan.going:
            if _content(change_document(change)) not in self.changes:
                wave = f" of wave {change.schedule.wave}" if change.schedule.wave else ""
                return (
                    f"{change.address} ({change.action}){wave} is not what the approved plan listed: what the API "
                    "reports or the state changed since; nothing of it was sent. Run reconciler plan again"
                )
        return ""


def _content(document: dict[str, Any]) -> str:
    request = document.get("request") or {}
    body = request.get("body")
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "label"}
    what = [document.get(k) for k in ("address", "action", "before", "after", "summary", "sensitive")]
    return dumps([*what, request.get("method"), body])


def _next_wave(run: _Run, one: _Pass, stderr: TextIO) -> bool:
    """Whether apply goes on with the next wave now (waiting for outcomes, the wave done): after its bake.

    Never for a targeted run: it sends what open waves hold of its targets, and advances nothing.
    """
    current, policy, options = one.rollout, run.desired.rollout, run.options
    if current is None or policy is None or not options.wait or options.one_wave or run.targets:
        return False
    if run.interrupts.stop.is_set() or one.halted or one.window_closed or run.executor.ctx.past_deadline():
        return False
    if current.state != RolloutState.RUNNING or not current.wave_done_at:
        return False  # done, or the wave's outcomes are not all known yet (pending at the timeout)
    ready = datetime.fromisoformat(current.wave_done_at) + timedelta(seconds=policy.bake)
    wait = (ready - run.clock()).total_seconds()
    ctx = run.executor.ctx
    if ctx.deadline is not None and ctx.clock() + wait >= ctx.deadline:
        stderr.write(f"Wave {current.wave + 2} waits: its bake ends after the run's --deadline\n")
        return False
    if wait >= 1:
        stderr.write(
            f"Wave {current.wave + 1} of {current.waves} done; baking {durations.describe(wait)} "
            f"before wave {current.wave + 2}\n"
        )
        stderr.flush()
        if run.interrupts.stop.wait(wait):
            return False
    return True


def receiver_alive(store: StateStore, now: datetime) -> str:
    """Where the webhook receiver recording into ``store`` runs, if its heartbeat is fresh; else ""."""
    beat = store.heartbeat(RECEIVER)
    if beat is None:
        return ""
    at, where = beat
    age = (now - at).total_seconds()
    return f"{where or 'running'}, heartbeat {max(0, round(age))} s ago" if -5 <= age <= HEARTBEAT_FRESH else ""


def _gate(desired: Desired, interrupts: Interrupts) -> Gate | None:
    """What each remote action passes before it is sent: the rollout's ``maxPerMinute``."""
    policy = desired.rollout
    if policy is None or policy.max_per_minute is None:
        return None
    return SendRate(policy.max_per_minute, interrupts.stop.wait)


def _one_per_address(settled: list[Outcome], outcomes: list[Outcome], held: list[Outcome]) -> list[Outcome]:
    """The report: what was sent, what earlier runs left and was settled now, what was held — each once.

    An action a killed run left pending is both settled now and held by the plan: one line, the settle's.
    """
    seen = {o.address for o in outcomes}
    settled = [o for o in settled if o.address not in seen]
    seen |= {o.address for o in settled}
    return settled + outcomes + [o for o in held if o.address not in seen]


def _exit_code(outcomes: list[Outcome], interrupts: Interrupts, *, halted: str, window_closed: str) -> int:
    """5 the rollout halted; 4 something failed, is pending or held; 128 + signal when interrupted
    with nothing pending; 3 the change window held changes back; else 0.
    """
    if halted:
        return 5
    if any(o.result == Result.PENDING for o in outcomes):
        return 4
    if interrupts.signum:
        return interrupts.exit_code
    if not all(o.result in OK_RESULTS for o in outcomes):
        return 4
    return 3 if window_closed else 0


def read_saved(path: str, fleet_file: str | None) -> dict[str, Any]:
    saved = saved_plan.read(path)
    source = Path(saved["source"]["file"])
    if fleet_file is not None and Path(fleet_file).resolve() != source:
        raise ReconcilerError(
            f"the plan {path} was made from {source}, not {fleet_file}: a saved plan applies to its own "
            "fleet file; leave out -f, or make a plan of that file"
        )
    try:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError as exc:
        raise StalePlanError(f"the plan's fleet file {source} cannot be read: {exc}") from exc
    if digest != saved["source"]["sha256"]:
        raise StalePlanError(f"{source} changed since the plan was made; run reconciler plan again")
    if saved.get("format_version") != FORMAT_VERSION:
        raise StalePlanError(
            f"the plan {path} is of format {saved.get('format_version')}, this reconciler applies format "
            f"{FORMAT_VERSION} (every change with its schedule); make it again with reconciler plan --out"
        )
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


def _check_same(saved: dict[str, Any], result: Plan) -> None:
    """The plan computed now must be the saved one, or apply refuses (exit 3) saying what differs."""
    window = saved.get("window") or {}
    if window.get("open") and result.window is not None and not result.window.open:
        opens = result.window.described.removeprefix("closed until ")
        raise StalePlanError(
            f"the change window closed at {window.get('closes_at') or 'its end'} since the plan was made; it opens "
            f"again {opens}: apply this plan then, or make a new one (reconciler plan)"
        )
    now = json.loads(dumps(plan_document(result)["changes"]))
    if now != saved["changes"]:
        reason = _difference(saved["changes"], now, refreshed=bool(saved.get("refreshed")))
        raise StalePlanError(f"the saved plan is stale: {reason}; run reconciler plan again")


def _difference(saved: list[dict[str, Any]], now: list[dict[str, Any]], *, refreshed: bool) -> str:
    """The first difference between two plans' changes, in words."""
    before = {(c.get("address"), c.get("action")): c for c in saved if isinstance(c, dict)}
    after = {(c["address"], c["action"]): c for c in now}
    source = "what the API reports" if refreshed else "the recorded state"
    for key, then in before.items():
        if key not in after:
            if any(isinstance(f, dict) and f.get("changed") for f in then.get("sensitive") or ()):
                return f"a secret of {key[0]} has another value in the environment than when the plan was made"
            return f"{key[0]} ({key[1]}) is no longer needed: {source} changed since the plan was made"
    for key in after:
        if key not in before:
            return f"{key[0]} ({key[1]}) is needed now and is not in the plan: {source} changed since it was made"
    for key, then in before.items():
        current = after[key]
        if then == current:
            continue
        if then.get("sensitive") != current.get("sensitive"):
            return f"a secret of {key[0]} has another value in the environment than when the plan was made"
        if then.get("before") != current.get("before"):
            return f"{source} for {key[0]} changed since the plan was made"
        if then.get("schedule") != current.get("schedule"):
            was, is_ = (then.get("schedule") or {}).get("kind"), (current.get("schedule") or {}).get("kind")
            return f"{key[0]} was to go {was}, it is {is_} now (a brake changed since the plan was made)"
        return f"{key[0]} ({key[1]}) is not what the plan file says (was the plan file edited?)"
    return "the changes come in another order than the plan file's (was it edited?)"


def lock_owner(command: str) -> str:
    """Who holds the lock, as its holder is named: ``reconciler apply (alice, pid 4242)``."""
    try:
        who = f"{getpass.getuser()}, pid {os.getpid()}"
    except (KeyError, OSError):
        who = f"pid {os.getpid()}"
    return f"{command} ({who})"


def read_recorded(fleet_file: str, env: Mapping[str, str], fleet: str) -> tuple[Recorded, list[rollout.Entry]]:
    """The recorded state, opened read-only (planning never writes), and its rollout's wave's journal entries."""
    store = open_store(state_url(fleet_file, env), readonly=True, fleet=fleet)
    try:
        recorded = store.read()
        return recorded, rollouts.wave_entries(store, recorded.rollout)
    finally:
        store.close()
