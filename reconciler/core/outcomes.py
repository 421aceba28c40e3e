"""What became of each change of a run, and how progress is told: the words apply, its report and metrics share."""

from __future__ import annotations

from dataclasses import dataclass

CONFIRMED, ACCEPTED, PENDING, FAILED, SKIPPED = "confirmed", "accepted", "pending", "failed", "skipped"
HELD = "held"  # not sent: the vehicle's wake-up budget is spent, or the rollout halted (apply exits 4 or 5)
WAITS = "waits"  # not sent yet, as planned: a later rollout wave, a closed change window
CANNOT = "cannot apply"  # the vehicle cannot take it: never sent, not a failure
RESULTS = (CONFIRMED, ACCEPTED, PENDING, FAILED, SKIPPED, HELD, WAITS, CANNOT)
OK_RESULTS = (CONFIRMED, ACCEPTED, CANNOT, WAITS)
# How each kind of held address is reported (``changes.Held.kind``).
HELD_RESULTS = {
    "pending": PENDING,
    "backoff": PENDING,
    "wave": WAITS,
    "window": WAITS,
    "halted": HELD,
    "wakeups": HELD,
}


@dataclass(frozen=True)
class Outcome:
    """What became of one change (or of one address the plan held back)."""

    address: str
    result: str
    detail: str = ""
    remote_type: str = ""
    kind: str = ""  # why it was not sent, when it was held (``changes.Held.kind``): wave, window, wakeups …


class Progress:
    """Told of each outcome as it comes; the CLI shows a bar or a line per action."""

    def start(self, total: int) -> None: ...

    def done(self, outcome: Outcome) -> None: ...

    def finish(self) -> None: ...
