"""What became of each change of a run, and how progress is told: the words apply, its report and metrics share."""

from __future__ import annotations

from dataclasses import dataclass

from .vocabulary import Result, When

OK_RESULTS = (Result.CONFIRMED, Result.ACCEPTED, Result.CANNOT, Result.WAITS)
# How each kind of held address is reported (``changes.Held.kind``).
HELD_RESULTS = {
    When.PENDING: Result.PENDING,
    When.BACKOFF: Result.PENDING,
    When.WAVE: Result.WAITS,
    When.WINDOW: Result.WAITS,
    When.HALTED: Result.HELD,
    When.BUDGET: Result.HELD,
}


@dataclass(frozen=True)
class Outcome:
    """What became of one change (or of one address the plan held back)."""

    address: str
    result: Result
    detail: str = ""
    remote_type: str = ""
    kind: When | None = None  # why it was not sent, when it was held (``changes.Held.kind``)


class Progress:
    """Told of each outcome as it comes; the CLI shows a bar or a line per action."""

    def start(self, total: int) -> None: ...

    def done(self, outcome: Outcome) -> None: ...

    def finish(self) -> None: ...
