"""Carrying out remote actions: per vehicle, back to back, journaled, followed to their outcome.

A vehicle's changes go out together so that one wake-up carries them all: the
first action of each remote type at once, the next of a type once the one
before it ended (the API refuses two of a type in flight: SameActionInProgress).
Every POST is journaled before it is sent; an answer that was lost is looked up
by the key in the action's label before anything is sent again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..core import spec
from ..core.changes import Change
from ..core.outcomes import Outcome
from ..core.sensitive import reveal
from ..core.vocabulary import Result
from ..errors import (
    ApiError,
    AuthError,
    Cancelled,
    LockLostError,
    RateLimitedError,
    ReconcilerError,
    UnknownOutcome,
    UnreachableError,
)
from ..state.base import PENDING_JOURNAL_STATUSES, JournalEntry
from .context import RunContext, sealed
from .ending import record_final
from .wakeups import WakeupLedger

POLL_DELAYS = (0.5, 1.0, 2.0, 3.0, 5.0)  # then every 5 s
LISTEN_EVERY = 0.5  # listening: how often the state is read (one indexed row) for what the receiver recorded
_FATAL = (AuthError, UnreachableError)  # end the whole run (exit 1): going on would only repeat them
# Asked before each send; an Outcome holds the change back (wake-up budget, send rate), None lets it go.
Gate = Callable[[Change], Outcome | None]


@dataclass
class _InFlight:
    """An action sent and not ended: when it was sent, when to look at it next, when news of it last came."""

    entry: JournalEntry
    path: str  # of the action itself: …/remotes/{rid}
    rid: str
    sent_at: float  # on the run's clock: its --timeout counts from here
    next_at: float  # when to look at it again
    heard_at: float  # when its status last changed (listening: it is polled after --poll-after without news)
    polls: int = 0

    def outcome(self, result: Result, detail: str) -> Outcome:
        return Outcome(self.entry.address, result, detail, self.entry.remote_type or "")


class RemoteActions:
    """The remote actions of one run."""

    def __init__(
        self,
        ctx: RunContext,
        callback_id: Callable[[str], str],
        gate: Gate | None = None,
        wakeups: WakeupLedger | None = None,
    ) -> None:
        self.ctx = ctx
        self._callback_id = callback_id
        self._gate = gate
        self._wakeups = wakeups
        self._quota_until = ""  # the API's daily quota is spent: nothing more is sent this run

    # one vehicle

    def vehicle(self, changes: list[Change], vids: dict[str, str]) -> list[Outcome]:
        """Carry out one vehicle's changes (in plan order within each remote type).

        Each action is waited for up to ``--timeout`` after it was sent, and
        nothing goes or is waited for past the run's ``--deadline``.
        """
        ctx = self.ctx
        queues: dict[str, deque[Change]] = {}
        for change in changes:
            queues.setdefault(change.remote_type or "", deque()).append(change)
        flying: dict[str, _InFlight] = {}
        outcomes: list[Outcome] = []

        def drop(kind: str, why: str, result: Result = Result.SKIPPED) -> None:
            for rest in queues.pop(kind, ()):
                outcomes.append(ctx.report(Outcome(rest.address, result, why, rest.remote_type or "")))

        def stop_all(why: str, not_sent: str) -> None:
            for flight in flying.values():
                outcomes.append(
                    ctx.report(flight.outcome(Result.PENDING, f"{flight.rid} still {flight.entry.status} {why}"))
                )
            for kind in list(queues):
                drop(kind, not_sent)

        while queues or flying:
            if ctx.past_deadline():
                stop_all("when the run's --deadline passed", "not sent: the run's --deadline passed")
                break
            for kind in [k for k in queues if k not in flying]:
                change = queues[kind].popleft()
                if not queues[kind]:
                    del queues[kind]
                started = self._start(change, vids)
                if isinstance(started, Outcome):
                    outcomes.append(ctx.report(started))
                    if started.result == Result.HELD:
                        drop(kind, started.detail, Result.HELD)
                    else:
                        drop(kind, f"waits for {change.address}")
                    continue
                if not ctx.wait and kind not in queues:
                    outcomes.append(ctx.report(_outcome(change, Result.ACCEPTED, f"accepted as {started.rid}")))
                    continue
                flying[kind] = started
            for kind, flight in list(flying.items()):
                ended = self._due(flight)
                if ended is None:
                    continue
                del flying[kind]
                outcomes.append(ctx.report(ended))
                if ended.result != Result.CONFIRMED:
                    drop(kind, f"waits for {flight.entry.address}")
            if not flying:
                continue
            wake = min(min(f.next_at, f.sent_at + ctx.timeout) for f in flying.values())
            if ctx.pause(ctx.until(wake) - ctx.clock()):
                stop_all("when the run was interrupted", "not sent: the run was interrupted")
                break
        return outcomes

    def _due(self, flight: _InFlight) -> Outcome | None:
        """Look at ``flight`` if it is time: its outcome; pending once its --timeout passed; else None."""
        ctx = self.ctx
        now = ctx.clock()
        timed_out = now >= flight.sent_at + ctx.timeout
        if now < flight.next_at and not timed_out:
            return None
        ended = self._check(flight)
        if ended is None and timed_out:
            ctx.polls.add(followed=1)
            return flight.outcome(
                Result.PENDING, f"{flight.rid} still {flight.entry.status} after --timeout {ctx.timeout:g} s"
            )
        if ended is not None:
            ctx.polls.add(followed=1)
        return ended

    def _start(self, change: Change, vids: dict[str, str]) -> _InFlight | Outcome:
        """Journal and POST one action: in flight, or what stopped it."""
        ctx = self.ctx
        assert change.vin is not None
        if ctx.stop.is_set():
            return _outcome(change, Result.SKIPPED, "not sent: the run was interrupted")
        if self._quota_until:
            return _outcome(change, Result.SKIPPED, f"not sent: the API's quota is spent ({self._quota_until})")
        held, wakes = self._wakeups.before(change) if self._wakeups else (None, False)
        if held is not None:
            return held
        held = self._gate(change) if self._gate else None
        if held is not None:
            return held
        try:
            path = change.request.path.replace("{vid}", vids.get(change.vin, "{vid}"))
            if "{cbid}" in path:
                path = path.replace("{cbid}", self._callback_id(change.callback or ""))
        except ReconcilerError as exc:
            return _outcome(change, Result.FAILED, str(exc))
        entry = _entry(change, path)
        try:
            with ctx.store.transaction():  # journaled, and its wake-up counted, before it is sent
                ctx.store.journal_start(entry)
                ctx.store.add_history(change.address, "send", change.summary)
                if self._wakeups is not None:
                    self._wakeups.sent(change, wakes)
        except LockLostError:
            ctx.stop.set()  # another run holds the state now: nothing more leaves, no wait goes on
            raise
        answer = self._post_once(entry, path, reveal(change.request.body))
        if isinstance(answer, Outcome):
            return answer
        rid = str(answer["remoteActionId"])
        ctx.store.journal_update(change.key, spec.PENDING_STATUSES[0], remote_action_id=rid)
        entry = _with_status(entry, spec.PENDING_STATUSES[0], rid)
        sent = ctx.clock()
        return _InFlight(entry, f"{path}/{rid}", rid, sent_at=sent, next_at=sent + POLL_DELAYS[0], heard_at=sent)

    def _check(self, flight: _InFlight) -> Outcome | None:
        """How the action goes, from the state when a receiver records outcomes, else from the API."""
        ctx = self.ctx
        now = ctx.clock()
        if ctx.listening:
            known = ctx.store.journal_status(flight.entry.key)
            if known is not None and known[0] != flight.entry.status:
                flight.heard_at = now
                status, cause = known
                if status not in PENDING_JOURNAL_STATUSES:  # the receiver recorded its end
                    ctx.polls.add(heard=1)
                    return self._seen(flight.entry, {"status": status, "failureCause": cause}, flight.rid)
                flight.entry = _with_status(flight.entry, status, flight.rid)
            if now - flight.heard_at < ctx.poll_after:
                flight.next_at = min(now + LISTEN_EVERY, flight.heard_at + ctx.poll_after)
                return None
            flight.heard_at = now  # no news for --poll-after: ask the API, then wait as long again
        ended = self._poll(flight)
        flight.polls += 1
        delay = LISTEN_EVERY if ctx.listening else POLL_DELAYS[min(flight.polls, len(POLL_DELAYS) - 1)]
        flight.next_at = ctx.clock() + delay
        return ended

    def _poll(self, flight: _InFlight) -> Outcome | None:
        """Ask the API once how the action goes; its outcome once it ended, else None."""
        self.ctx.polls.add(polls=1)
        try:
            action = self.ctx.api.get(flight.path)
        except Cancelled:
            return flight.outcome(
                Result.PENDING, f"{flight.rid} still {flight.entry.status} when the run was interrupted"
            )
        except RateLimitedError as exc:
            # Accepted already: the outcome is only not known yet. The next run (or the webhook) tells.
            return flight.outcome(Result.PENDING, f"{flight.rid} accepted; its outcome is checked later: {exc}")
        except _FATAL:
            raise
        except ApiError as exc:
            return flight.outcome(Result.PENDING, f"{flight.rid} accepted; could not read its status: {exc}")
        ended = self._seen(flight.entry, action, flight.rid)
        if ended is None:
            status = str(action.get("status", ""))
            if status != flight.entry.status:
                flight.heard_at = self.ctx.clock()
            flight.entry = _with_status(flight.entry, status, flight.rid)
        return ended

    def _seen(self, entry: JournalEntry, action: dict[str, Any], rid: str) -> Outcome | None:
        """Record a status the API reported; the outcome when the action ended.

        What ends an action (its final status, the recorded configuration, the
        wake-up count, the backoff, the history) is one transaction: a crash
        before it commits leaves the action pending, and the next run looks it
        up again; a crash after leaves nothing to redo.
        """
        store = self.ctx.store
        status = str(action.get("status", ""))
        given = str(action.get("failureCause", "") or "")
        ended = status not in PENDING_JOURNAL_STATUSES
        failed = ended and status not in spec.SUCCESS_STATUSES
        cause = (given or status) if failed else ""
        until = ""
        with store.transaction():
            new = store.journal_update(
                entry.key, status, remote_action_id=rid, failure_cause=given or None, while_pending=True
            )
            if new and self._wakeups is not None:  # a status seen again tells nothing new of the vehicle
                self._wakeups.seen(entry, status)
            if new and ended:  # not new: the webhook receiver recorded this end already
                until = record_final(store, entry, status, cause, rid)
        kind = entry.remote_type or ""
        if status in spec.SUCCESS_STATUSES:
            return Outcome(entry.address, Result.CONFIRMED, f"{status} ({rid})", kind)
        if not ended:
            return None
        detail = f"{cause} ({rid}); vehicle not retried before {until}" if until else f"{cause} ({rid})"
        return Outcome(entry.address, Result.FAILED, detail, kind)

    # one action, followed to its end: settling earlier runs' actions, and `reconciler send`

    def follow(self, entry: JournalEntry, path: str, rid: str, *, sent_at: float | None = None) -> Outcome:
        """Follow one action until it ends, its --timeout passes (from ``sent_at``, else now) or the run stops.

        Without ``sent_at`` (an earlier run's action) it is looked at once at
        once, from the API even when listening: it may have ended unheard.
        """
        ctx = self.ctx
        now = ctx.clock()
        start = now if sent_at is None else sent_at
        heard = now - ctx.poll_after if sent_at is None else start
        flight = _InFlight(
            entry, path, rid, sent_at=start, next_at=now if sent_at is None else start + POLL_DELAYS[0], heard_at=heard
        )
        while True:
            if ctx.past_deadline():
                return flight.outcome(
                    Result.PENDING, f"{rid} still {flight.entry.status} when the run's --deadline passed"
                )
            ended = self._due(flight)
            if ended is not None:
                return ended
            if not ctx.wait:
                return flight.outcome(Result.PENDING, f"{rid} still {flight.entry.status}")
            wake = min(flight.next_at, flight.sent_at + ctx.timeout)
            if ctx.pause(ctx.until(wake) - ctx.clock()):
                return flight.outcome(Result.PENDING, f"{rid}: interrupted before its outcome was known")

    def send_one(self, change: Change, *, vid: str) -> Outcome:
        """Send one action whose path is complete (``reconciler send``), following it like apply does."""
        try:
            started = self._start(change, {change.vin or "": vid})
        except _FATAL:
            raise
        except ReconcilerError as exc:
            return _outcome(change, Result.FAILED, str(exc))
        if isinstance(started, Outcome):
            return started
        if not self.ctx.wait:
            return _outcome(change, Result.ACCEPTED, f"accepted as {started.rid}")
        return self.follow(started.entry, started.path, started.rid, sent_at=started.sent_at)

    def settle(self, entry: JournalEntry) -> Outcome:
        """What became of an action an earlier run left pending (its answer maybe lost)."""
        store = self.ctx.store
        path = entry.request["path"]
        rid = entry.remote_action_id
        if rid is None:
            found = self._find_by_label(path, entry.key)
            if found is None:
                store.journal_update(entry.key, "NotSent")
                store.add_history(entry.address, "not sent", f"{entry.key} never reached the API")
                return Outcome(entry.address, Result.SKIPPED, "the earlier attempt never reached the API")
            rid = str(found["remoteActionId"])
            store.journal_update(entry.key, str(found.get("status", "Accepted")), remote_action_id=rid)
        return self.follow(entry, f"{path}/{rid}", rid)

    # sending exactly once

    def _post_once(self, entry: JournalEntry, path: str, body: Any) -> Any:
        """POST the action; if its answer is lost, look it up by key before sending it again (once)."""
        store = self.ctx.store
        kind = entry.remote_type or ""
        for attempt in (1, 2):
            try:
                return self.ctx.api.post(path, body)
            except Cancelled:
                store.journal_update(entry.key, "NotSent")
                return Outcome(entry.address, Result.SKIPPED, "not sent: the run was interrupted", kind)
            except UnknownOutcome as exc:
                try:
                    found = self._find_by_label(path, entry.key)
                except Cancelled:
                    store.journal_update(entry.key, "Sending", failure_cause=str(exc))
                    return Outcome(
                        entry.address, Result.PENDING, f"outcome unknown, checked on the next run: {exc}", kind
                    )
                if found is not None:
                    store.add_history(entry.address, "found", f"{entry.key} was created: {exc}")
                    return found
                if attempt == 2:
                    store.journal_update(entry.key, "Sending", failure_cause=str(exc))
                    return Outcome(
                        entry.address, Result.PENDING, f"outcome unknown, checked on the next run: {exc}", kind
                    )
            except _FATAL:
                raise
            except RateLimitedError as exc:
                # Nothing was created: a 429 is a refusal. A long Retry-After is a spent quota.
                store.journal_update(entry.key, "NotSent", failure_cause=str(exc))
                self._quota_until = str(exc)
                return Outcome(entry.address, Result.SKIPPED, f"not sent: the API's quota is spent ({exc})", kind)
            except ApiError as exc:
                with store.transaction():
                    store.journal_update(entry.key, "Rejected", failure_cause=str(exc))
                    store.add_history(entry.address, "rejected", str(exc))
                return Outcome(entry.address, Result.FAILED, str(exc), kind)
        raise AssertionError("unreachable")

    def _find_by_label(self, path: str, key: str) -> dict[str, Any] | None:
        for action in self.ctx.api.pages(path, "remoteActions"):
            if (action.get("remote") or {}).get("label") == key:
                return action
        return None


def _outcome(change: Change, result: Result, detail: str) -> Outcome:
    return Outcome(change.address, result, detail, change.remote_type or "")


def _entry(change: Change, path: str) -> JournalEntry:
    return JournalEntry(
        change.key,
        change.address,
        change.vin,
        change.callback,
        change.remote_type,
        "POST",
        {"path": path, "body": sealed(change.request.body)},
        change.after,
    )


def _with_status(entry: JournalEntry, status: str, rid: str) -> JournalEntry:
    return replace(entry, status=status, remote_action_id=rid)
