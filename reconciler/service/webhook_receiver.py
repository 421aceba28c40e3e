"""The webhook receiver: records remote events the API posts, so pending actions resolve without polling.

Each request is authenticated by the secret header attributes declared on the
callbacks in fleet.yaml (``headers: {X-Token: "${WEBHOOK_TOKEN}"}``), compared
in constant time, before its body is read: a stranger learns nothing from how
its body is judged. The body is read within a size and a time limit, parsed
with a bounded nesting depth, and checked against the webhook template (event
types and statuses). A valid body answers 200 once its events are stored, 500
when they could not be (the API retries by the callback's policy); events are
recorded idempotently: the same status of the same action counts once. Every
refused request is logged in one line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..api import spec
from ..core.model import Desired, Secret
from ..errors import ReconcilerError
from ..run.outcomes import record_final
from ..run.wakeups import note_status
from ..state.base import PENDING_JOURNAL_STATUSES, StateStore

MAX_BODY = 1024 * 1024
READ_TIMEOUT = 10.0  # seconds to receive a whole body: a slow sender holds a connection, not the receiver
log = logging.getLogger("reconciler.webhook")
# Told how many events (requests, for "refused") had each result: "recorded", "duplicate", "refused", "error".
Counter = Callable[[str, int], None]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def secret_headers(desired: Desired) -> dict[str, dict[str, str]]:
    """label → {header name (lower case): expected value} for callbacks with secret headers."""
    result: dict[str, dict[str, str]] = {}
    for label, callback in desired.callbacks.items():
        headers = {
            a.key.lower(): a.value.value
            for a in callback.attributes
            if a.kind == spec.ATTRIBUTE_HEADER and isinstance(a.value, Secret)
        }
        if headers:
            result[label] = headers
    return result


def create_app(
    desired: Desired,
    store: StateStore,
    *,
    max_body: int = MAX_BODY,
    read_timeout: float = READ_TIMEOUT,
    count: Counter | None = None,
) -> Starlette:
    expected = secret_headers(desired)
    if not expected:
        raise ReconcilerError(
            "no callback in the fleet file has a secret header to authenticate the API's requests: add one, "
            'e.g. webhook: {headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}}'
        )
    tally = count or (lambda result, n: None)

    async def receive(request: Request) -> Response:
        where = request.client.host if request.client else "?"
        try:
            labels = _authenticated(request.headers, expected)
            raw = await asyncio.wait_for(_body(request, max_body), read_timeout)
            body = _parse(raw)
            label = _label_of(store, body["callbackId"])
            if label not in labels:
                raise _Refused(401, "unknown callback or wrong secret header")
        except _Refused as refused:
            log.warning("refused a request from %s: %s %s", where, refused.status, refused.message)
            tally("refused", 1)
            return _answer(refused.status, refused.message)
        except TimeoutError:
            log.warning("refused a request from %s: 408 the body did not arrive within %s s", where, read_timeout)
            tally("refused", 1)
            return _answer(408, f"the body did not arrive within {read_timeout:g} s")
        except ClientDisconnect:
            log.warning("a request from %s was cut off before its body ended", where)
            tally("refused", 1)
            return _answer(400, "the body was cut off")
        try:
            new = sum(record_event(store, event) for event in body["events"])
        except Exception as exc:  # any failure to store means "send them again"
            log.error("could not store %d events: %s: %s", len(body["events"]), type(exc).__name__, exc)
            tally("error", len(body["events"]))
            return _answer(500, "the events could not be stored; send them again")
        tally("recorded", new)
        tally("duplicate", len(body["events"]) - new)
        return _answer(200, f"{new} new of {len(body['events'])} events recorded")

    return Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/{path:path}", receive, methods=["POST"])])


def record_event(store: StateStore, event: dict[str, Any]) -> bool:
    """Record one event; True if it told something new about one of our actions."""
    entry = store.journal_by_action(event["remoteActionId"])
    if entry is None or entry.vin is None:
        return False  # not an action reconciler sent
    status = event["eventStatus"]
    value, cause = str(status["status"]), str(status.get("failureCause") or "")
    if entry.status not in PENDING_JOURNAL_STATUSES and entry.status != value:
        return False  # already ended: a late or repeated event changes nothing
    new = store.journal_update(entry.key, value, remote_action_id=event["remoteActionId"], failure_cause=cause or None)
    if new:
        note_status(store, entry, value)
    ended = status.get("type") == spec.EVENT_DONE or value not in PENDING_JOURNAL_STATUSES
    if new and ended and entry.status in PENDING_JOURNAL_STATUSES:
        record_final(store, entry, value, cause or value, event["remoteActionId"])
    return new


def _authenticated(headers: Mapping[str, str], expected: Mapping[str, Mapping[str, str]]) -> set[str]:
    """The callbacks whose every secret header the request carries; refused when there is none."""
    labels = {label for label, wanted in expected.items() if _carries(headers, wanted)}
    if not labels:
        raise _Refused(401, "unknown callback or wrong secret header")
    return labels


def _carries(headers: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    # compare_digest on every header, even after a mismatch: no timing hint of which one failed.
    # An empty expected value never matches (the loader refuses empty secrets; this is the belt).
    results = [
        hmac.compare_digest(headers.get(name, "").encode(), value.encode()) and bool(value)
        for name, value in wanted.items()
    ]
    return bool(results) and all(results)


async def _body(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_body):
        raise _Refused(413, f"the body is larger than {max_body} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body:
            raise _Refused(413, f"the body is larger than {max_body} bytes")
    return bytes(raw)


def _label_of(store: StateStore, callback_id: str) -> str | None:
    for label, recorded in store.callbacks().items():
        if recorded.id == callback_id:
            return label
    return None


def _parse(raw: bytes) -> dict[str, Any]:
    """The body as the webhook template has it; ``_Refused`` (400) saying what is wrong."""
    try:
        body = orjson.loads(raw)  # nesting deeper than 1024 is refused, never a RecursionError
    except orjson.JSONDecodeError as exc:
        raise _Refused(400, f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("callbackId"), str):
        raise _Refused(400, "callbackId is required")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise _Refused(400, "events must be a non-empty list")
    for index, event in enumerate(events):
        _check_event(index, event)
    return body


def _check_event(index: int, event: Any) -> None:
    status = event.get("eventStatus") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("remoteActionId"), str) or not isinstance(status, dict):
        raise _Refused(400, f"events[{index}] needs remoteActionId and eventStatus {{type, status}}")
    kind, value, cause = status.get("type"), status.get("status"), status.get("failureCause")
    if kind not in spec.EVENT_STATUSES:
        raise _Refused(400, f"events[{index}].eventStatus.type {kind!r} is not Pending or Done")
    if value not in spec.EVENT_STATUSES[kind]:
        allowed = ", ".join(spec.EVENT_STATUSES[kind])
        raise _Refused(400, f"events[{index}].eventStatus.status {value!r} is not a {kind} status ({allowed})")
    if cause is not None and cause not in spec.FAILURE_CAUSES:
        raise _Refused(400, f"events[{index}].eventStatus.failureCause {cause!r} is not a failure cause of the API")


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)
