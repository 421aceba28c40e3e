"""Staging a plan under the brakes, and a rollout's life (DESIGN §9.3, §10.1). Pure: values and ``now`` in.

``stage`` asks the brakes (``core.brakes``) for each change of the whole plan
and gives every change its schedule: nothing is dropped, what waits is
reviewed like what goes. Without a brake in force every change goes now, and
the plan is not even copied.

Urgent changes (``immobilized``, ``stolen``) go whatever the window, the
budget or the rollout. A rollout begins when a fleet file (its
``config_hash``) has vehicle changes that no action in flight, backoff or
spent budget holds: their vehicles, ordered by the SHA-256 of the VIN, are cut
into the waves — from the whole fleet's changes, never a ``--target``
subset. A wave is judged on outcomes only: a vehicle of it whose change was
not sent, or has no outcome yet, keeps it open. Once every outcome is known,
more failures than the budget halts the rollout; else, once it has baked,
the next wave comes (at most one per call of ``stage``). The same file
again after a halt sends nothing until ``--continue-rollout``; another file
begins another rollout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from . import addresses, brakes, planner, waves, windows
from .changes import NOW, Change, Held, Plan, RolloutView, Schedule, WindowView
from .model import Desired, Observed, Recorded, Rollout, RolloutPolicy
from .targets import targeted
from .vocabulary import RolloutState, When

Entry = tuple[str, str, str, str]  # (vin, address, status, failure cause) of a remote action, from the journal


@dataclass(frozen=True)
class Staged:
    """The plan with every change's schedule, what the state records of the rollout, and the brakes' state."""

    plan: Plan
    rollout: Rollout | None  # to record; None: nothing to record
    halted: bool = False  # the rollout is halted: nothing but urgent changes go
    window_closed: bool = False  # the change window is closed: nothing but urgent changes go


is_urgent = brakes.is_urgent


def schedule(
    desired: Desired,
    recorded: Recorded,
    observed: Observed | None,
    entries: Sequence[Entry],
    now: datetime,
    *,
    targets: Iterable[str] = (),
    continue_rollout: bool = False,
    ignore_windows: bool = False,
) -> Staged:
    """The plan of the fleet file at ``now``, every change with its schedule: what plan shows and apply carries out.

    The whole fleet is planned and staged, so that waves are cut from all of
    its changes; ``targets`` then keep what they name.
    """
    planned = planner.plan(desired, recorded, observed, now=_iso(now))
    return stage(
        planned,
        desired,
        recorded,
        entries,
        now,
        targets=targets,
        continue_rollout=continue_rollout,
        ignore_windows=ignore_windows,
    )


def stage(
    plan: Plan,
    desired: Desired,
    recorded: Recorded,
    entries: Sequence[Entry],
    now: datetime,
    *,
    continue_rollout: bool = False,
    ignore_windows: bool = False,
    targets: Iterable[str] = (),
) -> Staged:
    """Every change of ``plan`` (the whole fleet's) with its schedule at ``now``, then cut to ``targets``.

    ``entries`` are the journal's remote actions since the recorded rollout's
    wave began (how the wave stands). With ``targets`` the rollout is never
    begun, advanced, completed or reset: only its open waves' targeted changes go.
    """
    targets = tuple(targets)
    stamp = _iso(now)
    # Per address first: a change they hold is in no wave (a rollout is cut from what can go).
    per_address: list[brakes.Brake] = [
        b
        for b in (
            brakes.Pending(recorded.pending),
            brakes.Budget(desired.wakeups, recorded.wakeups, now),
            brakes.Backoffs(recorded.backoffs, stamp),
        )
        if b.active
    ]
    first = [_asked(per_address, c) for c in plan.changes] if per_address else [NOW] * len(plan.changes)
    if desired.rollout is None:
        free: list[Change] = []  # no rollout to cut
    elif per_address:
        free = [c for c, s in zip(plan.changes, first, strict=True) if s.now]
    else:
        free = list(plan.changes)
    rollout = _rollout(free, desired, recorded.rollout, entries, now, continue_rollout)
    active = rollout if rollout is not None and rollout.config_hash == desired.config_hash else None
    window = windows.state(desired.windows, now) if desired.windows is not None else windows.WindowState(True)
    closed = desired.windows is not None and not window.open and not ignore_windows
    # The callbacks urgent changes need go through a closed window with them (looked for only then).
    needed = (
        frozenset(c.callback or "" for c in plan.changes if is_urgent(c) and "{cbid}" in c.request.path)
        if closed
        else frozenset()
    )
    later: list[brakes.Brake] = [
        b
        for b in (
            # The rollout first: a later wave's change waits for its wave (which waits for the window);
            # the wave under way's waits for the window, keeping its wave.
            brakes.Waves(active, _next_wave_at(active, desired.rollout)),
            brakes.Window(desired.windows, window, ignored=ignore_windows, needed=needed),
        )
        if b.active
    ]
    if later:
        first = [_asked(later, c, s) if s.now else s for c, s in zip(plan.changes, first, strict=True)]
    if targets:
        rollout = recorded.rollout  # a targeted run never begins, advances or resets a rollout
    elif (
        active is not None
        and active.state == RolloutState.RUNNING
        and not active.wave_started_at
        and any(s.now and c.vin and not is_urgent(c) for c, s in zip(plan.changes, first, strict=True))
    ):
        active = rollout = replace(active, wave_started_at=stamp)
    braked = bool(per_address or later)  # some brake may hold something: schedules to give
    if braked and any(not s.now or s.wave for s in first):
        # Equal schedules are one object: 100,000 vehicles in a wave share theirs (and the JSON of it).
        pool: dict[Schedule, Schedule] = {}
        changes = tuple(c._replace(schedule=pool.setdefault(s, s)) for c, s in zip(plan.changes, first, strict=True))
    else:
        changes = plan.changes
    if targets:
        changes = tuple(targeted(changes, targets))
    held = [h for h in plan.held if not targets or addresses.matches(h.address, targets)]
    if braked:
        held += [Held(c.address, c.schedule.reason, c.schedule.kind) for c in changes if not c.schedule.now]
        going: Sequence[Change] = [c for c in changes if c.schedule.now]
    else:
        going = changes
    lookups = (
        plan.lookups
        if not braked and not targets
        else len({c.vin for c in going if c.vin and "{vid}" in c.request.path})
    )
    waiting = sum(1 for c in changes if c.schedule.kind == When.WAVE) if active is not None else 0
    staged = replace(
        plan,
        changes=changes,
        held=tuple(held),
        drift=tuple(d for d in plan.drift if not targets or addresses.matches(d.address, targets)),
        adoptions=tuple(a for a in plan.adoptions if not targets or addresses.matches(a.address, targets)),
        cannot_apply=tuple(c for c in plan.cannot_apply if not targets or addresses.matches(c.address, targets)),
        unobserved=tuple(u for u in plan.unobserved if not targets or addresses.matches(u.address, targets)),
        targets=targets,
        lookups=lookups,
        rollout=_view(active, desired.rollout, held=waiting),
        window=_window_view(desired, window, ignore_windows) if desired.windows is not None else None,
    )
    closed = any(isinstance(b, brakes.Window) for b in later)
    return Staged(staged, rollout, active is not None and active.state == RolloutState.HALTED, closed)


def _asked(asked: Sequence[brakes.Brake], change: Change, known: Schedule = NOW) -> Schedule:
    """The first hold of ``asked`` on ``change``; else NOW. Either keeps the wave a brake placed it in."""
    going = known
    for brake in asked:
        answer = brake.schedule(change)
        if answer is None:
            continue
        if not answer.now:
            return replace(answer, wave=going.wave) if going.wave and answer.wave is None else answer
        going = answer
    return going


def progress(
    rollout: Rollout, judgement: waves.Judgement | None, policy: RolloutPolicy, now: datetime, *, advance: bool
) -> Rollout:
    """The rollout once ``judgement`` is known: halted on a breach; its wave done; baked, the next wave."""
    if (
        rollout.state != RolloutState.RUNNING
        or not rollout.wave_started_at
        or judgement is None
        or not judgement.complete
    ):
        return rollout
    wave = waves.members(rollout.vins, rollout.ends, rollout.wave)
    failed = {vin: cause for vin, cause in judgement.failed.items() if vin in set(wave)}
    if waves.breached(len(failed), policy.max_failures, len(wave)):
        causes = ", ".join(f"{vin} ({cause})" for vin, cause in sorted(failed.items()))
        halt = (
            f"wave {rollout.wave + 1} of {rollout.waves}: {len(failed)} of {len(wave)} vehicles failed, "
            f"more than the {waves.budget(policy.max_failures, len(wave))} allowed: {causes}"
        )
        return replace(rollout, state=RolloutState.HALTED, halt=halt)
    done = rollout.wave_done_at or _iso(now)
    if rollout.wave + 1 >= rollout.waves:
        return replace(rollout, state=RolloutState.DONE, wave_done_at=done)  # the last wave: nothing to bake for
    if not advance or now < datetime.fromisoformat(done) + timedelta(seconds=policy.bake):
        return replace(rollout, wave_done_at=done)
    return replace(rollout, wave=rollout.wave + 1, wave_started_at="", wave_done_at="")


def judgement_of(rollout: Rollout, entries: Sequence[Entry], changes: Iterable[Change]) -> waves.Judgement:
    """How the wave under way stands: its outcomes, and what of it is still to be sent (``changes``)."""
    members = waves.members(rollout.vins, rollout.ends, rollout.wave)
    wanted = set(members)
    to_send = {(c.vin or "", c.address) for c in changes if c.vin in wanted and not is_urgent(c)}
    return waves.judge(members, entries, to_send)


def _rollout(
    changes: Sequence[Change],
    desired: Desired,
    recorded: Rollout | None,
    entries: Sequence[Entry],
    now: datetime,
    continue_rollout: bool,
) -> Rollout | None:
    policy = desired.rollout
    if policy is None:
        return None
    if recorded is not None and recorded.config_hash == desired.config_hash:
        if recorded.state == RolloutState.HALTED and continue_rollout:
            # The failed vehicles still have their changes: they are in this wave or before, so they go again.
            return replace(recorded, state=RolloutState.RUNNING, halt="", wave_done_at="", wave_started_at=_iso(now))
        judgement = judgement_of(recorded, entries, changes) if recorded.wave_started_at else None
        return progress(recorded, judgement, policy, now, advance=True)
    vins = {c.vin for c in changes if c.vin and not is_urgent(c)}
    if not vins:
        return recorded  # nothing to roll out: the recorded rollout, if any, is another file's
    ordered = tuple(waves.order(vins))
    identity = hashlib.sha256(f"{desired.config_hash}:{_iso(now)}".encode()).hexdigest()[:16]
    return Rollout(identity, desired.config_hash, ordered, waves.ends(policy.waves, len(ordered)))


def _view(active: Rollout | None, policy: RolloutPolicy | None, held: int) -> RolloutView | None:
    if active is None or policy is None:
        return None
    size = len(waves.members(active.vins, active.ends, active.wave)) if active.ends else 0
    next_at = _next_wave_at(active, policy)
    return RolloutView(active.state, active.wave + 1, active.waves, size, held, next_at, active.halt, policy.bake)


def _next_wave_at(active: Rollout | None, policy: RolloutPolicy | None) -> str:
    """When the next wave may start: the wave under way done and baked (known once its outcomes are)."""
    if active is None or policy is None or active.state != RolloutState.RUNNING or not active.wave_done_at:
        return ""
    return _iso(datetime.fromisoformat(active.wave_done_at) + timedelta(seconds=policy.bake))


def _window_view(desired: Desired, state: windows.WindowState, ignored: bool) -> WindowView:
    zone = desired.windows
    assert zone is not None
    if state.open:
        until = state.closes_at
        text = f"open until {windows.describe(zone, until)}" if until else "open"
        return WindowView(True, closes_at=_iso(until) if until else "", described=text, ignored=ignored)
    opens = state.opens_at
    text = f"closed until {windows.describe(zone, opens)}" if opens else "closed for the week ahead"
    return WindowView(False, opens_at=_iso(opens) if opens else "", described=text, ignored=ignored)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
