"""The API client against a transport that plays the API: paging, errors, retries, pacing."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.api.client import FleetApi
from reconciler.api.settings import ApiSettings
from reconciler.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    TLSError,
    UnknownOutcome,
    UnreachableError,
)

SETTINGS = ApiSettings("https://api.test/connectedcar/v3", "cid", "user", "pw")


class FakeTime:
    """A clock that moves only when the client sleeps; every sleep is recorded."""

    def __init__(self, sleeps: list[float]) -> None:
        self.now = 0.0
        self.sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def api(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float] | None = None, **extra: Any
) -> FleetApi:
    fake = FakeTime(sleeps if sleeps is not None else [])
    return FleetApi(
        SETTINGS,
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=lambda: fake.now,
        jitter=lambda: 0.5,
        **extra,
    )


def error(status: int, code: int, message: str = "nope", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"code": code, "uuid": "u-1", "message": message, "timestamp": "2026-01-01T00:00:00Z"}
    return httpx.Response(status, json=body, headers=headers)


def test_every_call_carries_client_id_and_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    api(handler).get("/fleets/F/vehicles", {"vinPrefix": "VF3"})
    [request] = seen
    assert request.url.params["client_id"] == "cid" and request.url.params["vinPrefix"] == "VF3"
    assert request.headers["authorization"].startswith("Basic ")


def test_paging_follows_next_links_and_trusts_no_totals() -> None:
    pages = {
        None: {
            "total": 1,
            "_embedded": {"vehicles": [{"vin": "A"}]},
            "_links": {"next": {"href": "https://api.test/connectedcar/v3/fleets/F/vehicles?pageToken=2&x=1"}},
        },
        "2": {
            "total": 1,
            "_embedded": {"vehicles": [{"vin": "B"}, {"vin": "C"}]},
            "_links": {"next": {"href": "https://api.test/connectedcar/v3/fleets/F/vehicles?pageToken=3"}},
        },
        "3": {
            "_embedded": {},
            "_links": {"next": {"href": "https://api.test/connectedcar/v3/fleets/F/vehicles?pageToken=3"}},
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["client_id"] == "cid"  # kept beside the next link's own query
        return httpx.Response(200, json=pages[request.url.params.get("pageToken")])

    assert [v["vin"] for v in api(handler).pages("/fleets/F/vehicles", "vehicles")] == ["A", "B", "C"]


@pytest.mark.parametrize(
    "next_href",
    [
        "https://api.test/connectedcar/v3/fleets/F/vehicles?pageToken=2",  # absolute
        "/connectedcar/v3/fleets/F/vehicles?pageToken=2",  # host-relative, as HAL allows
        "vehicles?pageToken=2",  # path-relative
        "?pageToken=2",  # query only
        "//api.test/connectedcar/v3/fleets/F/vehicles?pageToken=2",  # scheme-relative
    ],
)
def test_next_links_are_resolved_against_the_page_they_came_from(next_href: str) -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.params.get("pageToken") == "2":
            return httpx.Response(200, json={"_embedded": {"vehicles": [{"vin": "B"}]}, "_links": {}})
        page = {"_embedded": {"vehicles": [{"vin": "A"}]}, "_links": {"next": {"href": next_href}}}
        return httpx.Response(200, json=page)

    assert [v["vin"] for v in api(handler).pages("/fleets/F/vehicles", "vehicles")] == ["A", "B"]
    assert paths == ["/connectedcar/v3/fleets/F/vehicles"] * 2


@pytest.mark.parametrize("next_href", ["https://evil.test/steal?pageToken=2", "http://api.test/connectedcar/v3/x"])
def test_a_next_link_to_another_server_is_not_followed(next_href: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(
            200, json={"_embedded": {"vehicles": [{"vin": "A"}]}, "_links": {"next": {"href": next_href}}}
        )

    with pytest.raises(ApiError, match="another server"):
        list(api(handler).pages("/fleets/F/vehicles", "vehicles"))
    assert hosts == ["api.test"]


@pytest.mark.parametrize(
    ("status", "kind"), [(400, ApiError), (401, AuthError), (403, AuthError), (404, NotFoundError)]
)
def test_errors_carry_the_api_code_and_uuid(status: int, kind: type[ApiError]) -> None:
    with pytest.raises(kind) as caught:
        api(lambda r: error(status, status * 100 + 1, "bad thing")).get("/fleets/F/vehicles")
    message = str(caught.value)
    assert "bad thing" in message and f"code {status * 100 + 1}" in message and "uuid u-1" in message
    assert "GET /fleets/F/vehicles" in message


def test_429_is_waited_out_for_every_method() -> None:
    answers = [error(429, 42900, headers={"Retry-After": "3"}), httpx.Response(202, json={"remoteActionId": "r"})]
    sleeps: list[float] = []
    assert api(lambda r: answers.pop(0), sleeps).post("/x", {})["remoteActionId"] == "r"
    assert sum(sleeps) >= 3


@pytest.mark.parametrize(
    ("headers", "waited"),
    [
        ({"Retry-After": "Wed, 02 Dec 2026 10:00:07 GMT", "Date": "Wed, 02 Dec 2026 10:00:00 GMT"}, 7.0),
        ({"Retry-After": "Wed, 02 Dec 2026 09:59:00 GMT", "Date": "Wed, 02 Dec 2026 10:00:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, 1.0),
        ({"Retry-After": "nan"}, 1.0),
    ],
)
def test_retry_after_may_be_an_http_date(headers: dict[str, str], waited: float) -> None:
    answers = [error(429, 42900, headers=headers), httpx.Response(200, json={})]
    sleeps: list[float] = []
    api(lambda r: answers.pop(0), sleeps).get("/x")
    assert sum(sleeps) == pytest.approx(waited, abs=0.1)  # and the pacing, a few hundredths


def test_a_retry_after_date_too_far_gives_up() -> None:
    headers = {"Retry-After": "Thu, 03 Dec 2026 10:00:00 GMT", "Date": "Wed, 02 Dec 2026 10:00:00 GMT"}
    with pytest.raises(RateLimitedError):
        api(lambda r: error(429, 42900, headers=headers)).get("/x")


def test_429_with_a_retry_after_too_long_gives_up() -> None:
    with pytest.raises(RateLimitedError):
        api(lambda r: error(429, 42900, headers={"Retry-After": "86400"})).get("/x")


def test_a_retry_after_that_outlasts_the_runs_timeout_is_not_waited_out() -> None:
    answers = iter([error(429, 42900, headers={"Retry-After": "200"}), httpx.Response(200, json={})])
    sleeps: list[float] = []
    assert api(lambda r: next(answers), sleeps, max_retry_after=300).get("/x") == {}  # within apply's 300 s
    assert sum(sleeps) >= 200
    with pytest.raises(RateLimitedError):
        api(lambda r: error(429, 42900, headers={"Retry-After": "40"}), max_retry_after=30).get("/x")


def test_5xx_on_get_is_retried_with_backoff() -> None:
    answers = [error(503, 50300), error(502, 50200), httpx.Response(200, json={"ok": True})]
    sleeps: list[float] = []
    assert api(lambda r: answers.pop(0), sleeps).get("/x") == {"ok": True}
    assert sleeps == [0.5, 1.0]  # 0.5 s then 1 s, times the jitter factor (1.0 here)


def test_5xx_on_post_is_an_unknown_outcome_not_a_retry() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return error(500, 50000)

    with pytest.raises(UnknownOutcome):
        api(handler).post("/remotes", {"label": "k"})
    assert len(calls) == 1


def test_lost_answer_of_a_post_is_unknown_outcome() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(UnknownOutcome):
        api(handler).post("/remotes", {})


def test_connection_refused_is_retried_even_for_post_then_reported() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UnreachableError, match="cannot connect"):
        api(handler).post("/remotes", {})
    assert len(calls) == 6


def test_pacing_follows_the_rate_limit_headers() -> None:
    headers = {"X-RateLimit-Limit-Second": "2", "X-RateLimit-Remaining-Second": "0"}
    sleeps: list[float] = []
    client = api(lambda r: httpx.Response(200, json={}, headers=headers), sleeps)
    for _ in range(5):
        client.get("/x")
    assert client.pacer.rate == pytest.approx(2 * 0.97)
    # after the first answer said nothing is left, about one request per half second
    assert sum(sleeps) == pytest.approx(4 / (2 * 0.97))


def test_a_per_minute_limit_tighter_than_the_per_second_one_sets_the_pace() -> None:
    headers = {"X-RateLimit-Limit-Second": "10", "X-RateLimit-Limit-Minute": "120"}
    client = api(lambda r: httpx.Response(200, json={}, headers=headers))
    client.get("/x")
    assert client.pacer.rate == pytest.approx(2 * 0.97)


def test_a_refused_certificate_is_said_at_once_with_what_to_check() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        cause = ssl.SSLCertVerificationError("certificate verify failed: Missing Authority Key Identifier")
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from cause

    with pytest.raises(TLSError) as caught:
        api(handler).get("/x")
    assert calls == ["GET"]  # not retried: a certificate does not heal
    message = str(caught.value)
    assert "TLS certificate" in message and "RECONCILER_CA_BUNDLE" in message and "retry" not in message.lower()
