"""The HTTP face of the simulator: routes, auth, rate limits, paging and errors (Starlette)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import documents, spec
from .clock import iso
from .engine import Engine, NotFound, Refused
from .faults import Faults
from .ratelimit import RateLimiter
from .validation import Invalid

HAL = "application/hal+json"
QUOTA_RETRY_AFTER = 6 * 3600  # seconds a spent daily quota asks to wait
_RANGE = re.compile(r"(\d+)-(\d*)\Z")


@dataclass(frozen=True)
class Credentials:
    client_id: str
    username: str
    password: str


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


Handler = Callable[[Request, Engine, documents.Links], Awaitable[Response]]


@dataclass(frozen=True)
class Served:
    """One request as the simulator saw it, for tests that count calls."""

    method: str
    path: str
    status: int
    body: Any = None


def create_app(
    engine: Engine,
    credentials: Credentials,
    limiter: RateLimiter,
    faults: Faults,
    log: list[Served] | None = None,
    *,
    page_size: int = spec.MAX_PAGE_SIZE,
) -> Starlette:
    """The ASGI app serving ``engine`` under ``/connectedcar/v3``; every request is appended to ``log``.

    ``page_size`` is the size of a page when the client does not ask for one.
    """

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            verdict = limiter.check()
            try:
                _authenticate(request, credentials)
                if "fid" in request.path_params and request.path_params["fid"] != engine.fleet_id:
                    raise ApiError(
                        403, f"fleet {request.path_params.get('fid')} is not accessible with these credentials"
                    )
                if faults.take("rate_limit_storm"):
                    raise ApiError(429, "too many requests", {"Retry-After": "1"})
                if not verdict.allowed:
                    raise ApiError(429, "rate limit exceeded", {"Retry-After": str(verdict.retry_after)})
                if faults.take("server_errors"):
                    raise ApiError(faults.server_error_status, "the service is unavailable, try again")
                refused = faults.refused(request.method, request.url.path)
                if refused is not None:
                    raise ApiError(refused, "refused by a fault switched on for this path")
                if faults.slow:
                    await asyncio.sleep(faults.slow)
                base = str(request.base_url).rstrip("/") + spec.BASE_PATH
                links = documents.Links(base, engine.fleet_id, page_size=page_size, relative=faults.relative_links)
                response = await handler(request, engine, links)
            except ApiError as exc:
                response = _error(exc.status, exc.message, exc.headers)
            except (Invalid, Refused) as exc:
                response = _error(400, str(exc))
            except NotFound as exc:
                response = _error(404, str(exc))
            response.headers.update(verdict.headers)
            if log is not None:
                log.append(Served(request.method, request.url.path, response.status_code, await _logged(request)))
            return response

        return run

    async def post_remote(request: Request, engine: Engine, links: documents.Links) -> Response:
        if faults.posts_over_quota:
            raise ApiError(429, "daily quota of remote actions exceeded", {"Retry-After": str(QUOTA_RETRY_AFTER)})
        body = await _json(request)
        p = request.path_params
        action = engine.post_remote(p["vid"], p["cbid"], body)
        if faults.take("late_posts"):
            await asyncio.sleep(faults.late_delay)  # created, but the answer comes too late
        return _hal(documents.remote_ref(links, action), 202)

    base = spec.BASE_PATH + "/fleets/{fid}"
    routes = [
        Route(spec.BASE_PATH + "/vehicles/{vin}", endpoint(_capabilities)),
        Route(base + "/vehicles", endpoint(_vehicles)),
        Route(base + "/vehicles/{vid}", endpoint(_vehicle)),
        Route(base + "/vehicles/{vid}/status", endpoint(_status)),
        Route(base + "/status", endpoint(_fleet_status)),
        Route(base + "/remote/callbacks", endpoint(_callbacks), methods=["GET", "POST"]),
        Route(base + "/remote/callbacks/{cbid}", endpoint(_callback), methods=["GET", "PUT", "DELETE"]),
        Route(base + "/remote/callbacks/{cbid}/status", endpoint(_callback_status), methods=["PUT"]),
        Route(base + "/vehicles/{vid}/callbacks/{cbid}/remotes", endpoint(_remotes), methods=["GET"]),
        Route(base + "/vehicles/{vid}/callbacks/{cbid}/remotes", endpoint(post_remote), methods=["POST"]),
        Route(base + "/vehicles/{vid}/callbacks/{cbid}/remotes/{rid}", endpoint(_remote)),
    ]
    app = Starlette(routes=routes)

    async def unrouted(request: Request, exc: Exception) -> Response:
        """No such route (404) or method (405): the error body and, as on every answer, the rate headers."""
        status = getattr(exc, "status_code", 404)
        what = "resource" if status == 404 else f"{request.method} on"
        response = _error(status, f"no such {what} {request.url.path}")
        response.headers.update(limiter.check().headers)
        return response

    app.add_exception_handler(404, unrouted)
    app.add_exception_handler(405, unrouted)
    return app


def _authenticate(request: Request, credentials: Credentials) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    if scheme.lower() != "basic" or not (
        secrets.compare_digest(user, credentials.username) and secrets.compare_digest(password, credentials.password)
    ):
        raise ApiError(401, "authentication failed: HTTP Basic credentials missing or wrong")
    client_id = request.query_params.get("client_id", "")
    if not secrets.compare_digest(client_id, credentials.client_id):
        raise ApiError(401, "authentication failed: client_id missing or unknown")


async def _vehicles(request: Request, engine: Engine, links: documents.Links) -> Response:
    found = engine.list_vehicles(request.query_params.get("vinPrefix", ""))
    return _page(request, links, "vehicles", found, lambda v: documents.vehicle_item(links, v))


async def _capabilities(request: Request, engine: Engine, links: documents.Links) -> Response:
    """GET /vehicles/{vin}: not under a fleet; a vehicle of another fleet is not found."""
    vehicle = engine.by_vin(request.path_params["vin"])
    onboard = "onboardCapabilities" in request.query_params.getlist("extension")
    return _hal(documents.capabilities(links, vehicle, onboard=onboard))


async def _vehicle(request: Request, engine: Engine, links: documents.Links) -> Response:
    item = documents.vehicle_item(links, engine.vehicle(request.path_params["vid"]))
    return _hal(item)


async def _status(request: Request, engine: Engine, links: documents.Links) -> Response:
    return _hal(documents.status(links, *engine.report(engine.vehicle(request.path_params["vid"]))))


async def _fleet_status(request: Request, engine: Engine, links: documents.Links) -> Response:
    found = engine.list_vehicles()
    return _page(request, links, "status", found, lambda v: documents.status(links, *engine.report(v)))


async def _callbacks(request: Request, engine: Engine, links: documents.Links) -> Response:
    if request.method == "POST":
        callback = engine.create_callback(await _json(request))
        return _hal(documents.callback_ref(links, callback), 200)
    remote_type = request.query_params.get("remoteType", "")
    found = engine.list_callbacks(remote_type)
    return _page(request, links, "callbacks", found, lambda c: documents.callback(links, c))


async def _callback(request: Request, engine: Engine, links: documents.Links) -> Response:
    cbid = request.path_params["cbid"]
    if request.method == "PUT":
        return _hal(documents.callback_ref(links, engine.update_callback(cbid, await _json(request))), 202)
    if request.method == "DELETE":
        engine.delete_callback(cbid)
        return Response(status_code=204)
    return _hal(documents.callback(links, engine.callback(cbid)))


async def _callback_status(request: Request, engine: Engine, links: documents.Links) -> Response:
    callback = engine.set_callback_status(request.path_params["cbid"], await _json(request))
    return _hal(documents.callback_ref(links, callback), 202)


async def _remotes(request: Request, engine: Engine, links: documents.Links) -> Response:
    p = request.path_params
    found = engine.list_actions(p["vid"], p["cbid"])
    return _page(request, links, "remoteActions", found, lambda a: documents.remote_action(links, a))


async def _remote(request: Request, engine: Engine, links: documents.Links) -> Response:
    p = request.path_params
    return _hal(documents.remote_action(links, engine.action(p["vid"], p["cbid"], p["rid"])))


def _page(
    request: Request, links: documents.Links, name: str, items: Sequence[Any], render: Callable[[Any], dict[str, Any]]
) -> Response:
    """A CollectionResult page of ``items`` (each shown by ``render``, only those on the page).

    ``_links.next`` carries the opaque token of the next one.
    """
    query = request.query_params
    try:
        size = int(query.get("pageSize", links.page_size))
    except ValueError:
        size = 0
    if not 1 <= size <= spec.MAX_PAGE_SIZE:
        raise ApiError(400, f"pageSize must be from 1 to {spec.MAX_PAGE_SIZE}")
    if "indexRange" in query:
        match = _RANGE.match(query["indexRange"])
        if not match:
            raise ApiError(400, "indexRange must look like 0-9 or 5-")
        first, last = int(match.group(1)), match.group(2)
        items = items[first : int(last) + 1 if last else None]
    offset = _offset(query.get("pageToken"))
    chunk = items[offset : offset + size]
    path = str(request.url.path)
    kept = {k: v for k, v in query.items() if k not in ("pageToken", "client_id")}

    def href(extra: dict[str, str]) -> dict[str, str]:
        params = "&".join(f"{k}={v}" for k, v in {**kept, **extra}.items())
        root = "" if links.relative else f"{request.base_url}".rstrip("/")
        return {"href": root + path + (f"?{params}" if params else "")}

    page_links: dict[str, Any] = {"self": href({"pageToken": _token(offset)} if offset else {}), "first": href({})}
    if offset + size < len(items):
        page_links["next"] = href({"pageToken": _token(offset + size)})
    if offset:
        page_links["prev"] = href({"pageToken": _token(max(0, offset - size))} if offset > size else {})
    body = {
        "_links": page_links,
        "total": len(items),
        "totalPage": max(1, math.ceil(len(items) / size)),
        "currentPage": offset // size + 1,
        "_embedded": {name: [render(item) for item in chunk]},
    }
    return _hal(body)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise ApiError(400, "pageToken is not one this server issued")


async def _logged(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None


def _hal(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=HAL)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"code": status * 100, "uuid": str(uuid.uuid4()), "message": message, "timestamp": iso_now()}
    return JSONResponse(body, status_code=status, headers=headers)


def iso_now() -> str:
    import time

    return iso(time.time())
