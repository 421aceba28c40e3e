"""The end-of-apply report and the progress shown while apply runs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from ..core.changes import Plan
from ..core.outcomes import Outcome, Progress
from ..core.vocabulary import Result, When

_MARKS = {
    Result.CONFIRMED: "✓",
    Result.ACCEPTED: "→",
    Result.PENDING: "…",
    Result.FAILED: "✗",
    Result.SKIPPED: "-",
    Result.HELD: "‖",
    Result.WAITS: ".",
    Result.CANNOT: "x",
}
MAX_WAITING = 20  # a rollout's later waves can hold 100,000 addresses: they are counted, not all listed


def report(outcomes: Sequence[Outcome], out: TextIO) -> None:
    """One line per address (those waiting for a later wave or window beyond a few, counted), then the counts."""
    width = max((len(o.address) for o in outcomes), default=0)
    waiting = 0
    for outcome in outcomes:
        if outcome.result in (Result.WAITS, Result.HELD):
            waiting += 1
            if waiting > MAX_WAITING:
                continue
        out.write(f"  {_MARKS[outcome.result]} {outcome.address:<{width}}  {outcome.result}: {outcome.detail}\n")
    if waiting > MAX_WAITING:
        out.write(f"  . … and {waiting - MAX_WAITING:,} more held or waiting (a rollout, a window, a budget)\n")
    counts = Counter(o.result for o in outcomes)
    summary = ", ".join(
        f"{counts.get(r, 0):,} {r}" for r in Result if counts.get(r) or r in (Result.CONFIRMED, Result.FAILED)
    )
    out.write(f"Apply finished: {summary}.\n")


def brakes_said(plan: Plan | None, halted: str, window_closed: str, out: TextIO, stale: str = "") -> None:
    """What the brakes held back, under the report: a halted rollout, a closed window, a changed wave."""
    if stale:
        out.write(f"Stopped before the next wave: {stale}.\n")
    if halted:
        out.write(
            f"Rollout halted at {halted}.\nNothing more is sent for this fleet file: fix the cause, then "
            "reconciler apply --continue-rollout (it retries the failed vehicles first), or change the file.\n"
        )
    if window_closed and plan is not None and plan.window is not None:
        waiting = sum(1 for h in plan.held if h.kind == When.WINDOW)
        out.write(
            f"Change window {plan.window.described}: {waiting} change(s) wait for it; only urgent changes "
            "were sent (--ignore-windows sends them now).\n"
        )


class LineProgress(Progress):
    """One line per finished action: for logs and pipelines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            self.out.write(f"{outcome.address}: {outcome.result} {outcome.detail}\n")
            self.out.flush()


class BarProgress(Progress):
    """A progress bar redrawn in place: for a terminal."""

    def __init__(self, out: TextIO, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def start(self, total: int) -> None:
        """A new bar for each wave's sends."""
        with self.lock:
            self.total = total
            self.counts.clear()
            self._draw()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            self.counts[outcome.result] += 1
            self._draw()

    def finish(self) -> None:
        self.out.write("\n")
        self.out.flush()

    def _draw(self) -> None:
        finished = sum(self.counts.values())
        filled = self.width * finished // self.total if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f", {self.counts[Result.FAILED]} failed" if self.counts[Result.FAILED] else ""
        self.out.write(f"\rapplying [{bar}] {finished}/{self.total}{failed}")
        self.out.flush()
