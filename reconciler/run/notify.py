"""Notifications (DESIGN §9.4): a run's events, posted as one JSON document per run to each ``notify:`` target.

Kinds: ``failed`` (an action or callback change failed), ``halted`` (the
rollout halted on its failure budget), ``drift`` (refresh found a difference
made outside reconciler), ``budget`` (a vehicle's wake-up budget is spent and
holds changes), ``held`` (any other change left alone: an action still pending,
a backoff, a later wave, a closed window, a halted rollout). A target is posted
to only when the run has events of the kinds it asks for.

Delivery never fails the run: one deadline for the whole notification
(``timeout``, 10 s by default: connecting, sending, the answer and one retry),
and what went wrong comes back as text for the report (the URL shown without its query or user
part, a ``${VAR}`` URL by its name; header values never).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ..core.changes import Drift
from ..core.model import Notify, Secret
from ..core.outcomes import Outcome
from ..core.sensitive import reveal
from ..core.vocabulary import NotifyKind, Result, When

TRIES = 2  # one retry, within the notification's deadline
MAX_EVENTS = 100  # listed per kind and notification; the rest are counted ("omitted")
USER_AGENT = "reconciler-notify"


@dataclass(frozen=True)
class Event:
    kind: NotifyKind
    address: str
    detail: str


def events(outcomes: Iterable[Outcome], drift: Iterable[Drift], halted: str) -> list[Event]:
    """What a run has to tell: its failures, halt, drift, spent budgets and held changes."""
    found = []
    if halted:
        found.append(Event(NotifyKind.HALTED, "rollout", halted))
    for d in drift:
        found.append(Event(NotifyKind.DRIFT, d.address, f"{d.field}: recorded {d.recorded}, now {d.observed}"))
    for outcome in outcomes:
        if outcome.result == Result.FAILED:
            found.append(Event(NotifyKind.FAILED, outcome.address, outcome.detail))
        elif outcome.kind == When.BUDGET:
            found.append(Event(NotifyKind.BUDGET, outcome.address, outcome.detail))
        elif outcome.kind:
            found.append(Event(NotifyKind.HELD, outcome.address, outcome.detail))
    return found


def document(fleet: str, run: str, code: int, chosen: Sequence[Event]) -> dict[str, Any]:
    """The JSON posted: ``{fleet, run, code, at, events, omitted?}``; at most ``MAX_EVENTS`` of a kind listed."""
    listed: list[dict[str, str]] = []
    omitted: dict[str, int] = {}
    per_kind: dict[str, int] = {}
    for event in chosen:
        per_kind[event.kind] = per_kind.get(event.kind, 0) + 1
        if per_kind[event.kind] > MAX_EVENTS:
            omitted[event.kind] = omitted.get(event.kind, 0) + 1
            continue
        listed.append({"kind": event.kind, "address": event.address, "detail": event.detail})
    body: dict[str, Any] = {
        "fleet": fleet,
        "run": run,
        "code": code,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": listed,
    }
    if omitted:
        body["omitted"] = omitted
    return body


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Delivery:
    """What became of one notification: ``error`` is empty when it was delivered."""

    target: str  # the URL as it may be shown
    events: int
    error: str = ""


def send(
    targets: Sequence[Notify],
    fleet: str,
    code: int,
    found: Sequence[Event],
    *,
    run: str | None = None,
    transport: httpx.BaseTransport | None = None,
    stop: threading.Event | None = None,
) -> list[Delivery]:
    """Post the events each target asks for; one ``Delivery`` per target that had any.

    The targets are posted to at once, each within its own deadline (``timeout``,
    10 s by default, its retry included): a target that drips its answer byte by
    byte, or never answers, holds the run no longer than that. ``stop`` (SIGTERM)
    ends the waiting at once.
    """
    run = run or new_run_id()
    posts = []
    for target in targets:
        chosen = [e for e in found if e.kind in target.on]
        if chosen:
            body = json.dumps(document(fleet, run, code, chosen)).encode()
            posts.append(_Post(target, body, len(chosen), transport))
    for post in posts:
        post.start()
    for post in posts:
        post.finish(stop)
    return [Delivery(post.target.shown, post.events, post.error) for post in posts]


class _Post:
    """One notification, posted in a thread of its own so that the caller's wait has a deadline."""

    def __init__(self, target: Notify, body: bytes, events: int, transport: httpx.BaseTransport | None) -> None:
        self.target = target
        self.body = body
        self.events = events
        self.error = ""
        self._transport = transport
        self._done = threading.Event()
        self._client: httpx.Client | None = None
        self._deadline = 0.0

    def start(self) -> None:
        self._deadline = time.monotonic() + self.target.timeout
        threading.Thread(target=self._run, name="notify", daemon=True).start()

    def finish(self, stop: threading.Event | None) -> None:
        """Wait until it is delivered or failed, its deadline passed, or ``stop`` is set."""
        while not self._done.wait(min(0.1, max(0.0, self._deadline - time.monotonic()))):
            if stop is not None and stop.is_set():
                self._abort("interrupted before an answer came")
                return
            if time.monotonic() >= self._deadline:
                self._abort(f"no answer within {self.target.timeout:g} s")
                return

    def _abort(self, why: str) -> None:
        self.error = why
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):  # best effort: the caller has its answer already
                client.close()  # the thread's next read fails: it ends instead of lingering

    def _run(self) -> None:
        try:
            error = self._attempts()
            if not self._done.is_set() and not self.error:
                self.error = error
        finally:
            self._done.set()

    def _attempts(self) -> str:
        """Post ``body``; "" when the target took it, else why not (after one retry)."""
        target = self.target
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update({name: reveal(value) for name, value in target.headers})
        error = f"no answer within {target.timeout:g} s"
        with httpx.Client(transport=self._transport, follow_redirects=False) as client:
            self._client = client
            for _ in range(TRIES):
                left = self._deadline - time.monotonic()
                if left <= 0 or self.error:
                    break
                try:
                    # Streamed, the body never read: a target that drips it cannot hold the run.
                    with client.stream(
                        "POST", reveal(target.url), content=self.body, headers=headers, timeout=left
                    ) as response:
                        status = response.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}" + (f": {_scrub(str(exc), target)}" if str(exc) else "")
                    continue
                if 200 <= status < 300:
                    return ""
                error = f"answered {status}"
                if status < 500 and status != 429:
                    break  # refused: trying again would be refused the same way
        return error


def _scrub(message: str, target: Notify) -> str:
    """An error message, with the target's secret URL and header values taken out."""
    for secret in [target.url, *(value for _, value in target.headers)]:
        text = reveal(secret)
        if isinstance(secret, Secret) and text:
            message = message.replace(text, "(sensitive)")
    if not isinstance(target.url, Secret) and target.url != target.shown:
        message = message.replace(target.url, target.shown)
    return message
