"""The brakes on a plan, one interface: each is asked, for each change, when it may go (DESIGN §9.3, §10.1).

A brake answers a ``Schedule`` when it holds a change (why, and when it can
go where that is known), or None when it has nothing against it; the rollout
also answers NOW with the wave under way. ``rollout.stage`` asks them in
order, the first hold wins, and every change stays in the plan with its
schedule: what waits is reviewed like what goes.

Adding a brake is a class here and a line in ``rollout.stage``'s list. Only a
brake with something to hold is asked at all (``active``): a plan with no
brake in force costs nothing, whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from . import addresses, windows
from .changes import Change, Schedule
from .model import Backoff, PendingAction, Rollout, Windows
from .vocabulary import RolloutState, When
from .wakeups import WakeupPolicy, WakeupUse, next_month, spent_reason


class Brake(Protocol):
    active: bool  # whether it may hold anything at all in this plan

    def schedule(self, change: Change) -> Schedule | None:
        """When ``change`` may go if this brake holds it back; None when it has nothing against it."""
        ...


def is_urgent(change: Change) -> bool:
    """Immobilization and stolen changes never wait for a wave, a window or a budget."""
    return change.vin is not None and addresses.is_urgent(change.address)


class Pending:
    """One action of an address in flight at a time, and one of a remote type per vehicle (SameActionInProgress)."""

    def __init__(self, pending: Mapping[str, PendingAction]) -> None:
        self.pending = pending
        self.active = bool(pending)
        self.busy = {(addresses.vin_of(p.address), p.remote_type): p for p in pending.values() if p.remote_type}

    def schedule(self, change: Change) -> Schedule | None:
        if change.vin is None:
            return None
        own = self.pending.get(change.address)
        if own is not None:
            return Schedule(When.PENDING, pending_reason(own))
        busy = self.busy.get((change.vin, change.remote_type or ""))
        if busy is not None:
            return Schedule(
                When.PENDING,
                f"{busy.address} is still {busy.status} and the vehicle takes one {change.remote_type} action "
                "at a time; planned once it ends",
            )
        return None


def pending_reason(pending: PendingAction) -> str:
    return f"action {pending.remote_action_id or pending.key} is still {pending.status}; planned again once it ends"


class Budget:
    """A vehicle whose wake-up budget for the month is spent takes no non-urgent change until next month."""

    def __init__(self, policy: WakeupPolicy | None, wakeups: Mapping[str, WakeupUse], now: datetime) -> None:
        self.policy = policy
        self.wakeups = wakeups
        self.now = now
        self.active = bool(wakeups)
        self.resumes = datetime.combine(next_month(now), datetime.min.time(), now.tzinfo).isoformat()

    def schedule(self, change: Change) -> Schedule | None:
        if change.vin is None or is_urgent(change):
            return None  # urgent changes use the reserve
        use = self.wakeups.get(change.vin)
        reason = spent_reason(self.policy, use, self.now) if use is not None else ""
        return Schedule(When.BUDGET, reason, at=self.resumes) if reason else None


class Backoffs:
    """A failure that retrying cannot fix soon backs the address (or the whole vehicle) off until a time."""

    def __init__(self, backoffs: Mapping[str, Backoff], now: str) -> None:
        self.backoffs = backoffs
        self.now = now
        self.active = bool(backoffs) and bool(now)

    def schedule(self, change: Change) -> Schedule | None:
        if change.vin is None:
            return None
        backoff = self.backoffs.get(change.address)
        if backoff is None:
            backoff = self.backoffs.get(addresses.vehicle_prefix(change.vin))
            if is_urgent(change) and backoff is not None and backoff.cause == "TooManyWakeUpsOverMonth":
                backoff = None  # another section spent the month: an immobilization is tried even so
        if backoff is None or not self.now < backoff.until:
            return None
        reason = f"failed with {backoff.cause}; not retried before {backoff.until}"
        return Schedule(When.BACKOFF, reason, at=backoff.until)


class Window:
    """Outside the change window only urgent changes go (and the creation of a callback one of them needs)."""

    def __init__(
        self, zone: Windows | None, state: windows.WindowState, *, ignored: bool, needed: frozenset[str]
    ) -> None:
        self.active = zone is not None and not state.open and not ignored
        self.needed = needed
        opens = state.opens_at
        when = f"opens {windows.describe(zone, opens)}" if zone is not None and opens else "does not open within a week"
        self.reason = f"change window closed: {when}; only urgent changes go (--ignore-windows to send now)"
        self.at = opens.isoformat(timespec="seconds") if opens else ""

    def schedule(self, change: Change) -> Schedule | None:
        if is_urgent(change) or (change.vin is None and change.callback in self.needed):
            return None
        return Schedule(When.WINDOW, self.reason, at=self.at)


class Waves:
    """A rollout: a vehicle's changes go in its wave; nothing but urgent ones while the rollout is halted."""

    def __init__(self, rollout: Rollout | None, next_wave_at: str) -> None:
        self.rollout = rollout
        self.active = rollout is not None and rollout.state != RolloutState.DONE
        self.positions = rollout.positions() if rollout is not None else {}
        self.next_wave_at = next_wave_at

    def schedule(self, change: Change) -> Schedule | None:
        rollout = self.rollout
        if rollout is None or is_urgent(change):
            return None
        if rollout.state == RolloutState.HALTED:
            halted = f"rollout halted at wave {rollout.wave + 1} of {rollout.waves}"
            return Schedule(When.HALTED, f"{halted}; reconciler apply --continue-rollout retries and goes on")
        if change.vin is None:
            return None  # callbacks go before any wave
        wave = rollout.wave_of(change.vin, self.positions)
        if wave <= rollout.wave:
            return Schedule(When.NOW, wave=wave + 1)
        after = f"wave {wave} passes" if wave == rollout.wave + 1 else f"waves {rollout.wave + 1}–{wave} pass"
        reason = f"rollout: wave {wave + 1} of {rollout.waves}, once {after}"
        return Schedule(When.WAVE, reason, wave=wave + 1, at=self.next_wave_at if wave == rollout.wave + 1 else "")
