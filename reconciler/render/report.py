"""The end-of-apply report and the progress shown while apply runs.

The report sums up (DESIGN §10.3): a line for each address that needs a look
(failed, pending, held), a count for the rest (confirmed, not sent, waiting
for a later wave) and, last, a recap of the failures with what to run next.
``verbose`` lists every address. ``document`` is the same report as JSON.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from ..core import addresses, durations
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
_COLORS = {Result.FAILED: "31", Result.PENDING: "33", Result.HELD: "33", Result.CONFIRMED: "32"}
LISTED = (Result.FAILED, Result.PENDING, Result.HELD)  # a line each: someone may have to act on them
MAX_HELD = 50  # held addresses listed one by one; beyond, counted by reason (a budget can hold 100,000)
MAX_RECAP = 20  # failures repeated in the closing recap


def report(
    outcomes: Sequence[Outcome],
    out: TextIO,
    *,
    verbose: bool = False,
    color: bool = False,
    polls: str = "",
) -> None:
    """The report: what needs a look line by line, the rest counted; ``verbose``: every address."""

    def paint(result: Result, text: str) -> str:
        code = _COLORS.get(result)
        return f"\033[{code}m{text}\033[0m" if color and code else text

    shown = [o for o in outcomes if verbose or o.result in LISTED]
    held = [o for o in shown if o.result == Result.HELD]
    if not verbose and len(held) > MAX_HELD:
        kept = {id(o) for o in held[:MAX_HELD]}
        shown = [o for o in shown if o.result != Result.HELD or id(o) in kept]
    width = min(max((len(o.address) for o in shown), default=0), 60)
    for outcome in shown:
        line = f"  {_MARKS[outcome.result]} {outcome.address:<{width}}  {outcome.result}: {outcome.detail}"
        out.write(paint(outcome.result, line) + "\n")
    if not verbose:
        if len(held) > MAX_HELD:
            for reason, n in _by_reason(held[MAX_HELD:]).most_common():
                out.write(paint(Result.HELD, f"  ‖ … and {n:,} more held: {reason}") + "\n")
        for result in (Result.SKIPPED, Result.WAITS, Result.CANNOT):
            for reason, n in _by_reason([o for o in outcomes if o.result == result]).most_common():
                out.write(f"  {_MARKS[result]} {n:,} {_counted(result)}: {reason.removeprefix('not sent: ')}\n")
        confirmed = sum(1 for o in outcomes if o.result in (Result.CONFIRMED, Result.ACCEPTED))
        if confirmed:
            word = "accepted" if all(o.result != Result.CONFIRMED for o in outcomes) else "confirmed"
            out.write(paint(Result.CONFIRMED, f"  ✓ {confirmed:,} {word}") + " (--verbose lists every address)\n")
    if polls:
        out.write(polls + "\n")
    counts = Counter(o.result for o in outcomes)
    summary = ", ".join(
        f"{counts.get(r, 0):,} {r}" for r in Result if counts.get(r) or r in (Result.CONFIRMED, Result.FAILED)
    )
    out.write(f"Apply finished: {summary}.\n")
    _recap([o for o in outcomes if o.result == Result.FAILED], out, paint)


def _recap(failed: Sequence[Outcome], out: TextIO, paint: Callable[[Result, str], str]) -> None:
    """The failures once more, last, where the eye lands; and what to run next."""
    if not failed:
        return
    out.write(paint(Result.FAILED, f"\nFailed ({len(failed):,}):") + "\n")
    for outcome in failed[:MAX_RECAP]:
        out.write(paint(Result.FAILED, f"  ✗ {outcome.address}: {outcome.detail}") + "\n")
    if len(failed) > MAX_RECAP:
        causes = _by_reason(failed[MAX_RECAP:]).most_common(5)
        said = "; ".join(f"{n:,} {cause}" for cause, n in causes)
        out.write(paint(Result.FAILED, f"  … and {len(failed) - MAX_RECAP:,} more ({said})") + "\n")
    vin = next((addresses.vin_of(o.address) for o in failed if addresses.vin_of(o.address)), None)
    why = f"reconciler explain {vin} shows why a vehicle failed; " if vin else ""
    out.write(f"Next: {why}reconciler apply retries what failed (a cause that retrying cannot fix soon backs off).\n")


_ID = re.compile(r"\b(?:[0-9a-f]{32}|[0-9a-f-]{36}|VF[0-9A-Z]{15}|[A-HJ-NPR-Z0-9]{17})\b")
_WHAT = re.compile(r"^(waits for) vehicle\.\S+")


def _by_reason(outcomes: Sequence[Outcome]) -> Counter[str]:
    """How many of ``outcomes`` for each reason, the action ids and addresses in it left out."""
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        reason = _WHAT.sub(r"\1 an earlier action of the vehicle", outcome.detail or str(outcome.result))
        counts[_ID.sub("…", reason).replace(" (…)", "")] += 1
    return counts


def _counted(result: Result) -> str:
    return {Result.SKIPPED: "not sent", Result.WAITS: "wait", Result.CANNOT: "cannot apply"}[result]


def polls_said(polls: int, heard: int, followed: int, listening: str) -> str:
    """``Outcomes: 12 status polls for 200 actions (0.06 an action); 188 from the webhook receiver.``"""
    if not followed and not polls:
        return ""
    per = f" ({polls / followed:.2f} an action)" if followed else ""
    line = f"Outcomes: {polls:,} status poll{'' if polls == 1 else 's'} for {followed:,} action(s){per}"
    if listening or heard:
        line += f"; {heard:,} from the webhook receiver"
    return line + "."


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
    """For logs and pipelines: a line per failure at once, and where the run stands every ``every`` seconds.

    ``verbose``: a line per finished action, as it finishes.
    """

    def __init__(
        self, out: TextIO, *, verbose: bool = False, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.verbose = verbose
        self.every = every
        self.clock = clock
        self.lock = threading.Lock()
        self.rate = _Rate(clock)
        self.said_at = clock()

    def start(self, total: int) -> None:
        with self.lock:
            self.rate.start(total)
            self.said_at = self.clock()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            self.rate.add(outcome.result)
            if self.verbose or outcome.result == Result.FAILED:
                self.out.write(f"{outcome.address}: {outcome.result} {outcome.detail}\n")
            if self.clock() - self.said_at >= self.every:
                self.said_at = self.clock()
                self.out.write(f"applying: {self.rate.said()}\n")
            self.out.flush()

    def finish(self) -> None:
        with self.lock:
            if self.rate.total and not self.verbose:
                self.out.write(f"applied: {self.rate.said(final=True)}\n")
                self.out.flush()


class BarProgress(Progress):
    """A progress bar redrawn in place, for a terminal: done/total, failures, elapsed, rate and ETA.

    The line is cut to the terminal's width, so it never wraps (a wrapped line
    cannot be redrawn in place).
    """

    def __init__(
        self,
        out: TextIO,
        width: int = 30,
        *,
        columns: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.width = width
        self.columns = columns or (lambda: shutil.get_terminal_size((100, 24)).columns)
        self.lock = threading.Lock()
        self.rate = _Rate(clock)
        self.clock = clock
        self.drawn_at = 0.0

    @property
    def total(self) -> int:
        return self.rate.total

    def start(self, total: int) -> None:
        """A new bar for each wave's sends."""
        with self.lock:
            self.rate.start(total)
            self._draw()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            self.rate.add(outcome.result)
            if self.clock() - self.drawn_at >= 0.1 or self.rate.finished >= self.rate.total:
                self._draw()  # at most 10 redraws a second: 100,000 actions are not 100,000 writes

    def finish(self) -> None:
        with self.lock:
            self._draw()
            self.out.write("\n")
            self.out.flush()

    def _draw(self) -> None:
        self.drawn_at = self.clock()
        rate = self.rate
        finished, total = min(rate.finished, rate.total), rate.total
        filled = self.width * finished // total if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"applying [{bar}] {rate.said()}"
        self.out.write("\r" + line[: max(10, self.columns() - 1)] + "\033[K")
        self.out.flush()


class _Rate:
    """Done out of total, failures, elapsed time, actions a second and time left: what progress says."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.total = 0
        self.finished = 0
        self.failed = 0
        self.started = clock()

    def start(self, total: int) -> None:
        self.total, self.finished, self.failed, self.started = total, 0, 0, self.clock()

    def add(self, result: Result) -> None:
        self.finished += 1
        self.failed += result == Result.FAILED

    def said(self, final: bool = False) -> str:
        finished, total = min(self.finished, self.total), self.total
        elapsed = self.clock() - self.started
        share = f" ({100 * finished // total}%)" if total else ""
        failed = f", {self.failed:,} failed" if self.failed else ""
        line = f"{finished:,}/{total:,}{share}{failed}, {durations.describe(elapsed)}"
        if elapsed >= 1 and finished:
            per = finished / elapsed
            line += f", {per:,.1f}/s"
            if not final and finished < total:
                line += f", ETA {durations.describe((total - finished) / per)}"
        return line


class RefreshLine:
    """``refreshing: status 1,200/5,000 vehicles``, redrawn in place on a terminal while a refresh reads."""

    def __init__(
        self, out: TextIO, *, columns: Callable[[], int] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.columns = columns or (lambda: shutil.get_terminal_size((100, 24)).columns)
        self.clock = clock
        self.drawn_at = 0.0
        self.drawn = False
        self.lock = threading.Lock()

    def __call__(self, what: str, done: int, total: int) -> None:
        with self.lock:
            if self.clock() - self.drawn_at < 0.1 and done != total:
                return
            self.drawn_at = self.clock()
            count = f"{done:,}/{total:,}" if total else f"{done:,}"
            line = f"refreshing: {what} {count} vehicles"
            self.out.write("\r" + line[: max(10, self.columns() - 1)] + "\033[K")
            self.out.flush()
            self.drawn = True

    def close(self) -> None:
        """Clear the line: what follows starts on a clean one."""
        with self.lock:
            if self.drawn:
                self.out.write("\r\033[K")
                self.out.flush()
                self.drawn = False
