"""The HTTP client of the Fleet Owner API.

Every call carries ``client_id``, HTTP Basic credentials and, when configured,
the TLS client certificate; server certificates are always verified (there is
no switch to turn that off). GET, PUT and DELETE are retried with jittered
backoff on 5xx and network errors; a POST never is once it may have reached
the server: its outcome is then unknown (``UnknownOutcome``) and the caller
resolves it by looking up the key it put in the body. A 429 is waited out
(``Retry-After``) for every method, since nothing was done.
"""

from __future__ import annotations

import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .. import __version__
from ..errors import (
    ApiError,
    AuthError,
    Cancelled,
    NotFoundError,
    RateLimitedError,
    TLSError,
    UnknownOutcome,
    UnreachableError,
)
from .pacing import Pacer
from .settings import ApiSettings

RETRIES = 5
MAX_WAITS = 30  # 429s in a row for one call before giving up
MAX_RETRY_AFTER = 120.0  # the longest 429 wait, unless the caller sets its own (apply: its --timeout)
USER_AGENT = f"reconciler/{__version__}"
# The HTTP trace (``-v``): one line a request, at DEBUG; never a credential (client_id shows as ***, no
# header, no body). httpx's own "httpx" logger is never turned on: it logs URLs with the client_id.
TRACE = logging.getLogger("reconciler.http")
_SECRET_PARAMS = ("client_id", "password", "token", "secret", "key")


class _ClientAuth(httpx.BasicAuth):
    """HTTP Basic plus ``client_id`` in the query, merged into whatever query the URL has.

    (httpx's client-level ``params`` would replace the query of ``_links.next``.)
    """

    def __init__(self, settings: ApiSettings) -> None:
        super().__init__(settings.username, settings.password)
        self.client_id = settings.client_id

    def auth_flow(self, request: httpx.Request) -> Any:
        if "client_id" not in request.url.params:
            request.url = request.url.copy_merge_params({"client_id": self.client_id})
        yield from super().auth_flow(request)


class FleetApi:
    """Calls to one API base URL; thread-safe (one connection pool, one pacer)."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        cancel: threading.Event | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        """``cancel``, once set, ends every wait and refuses to send anything more (``Cancelled``).

        A 429 whose ``Retry-After`` is longer than ``max_retry_after`` is not
        waited out: it raises ``RateLimitedError`` (a spent quota).
        """
        self.settings = settings
        self.max_retry_after = max_retry_after
        self.cancel = cancel or threading.Event()
        self._sleep = sleep or self._wait
        self.pacer = Pacer(clock=clock, sleep=self._sleep, cancelled=self.cancel.is_set)
        self._jitter = jitter
        self.calls = 0
        self.counts: dict[str, int] = {}
        self.answers: dict[tuple[str, str], int] = {}  # (method, HTTP status or "error") -> how many
        self.started = clock()
        self.throttled: list[float] = []  # seconds after start of each 429 answer
        self._clock = clock
        self._count_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=settings.base_url,
            auth=_ClientAuth(settings),
            verify=_tls_context(settings),
            timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/hal+json, application/json"},
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FleetApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # the verbs

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params, retry=True)

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", path, json=body, retry=True)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path, retry=True)

    def post(self, path: str, body: Any) -> Any:
        """POST once; ``UnknownOutcome`` when it may have been carried out without our knowing."""
        return self._call("POST", path, json=body, retry=False)

    def pages(self, path: str, name: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a collection, page after page through ``_links.next``.

        A next link may be absolute or a reference (``/connectedcar/v3/…?pageToken=…``,
        ``?pageToken=…``): it is resolved against the URL of the page it came from
        (RFC 3986), and must stay on the API's host, where the credentials go.
        Neither ``total`` nor page sizes are trusted: paging stops when there is
        no next link (or one that was already followed).
        """
        url: httpx.URL | None = self._http.build_request("GET", path, params=params).url
        seen: set[str] = set()
        while url is not None and str(url) not in seen:
            seen.add(str(url))
            page = self._call("GET", str(url), retry=True)
            items = (page.get("_embedded") or {}).get(name) if isinstance(page, dict) else None
            yield from items or []
            href = ((page.get("_links") or {}).get("next") or {}).get("href") if isinstance(page, dict) else None
            url = self._next_page(url, href) if isinstance(href, str) and href else None

    def _next_page(self, current: httpx.URL, href: str) -> httpx.URL:
        following = current.join(href)
        base = self._http.base_url
        if (following.scheme, following.host, following.port) != (base.scheme, base.host, base.port):
            raise ApiError(
                200,
                f"the next page link leads to another server ({following.scheme}://{following.host}); "
                "not followed, the credentials go only to the API",
                call=f"GET {_short(str(current))}",
            )
        return following

    # the machinery

    def _call(self, method: str, path: str, *, retry: bool, **kwargs: Any) -> Any:
        call = f"{method} {_short(path)}"
        attempt = 0  # tries after errors; waits for a 429 are counted apart
        waits = 0
        while True:
            self.pacer.acquire()
            if self.cancel.is_set():  # interrupted: nothing more leaves, not even a GET
                raise Cancelled(f"{call}: interrupted before it was sent")
            self._count(method)
            try:
                response = self._send(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                refused = _certificate_refused(exc)
                if refused is not None:  # retrying cannot fix a certificate
                    self._answered(method, "error")
                    raise TLSError(f"{call}: {self._certificate_hint(refused)}") from exc
                # Nothing reached the server: safe to try again, even for a POST.
                self._answered(method, "error")
                attempt += 1
                if attempt <= RETRIES:
                    self._backoff(attempt)
                    continue
                raise UnreachableError(f"{call}: cannot connect to {self.settings.base_url}: {exc}") from exc
            except httpx.HTTPError as exc:
                self._answered(method, "error")
                if not retry:
                    raise UnknownOutcome(f"{call}: the answer was lost ({type(exc).__name__})") from exc
                attempt += 1
                if attempt <= RETRIES:
                    self._backoff(attempt)
                    continue
                raise UnreachableError(f"{call}: no answer from the API ({type(exc).__name__}: {exc})") from exc
            self.pacer.observe(response.headers)
            self._answered(method, str(response.status_code))
            if response.status_code == 429:
                self.throttled.append(self._clock() - self.started)
                wait = _retry_after(response)
                waits += 1
                if wait > self.max_retry_after or waits > MAX_WAITS:
                    raise _api_error(response, call, RateLimitedError)
                self.pacer.block(wait)
                continue
            if response.status_code >= 500:
                if not retry:
                    raise UnknownOutcome(f"{call}: the API answered {response.status_code}; it may have acted")
                attempt += 1
                if attempt <= RETRIES:
                    self._backoff(attempt)
                    continue
            if response.status_code >= 400:
                kind = {401: AuthError, 403: AuthError, 404: NotFoundError}.get(response.status_code, ApiError)
                raise _api_error(response, call, kind)
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise ApiError(response.status_code, "the answer is not JSON", call=call) from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; traced when the trace is on (``-v``)."""
        if not TRACE.isEnabledFor(logging.DEBUG):
            return self._http.request(method, path, **kwargs)
        request = self._http.build_request(method, path, **kwargs)
        started = time.monotonic()
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            elapsed = round((time.monotonic() - started) * 1000)
            TRACE.debug("%s %s: %s after %d ms", method, _redacted(request.url), type(exc).__name__, elapsed)
            raise
        elapsed = round((time.monotonic() - started) * 1000)
        sent = f", {len(request.content)} B sent" if request.content else ""
        waits = f", Retry-After {response.headers['Retry-After']}" if "Retry-After" in response.headers else ""
        url = _redacted(response.request.url)
        TRACE.debug(
            "%s %s: %d in %d ms%s, %d B received%s",
            *(method, url, response.status_code, elapsed, sent, len(response.content), waits),
        )
        return response

    def _answered(self, method: str, code: str) -> None:
        with self._count_lock:
            self.answers[method, code] = self.answers.get((method, code), 0) + 1

    def _certificate_hint(self, error: ssl.SSLError) -> str:
        """What a TLS failure means, and what to check (never "retry": a certificate does not heal)."""
        settings = self.settings
        reason = getattr(error, "verify_message", "") or getattr(error, "reason", "") or str(error)
        bundle = (
            f"RECONCILER_CA_BUNDLE ({settings.ca_bundle}) must hold the CA that signed the API's certificate"
            if settings.ca_bundle
            else "the API's certificate must chain to a CA the system trusts, or set RECONCILER_CA_BUNDLE to its CA"
        )
        if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error):
            return (
                f"the API's TLS certificate at {settings.base_url} was refused ({reason}): {bundle}; check the "
                "certificate's name, dates and extensions (a simulator made by an older version: delete its "
                "tls/ folder and start it again)"
            )
        return (
            f"the TLS handshake with {settings.base_url} failed ({reason}): check RECONCILER_CLIENT_CERT and "
            f"RECONCILER_CLIENT_KEY (the client certificate the API expects), and {bundle}"
        )

    def usage(self) -> str:
        """``N calls (M POST, …), K answered 429``: for the end of a run."""
        methods = ", ".join(f"{n} {m}" for m, n in sorted(self.counts.items()))
        throttled = f"{len(self.throttled)} answered 429"
        if self.throttled:
            throttled += f" (the last {self.throttled[-1]:.1f} s after the start)"
        return f"{self.calls} calls ({methods or 'none'}), {throttled}"

    def _wait(self, seconds: float) -> None:
        self.cancel.wait(seconds)  # wakes up at once when the run is interrupted

    def _backoff(self, attempt: int) -> None:
        """Exponential, with full jitter: 0.5 s, 1 s, 2 s … times a random factor in [0.5, 1.5)."""
        self._sleep(min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + self._jitter()))

    def _count(self, method: str) -> None:
        with self._count_lock:
            self.calls += 1
            self.counts[method] = self.counts.get(method, 0) + 1


def _redacted(url: httpx.URL) -> str:
    """The URL for the trace: every credential-like query value (client_id above all) as ***."""
    params = url.params.multi_items()
    if not params:
        return str(url)
    shown = [f"{k}={'***' if any(s in k.lower() for s in _SECRET_PARAMS) else v}" for k, v in params]
    return f"{url.copy_with(query=None)}?{'&'.join(shown)}"


def _certificate_refused(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a failed connection, when it is one (a certificate refused, a handshake refused)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or ("SSL" in text and "alert" in text):
        return ssl.SSLError(text)
    return None


def _tls_context(settings: ApiSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_bundle)
    if settings.client_cert and settings.client_key:
        try:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise UnreachableError(f"cannot load the client certificate {settings.client_cert}: {exc}") from exc
    return context


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait: ``Retry-After`` as seconds or as an HTTP date (RFC 9110), 1 s when it says neither.

    A date is counted from the answer's own ``Date`` when it has one: the
    server's clock and ours need not agree.
    """
    text = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(text)) if math.isfinite(float(text)) else 1.0
    except ValueError:
        pass
    until = _http_date(text)
    if until is None:
        return 1.0
    sent = _http_date(response.headers.get("Date", "")) or datetime.now(UTC)
    return max(0.0, (until - sent).total_seconds())


def _http_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _api_error(response: httpx.Response, call: str, kind: type[ApiError]) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    return kind(
        response.status_code,
        str(body.get("message") or response.reason_phrase or "error"),
        code=code if isinstance(code, int) else None,
        uuid=str(body.get("uuid") or ""),
        call=call,
    )


def _short(path: str) -> str:
    """The path without scheme, host and query, for messages."""
    text = str(httpx.URL(path).path) if "://" in path else path.split("?", 1)[0]
    return text
