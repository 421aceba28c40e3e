"""Notifications (DESIGN §9.4): a run's events, posted as one JSON document per run to each ``notify:`` target.

Kinds: ``failed`` (an action or callback change failed), ``halted`` (the
rollout halted on its failure budget), ``drift`` (refresh found a difference
made outside reconciler), ``budget`` (a vehicle's wake-up budget is spent and
holds changes), ``held`` (any other change left alone: an action still pending,
a backoff, a later wave, a closed window, a halted rollout). A target is posted
to only when the run has events of the kinds it asks for.

Delivery never fails the run: 5 seconds a try, one retry, and what went wrong
comes back as text for the report (the URL shown without its query or user
part, a ``${VAR}`` URL by its name; header values never).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ..core.changes import Drift
from ..core.model import Notify, Secret
from ..core.sensitive import reveal
from .outcomes import FAILED, Outcome

TIMEOUT = 5.0  # seconds a try
TRIES = 2  # one retry
MAX_EVENTS = 100  # listed per kind and notification; the rest are counted ("omitted")
USER_AGENT = "reconciler-notify"


@dataclass(frozen=True)
class Event:
    kind: str
    address: str
    detail: str


def events(outcomes: Iterable[Outcome], drift: Iterable[Drift], halted: str) -> list[Event]:
    """What a run has to tell: its failures, halt, drift, spent budgets and held changes."""
    found = []
    if halted:
        found.append(Event("halted", "rollout", halted))
    for d in drift:
        found.append(Event("drift", d.address, f"{d.field}: recorded {d.recorded}, now {d.observed}"))
    for outcome in outcomes:
        if outcome.result == FAILED:
            found.append(Event("failed", outcome.address, outcome.detail))
        elif outcome.kind == "wakeups":
            found.append(Event("budget", outcome.address, outcome.detail))
        elif outcome.kind:
            found.append(Event("held", outcome.address, outcome.detail))
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
) -> list[Delivery]:
    """Post the events each target asks for; one ``Delivery`` per target that had any."""
    run = run or new_run_id()
    deliveries = []
    for target in targets:
        chosen = [e for e in found if e.kind in target.on]
        if not chosen:
            continue
        body = json.dumps(document(fleet, run, code, chosen)).encode()
        deliveries.append(Delivery(target.shown, len(chosen), _post(target, body, transport)))
    return deliveries


def _post(target: Notify, body: bytes, transport: httpx.BaseTransport | None) -> str:
    """Post ``body``; "" when the target took it, else why not (after one retry)."""
    url = reveal(target.url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    headers.update({name: reveal(value) for name, value in target.headers})
    error = ""
    with httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False) as client:
        for _ in range(TRIES):
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}" + (f": {_scrub(str(exc), target)}" if str(exc) else "")
                continue
            if 200 <= response.status_code < 300:
                return ""
            error = f"answered {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
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
