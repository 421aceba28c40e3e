"""The webhook receiver: records remote events the API posts, so pending actions resolve without polling.

Each request is authenticated by the secret header attributes declared on its
callback in fleet.yaml (``headers: {X-Token: "${WEBHOOK_TOKEN}"}``), compared
in constant time. A valid body answers 200 once its events are stored, 500
when they could not be (the API retries by the callback's policy); events
are recorded idempotently: the same status of the same action counts once.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..api import spec
from ..core.model import Desired, Secret
from ..errors import ReconcilerError
from ..run.executor import record_final
from ..state.base import PENDING_JOURNAL_STATUSES, StateStore

MAX_BODY = 1024 * 1024
log = logging.getLogger("reconciler.webhook")


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


def create_app(desired: Desired, store: StateStore, *, max_body: int = MAX_BODY) -> Starlette:
    expected = secret_headers(desired)
    if not expected:
        raise ReconcilerError(
            "no callback in the fleet file has a secret header to authenticate the API's requests: add one, "
            'e.g. webhook: {headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}}'
        )

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return _answer(413, f"the body is larger than {max_body} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_body:
                return _answer(413, f"the body is larger than {max_body} bytes")
        try:
            body = _parse(raw)
        except ValueError as exc:
            return _answer(400, str(exc))
        label = _label_of(store, body["callbackId"])
        if label is None or not _authentic(request.headers, expected.get(label, {})):
            return _answer(401, "unknown callback or wrong secret header")
        try:
            stored = sum(record_event(store, event) for event in body["events"])
        except Exception:  # any failure to store means "send them again"
            log.exception("could not store events")
            return _answer(500, "the events could not be stored; send them again")
        return _answer(200, f"{stored} new of {len(body['events'])} events recorded")

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
    if new and status.get("type") == "Done" and entry.status in PENDING_JOURNAL_STATUSES:
        record_final(store, entry, value, cause or value, event["remoteActionId"])
    return new


def _label_of(store: StateStore, callback_id: str) -> str | None:
    for label, recorded in store.callbacks().items():
        if recorded.id == callback_id:
            return label
    return None


def _authentic(headers: Mapping[str, str], expected: Mapping[str, str]) -> bool:
    if not expected:
        return False
    # compare_digest on every header, even after a mismatch: no timing hint of which one failed
    results = [hmac.compare_digest(headers.get(name, "").encode(), value.encode()) for name, value in expected.items()]
    return all(results)


def _parse(raw: bytes) -> dict[str, Any]:
    import json

    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("callbackId"), str):
        raise ValueError("callbackId is required")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise ValueError("events must be a non-empty list")
    for index, event in enumerate(events):
        status = event.get("eventStatus") if isinstance(event, dict) else None
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("remoteActionId"), str)
            or not isinstance(status, dict)
            or status.get("type") not in ("Pending", "Done")
            or not isinstance(status.get("status"), str)
        ):
            raise ValueError(f"events[{index}] needs remoteActionId and eventStatus {{type, status}}")
    return body


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)
