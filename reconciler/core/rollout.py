"""The brakes on a plan (DESIGN §9.3): rollout waves and change windows. Pure: a plan in, what goes now out.

Without ``rollout:`` and ``windows:`` every change goes, as before. With them:

- urgent changes (``immobilized``, ``stolen``) always go, in no wave, whatever the
  window or the state of a rollout;
- outside the change window nothing else goes;
- callback changes go before any wave; while a rollout is halted nothing goes;
- a vehicle's change goes when its wave has come. A rollout begins when a
  fleet file (its ``config_hash``) has vehicle changes: their vehicles, ordered
  by the SHA-256 of the VIN, are cut into the waves. A wave is judged once
  every outcome of it is known: more failures than the budget halts the
  rollout; else, once it has baked, the next wave comes (at most one per
  call of ``stage``). The same file again after a halt sends nothing until
  ``--continue-rollout``; another file begins another rollout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from . import addresses, waves, windows
from .changes import Change, Held, Plan, RolloutView, WindowView
from .model import Desired, Rollout, RolloutPolicy
from .vocabulary import Action, Hold, RolloutState


@dataclass(frozen=True)
class Staged:
    """What goes now (``plan``), what the state records of the rollout, and why the rest waits."""

    plan: Plan
    rollout: Rollout | None  # to record; None: nothing to record
    halted: bool = False  # the rollout is halted: nothing but urgent changes went
    window_closed: bool = False  # the change window is closed: nothing but urgent changes went


def is_urgent(change: Change) -> bool:
    return change.vin is not None and addresses.is_urgent(change.address)


def stage(
    plan: Plan,
    desired: Desired,
    recorded: Rollout | None,
    judgement: waves.Judgement | None,
    now: datetime,
    *,
    continue_rollout: bool = False,
    ignore_windows: bool = False,
) -> Staged:
    """``plan`` cut to what may go at ``now``; ``judgement``: what is known of the recorded rollout's wave."""
    if desired.rollout is None and desired.windows is None:
        return Staged(plan, None)  # no brakes: everything goes (a 100,000-vehicle plan is not copied)
    window = windows.state(desired.windows, now)
    closed = desired.windows is not None and not window.open and not ignore_windows
    rollout = _rollout(plan, desired, recorded, judgement, now, continue_rollout)
    active = rollout if rollout is not None and rollout.config_hash == desired.config_hash else None
    positions = active.positions() if active is not None and active.state == RolloutState.RUNNING else {}
    going: list[Change] = []
    held = list(plan.held)
    # An urgent change whose callback is still to be made takes its creation along.
    needed = {c.callback for c in plan.changes if is_urgent(c) and "{cbid}" in c.request.path}
    for change in plan.changes:
        reason, kind = _waits(change, active, positions, closed, window, desired)
        if kind is not None and not (change.action == Action.CREATE and change.callback in needed):
            held.append(Held(change.address, reason, kind))
        else:
            going.append(change)
    starting = active is not None and active.state == RolloutState.RUNNING and not active.wave_started_at
    if active is not None and starting and any(c.vin and not is_urgent(c) for c in going):
        active = rollout = replace(active, wave_started_at=_iso(now))
    staged = replace(
        plan,
        changes=tuple(going),
        held=tuple(held),
        lookups=len({c.vin for c in going if c.vin and "{vid}" in c.request.path}),
        rollout=_view(active, desired.rollout, len(held) - len(plan.held)),
        window=_window_view(desired, window) if desired.windows is not None else None,
    )
    return Staged(staged, rollout, active is not None and active.state == RolloutState.HALTED, closed)


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


def _rollout(
    plan: Plan,
    desired: Desired,
    recorded: Rollout | None,
    judgement: waves.Judgement | None,
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
        return progress(recorded, judgement, policy, now, advance=True)
    vins = {c.vin for c in plan.changes if c.vin and not is_urgent(c)}
    if not vins:
        return recorded  # nothing to roll out: the recorded rollout, if any, is another file's
    ordered = tuple(waves.order(vins))
    identity = hashlib.sha256(f"{desired.config_hash}:{_iso(now)}".encode()).hexdigest()[:16]
    return Rollout(identity, desired.config_hash, ordered, waves.ends(policy.waves, len(ordered)))


def _waits(
    change: Change,
    active: Rollout | None,
    positions: dict[str, int],
    closed: bool,
    window: windows.WindowState,
    desired: Desired,
) -> tuple[str, Hold | None]:
    """Why ``change`` waits (and which kind of wait it is), or ("", None) when it goes now."""
    if is_urgent(change):
        return "", None  # an immobilization never waits for a wave, a window or a budget
    if closed:
        opens = (
            f"opens {windows.describe(desired.windows, window.opens_at)}"  # type: ignore[arg-type]
            if window.opens_at
            else "does not open within a week"
        )
        return f"change window closed: {opens}; only urgent changes go (--ignore-windows to send now)", Hold.WINDOW
    if active is None or active.state == RolloutState.DONE:
        return "", None
    if active.state == RolloutState.HALTED:
        halted = f"rollout halted at wave {active.wave + 1} of {active.waves}"
        return f"{halted}; reconciler apply --continue-rollout retries and goes on", Hold.HALTED
    if change.vin is None:
        return "", None  # callbacks go before any wave
    wave = active.wave_of(change.vin, positions)
    if wave <= active.wave:
        return "", None
    return f"rollout: in wave {wave + 1} of {active.waves}; wave {active.wave + 1} goes first", Hold.WAVE


def _view(active: Rollout | None, policy: RolloutPolicy | None, held: int) -> RolloutView | None:
    if active is None or policy is None:
        return None
    size = len(waves.members(active.vins, active.ends, active.wave)) if active.ends else 0
    next_at = ""
    if active.wave_done_at and active.state == RolloutState.RUNNING:
        next_at = _iso(datetime.fromisoformat(active.wave_done_at) + timedelta(seconds=policy.bake))
    return RolloutView(active.state, active.wave + 1, active.waves, size, held, next_at, active.halt)


def _window_view(desired: Desired, state: windows.WindowState) -> WindowView:
    zone = desired.windows
    assert zone is not None
    if state.open:
        until = state.closes_at
        text = f"open until {windows.describe(zone, until)}" if until else "open"
        return WindowView(True, closes_at=_iso(until) if until else "", described=text)
    opens = state.opens_at
    text = f"closed until {windows.describe(zone, opens)}" if opens else "closed for the week ahead"
    return WindowView(False, opens_at=_iso(opens) if opens else "", described=text)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
