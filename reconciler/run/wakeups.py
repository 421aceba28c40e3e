"""Counting wake-ups as apply sends, and holding what a vehicle's budget no longer allows (DESIGN §9.3).

Counted from what is sent — conservatively: each send to a vehicle not in
contact within ``awakeFor`` counts — and from what the API reports: an action
seen ``WakingUpVehicle`` that was not counted when sent counts then (once).
Without ``wakeups:`` in the fleet file nothing is held, but wake-ups are counted
all the same (``state show`` and ``explain`` show them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..core import addresses
from ..core.changes import Change
from ..core.outcomes import Outcome
from ..core.vocabulary import Result, When
from ..core.wakeups import DEFAULT_AWAKE_FOR, WakeupPolicy, asleep, month_of, spent_reason, this_month
from ..state.base import JournalEntry, StateStore

WAKING = "WakingUpVehicle"
IN_CONTACT = ("WakingUpVehicle", "SentToVehicle", "Success", "AlreadyDone")  # the vehicle answered


class WakeupLedger:
    """The wake-ups one run's sends cost, per vehicle."""

    def __init__(
        self,
        store: StateStore,
        policy: WakeupPolicy | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        hold: bool = True,
    ) -> None:
        """``hold=False`` counts without holding anything (``send --force``)."""
        self.store = store
        self.policy = policy
        self.hold = hold
        self.awake_for = policy.awake_for if policy else DEFAULT_AWAKE_FOR
        self._clock = clock

    def before(self, change: Change) -> tuple[Outcome | None, bool]:
        """Whether ``change`` may go (an outcome holding it when not), and whether it wakes the vehicle."""
        assert change.vin is not None
        now = self._clock()
        use = self.store.wakeup_use(change.vin, month_of(now))
        wakes = asleep(use, now, self.awake_for)
        urgent = addresses.is_urgent(change.address)
        if wakes and self.hold and not urgent:  # urgent changes use the reserve
            reason = spent_reason(self.policy, use, now)
            if reason:
                return Outcome(change.address, Result.HELD, reason, change.remote_type or "", When.BUDGET), False
        return None, wakes

    def sent(self, change: Change, wakes: bool) -> None:
        """``change`` was journaled and is being sent: count the wake-up it costs; the vehicle is in contact."""
        assert change.vin is not None
        now = self._clock()
        if wakes:
            self.store.count_wakeup(change.vin, month_of(now), change.key)
        self.store.touch(change.vin, now.isoformat(timespec="seconds"))

    def seen(self, entry: JournalEntry, status: str) -> None:
        note_status(self.store, entry, status, self._clock())


def reserve_warning(store: StateStore, policy: WakeupPolicy | None, vin: str, now: datetime) -> str:
    """What to say when one more message to ``vin`` now would take a wake-up from the reserve, else ""."""
    use = store.wakeup_use(vin, month_of(now))
    if not asleep(use, now, policy.awake_for if policy else DEFAULT_AWAKE_FOR):
        return ""  # in contact: free
    current = this_month(use, now)
    if current.spent:
        return f"{vin} has no wake-up left in {current.month} (the API said so); the vehicle will most likely refuse"
    if policy is None or current.used < policy.budget:
        return ""
    return (
        f"{vin} is asleep and has used {current.used} of its {policy.budget} wake-ups in {current.month}: "
        f"this one comes from the reserve of {policy.reserve} kept for drivers and urgent actions"
    )


def note_status(store: StateStore, entry: JournalEntry, status: str, now: datetime | None = None) -> None:
    """What a status the API reported says of wake-ups: a wake-up (once per action), a contact."""
    if entry.vin is None or status not in IN_CONTACT:
        return
    at = now or datetime.now(UTC)
    if status == WAKING:
        store.count_wakeup(entry.vin, month_of(at), entry.key)
    store.touch(entry.vin, at.isoformat(timespec="seconds"))
