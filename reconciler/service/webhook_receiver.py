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

``GET /healthz`` answers 200 while the process serves; ``GET /readyz`` 200 when
the state answers, else 503 (after trying a new connection once). Store calls
run in Starlette's threadpool, never on the event loop; a lost database
connection is replaced on the next request (the one that met it answers 500,
and the API sends its events again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core import spec
from ..core.model import Desired, Secret
from ..errors import ReconcilerError, StateError
from ..run.ending import record_final
from ..run.wakeups import note_status
from ..state.base import HEARTBEAT_EVERY, PENDING_JOURNAL_STATUSES, RECEIVER, JournalEntry, StateStore

MAX_BODY = 1024 * 1024
READ_TIMEOUT = 10.0  # seconds to receive a whole body: a slow sender holds a connection, not the receiver
log = logging.getLogger("reconciler.webhook")
# Told how many events (requests, for "refused") had each result: "recorded", "duplicate", "refused", "error";
# and, as "ended", how many of the recorded ones ended their action.
Counter = Callable[[str, int], None]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@contextmanager
def beating(store: StateStore, instance: str, every: float = HEARTBEAT_EVERY) -> Iterator[None]:
    """Say in the state, every ``every`` seconds, that this receiver (``instance``: where it runs) records events.

    While the beat is fresh, apply takes its actions' outcomes from the state
    instead of polling the API for them (DESIGN §10.3). The beat is removed
    when the receiver stops, so that apply goes back to polling at once.
    """
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                store.beat(RECEIVER, instance)
            except ReconcilerError as exc:
                log.warning("could not record the receiver's heartbeat: %s", exc, extra={"event": "heartbeat_failed"})
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(ReconcilerError):
            store.stop_beating(RECEIVER, instance)


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
            label = await run_in_threadpool(_label_of, store, body["callbackId"])
            if label not in labels:
                raise _Refused(401, "unknown callback or wrong secret header")
            events = body["events"]
            # Every event is bound to our journal before any is recorded: one that is not
            # this callback's own refuses the whole request, and nothing changes.
            bound = await run_in_threadpool(_bind, store, label, events)
        except StateError as exc:
            return await _store_failed(exc, 0)
        except _Refused as refused:
            log.warning(
                "refused a request from %s: %s %s",
                *(where, refused.status, refused.message),
                extra={"event": "refused", "fields": {"client": where, "status": refused.status}},
            )
            tally("refused", 1)
            return _answer(refused.status, refused.message)
        except TimeoutError:
            log.warning(
                "refused a request from %s: 408 the body did not arrive within %s s",
                *(where, read_timeout),
                extra={"event": "refused", "fields": {"client": where, "status": 408}},
            )
            tally("refused", 1)
            return _answer(408, f"the body did not arrive within {read_timeout:g} s")
        except ClientDisconnect:
            log.warning(
                "a request from %s was cut off before its body ended",
                where,
                extra={"event": "refused", "fields": {"client": where, "status": 400}},
            )
            tally("refused", 1)
            return _answer(400, "the body was cut off")
        try:
            new, ended = await run_in_threadpool(_record_all, store, bound)
        except Exception as exc:  # any failure to store means "send them again"
            return await _store_failed(exc, len(events))
        tally("recorded", new)
        tally("duplicate", len(events) - new)
        if ended:  # actions that are pending no more: now and then recounted from the store, off the event loop
            await run_in_threadpool(tally, "ended", ended)
        return _answer(200, f"{new} new of {len(events)} events recorded")

    async def _store_failed(exc: Exception, count: int) -> Response:
        log.error(
            "could not store %d events: %s: %s",
            *(count, type(exc).__name__, exc),
            extra={"event": "store_failed", "fields": {"events": count}},
        )
        tally("error", count)
        if isinstance(exc, StateError):
            await run_in_threadpool(_reconnect, store)  # the next request finds a new connection
        return _answer(500, "the events could not be stored; send them again")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, why = await run_in_threadpool(state_answers, store)
        if ok:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": why}, status_code=503)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/", receive, methods=["POST"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


def state_answers(store: StateStore) -> tuple[bool, str]:
    """Ready when the state answers; a connection that does not is replaced once before saying no."""
    try:
        store.ping()
        return True, ""
    except ReconcilerError:
        pass
    try:
        store.reconnect()
        store.ping()
        return True, ""
    except ReconcilerError as exc:
        return False, str(exc)


def _reconnect(store: StateStore) -> None:
    try:
        store.reconnect()
    except ReconcilerError as exc:
        log.warning("could not reconnect to the state: %s", exc, extra={"event": "state_unreachable"})


def _bind(store: StateStore, label: str, events: list[dict[str, Any]]) -> list[tuple[JournalEntry, dict[str, Any]]]:
    """Each event with the journal entry of its action; ``_Refused`` unless every one is this callback's.

    An event counts only for the callback that carried the action (DESIGN §10.2):
    the secret that authenticated the request, the body's ``callbackId`` and the
    action's journaled callback agree, and the event's ``vin`` and
    ``remoteType`` are the journal's. Events of actions reconciler did not send
    are left out (the callback may carry others' actions too).
    """
    bound = []
    for index, event in enumerate(events):
        entry = store.journal_by_action(event["remoteActionId"])
        if entry is None or entry.vin is None:
            continue  # not an action reconciler sent
        if entry.callback != label:
            raise _Refused(401, f"events[{index}] is of an action sent through another callback")
        if event.get("vin") != entry.vin or event.get("remoteType") != entry.remote_type:
            raise _Refused(400, f"events[{index}]: vin and remoteType are not those of action {entry.remote_action_id}")
        bound.append((entry, event))
    return bound


def _record_all(store: StateStore, bound: list[tuple[JournalEntry, dict[str, Any]]]) -> tuple[int, int]:
    """Record a request's events in one transaction; how many told something new, and how many ended an action."""
    new = ended = 0
    with store.transaction():
        for entry, event in bound:
            told = record_event(store, entry, event)
            new += told
            ended += told and _ends(event)
    return new, ended


def _ends(event: dict[str, Any]) -> bool:
    status = event["eventStatus"]
    return bool(status.get("type") == spec.EVENT_DONE or str(status["status"]) not in PENDING_JOURNAL_STATUSES)


def record_event(store: StateStore, entry: JournalEntry, event: dict[str, Any]) -> bool:
    """Record one event of the action ``entry``; True if it told something new.

    What ends the action is written in one transaction with its status: a late
    or repeated event never moves an action back from its end.
    """
    status = event["eventStatus"]
    value, cause = str(status["status"]), str(status.get("failureCause") or "")
    rid = event["remoteActionId"]
    ended = _ends(event)
    with store.transaction():
        new = store.journal_update(
            entry.key, value, remote_action_id=rid, failure_cause=cause or None, while_pending=True
        )
        if new:
            note_status(store, entry, value)
        if new and ended:
            failed = value not in spec.SUCCESS_STATUSES
            record_final(store, entry, value, (cause or value) if failed else "", rid)
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
    """One event as the template has it; every field of the wrong type is a 400, never a 500."""
    status = event.get("eventStatus") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("remoteActionId"), str) or not isinstance(status, dict):
        raise _Refused(400, f"events[{index}] needs remoteActionId and eventStatus {{type, status}}")
    for name in ("vin", "remoteType", "eventDate"):
        if name in event and not isinstance(event[name], str):
            raise _Refused(400, f"events[{index}].{name} must be a string")
    kind, value, cause = status.get("type"), status.get("status"), status.get("failureCause")
    if not isinstance(kind, str) or kind not in spec.EVENT_STATUSES:
        raise _Refused(400, f"events[{index}].eventStatus.type {_shown(kind)} is not Pending or Done")
    if not isinstance(value, str) or value not in spec.EVENT_STATUSES[kind]:
        allowed = ", ".join(spec.EVENT_STATUSES[kind])
        raise _Refused(400, f"events[{index}].eventStatus.status {_shown(value)} is not a {kind} status ({allowed})")
    if cause is not None and (not isinstance(cause, str) or cause not in spec.FAILURE_CAUSES):
        raise _Refused(
            400, f"events[{index}].eventStatus.failureCause {_shown(cause)} is not a failure cause of the API"
        )


def _shown(value: Any) -> str:
    """A value as a message may quote it: short, whatever its type."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)
