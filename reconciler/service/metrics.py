"""Prometheus metrics for ``watch`` and ``webhook`` (DESIGN §9.4), served at ``/metrics``, with the probes.

Each process has its own registry: the names below, plus the process and
platform collectors; no ``_created`` series (they double every counter's
series for a timestamp nobody graphs). No label carries a VIN or an address (a
100,000-vehicle fleet would make as many series): actions are counted by
remote type and result, held addresses by reason. Counters add up over the
runs of one process; the gauges say how the last run left things.

The same port answers ``/healthz`` (the process serves: 200) and ``/readyz``
(200 when the check the daemon gives says ready, else 503 with the reason);
any other path is a 404.
"""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from .. import __version__
from ..core import parts
from ..core.outcomes import Outcome
from ..core.vocabulary import Action, Result, When
from ..errors import ReconcilerError

ACTION_RESULTS = ("confirmed", "failed", "pending", "skipped", "held")
# How each outcome of the report is counted (DESIGN §9.4 names five results).
_RESULT = {
    Result.CONFIRMED: "confirmed",
    Result.ACCEPTED: "pending",  # accepted by the API, its outcome not known yet (--no-wait)
    Result.PENDING: "pending",
    Result.FAILED: "failed",
    Result.SKIPPED: "skipped",
    Result.CANNOT: "skipped",  # the vehicle cannot take it: never sent
    Result.HELD: "held",
    Result.WAITS: "held",
}
HELD_REASONS = tuple(When)
CHANGE_ACTIONS = tuple(Action)
REMOTE_TYPES = (*parts.REMOTE_TYPES, "callback")  # the label values of reconciler_actions_total
WEBHOOK_RESULTS = ("recorded", "duplicate", "refused", "error")
RUN_SECONDS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)  # a run's duration: seconds to an hour
# Whether the daemon is ready: (True, "") or (False, what is wrong).
Readiness = Callable[[], tuple[bool, str]]


def always_ready() -> tuple[bool, str]:
    return True, ""


@contextmanager
def serving(
    host: str, port: int | None, announce: Callable[[str], object], ready: Readiness = always_ready
) -> Iterator[Metrics | None]:
    """Metrics served on ``host:port`` while the block runs (``announce`` is told the URL); None without a port."""
    if port is None:
        yield None
        return
    metrics = Metrics()
    announce(metrics.serve(host, port, ready))
    try:
        yield metrics
    finally:
        metrics.close()


class Metrics:
    """One process's metrics, and the HTTP server that serves them."""

    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        registry = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        build = Gauge(
            "reconciler_build_info",
            "Always 1: the reconciler version and the Python it runs on, as labels.",
            ["version", "python"],
            registry=registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        self.runs = Counter(
            "reconciler_runs", "Runs (refresh, plan, apply), by exit code.", ["code"], registry=registry
        )
        self.run_seconds = Histogram(
            "reconciler_run_duration_seconds",
            "How long each run (refresh, plan, apply) took.",
            buckets=RUN_SECONDS,
            registry=registry,
        )
        self.changes = Counter(
            "reconciler_changes", "Changes sent, by action (create, update, …).", ["action"], registry=registry
        )
        self.actions = Counter(
            "reconciler_actions",
            "Remote actions and callback changes, by remote type and result "
            "(confirmed, failed, pending, skipped, held).",
            ["remote_type", "result"],
            registry=registry,
        )
        self.drift = Gauge(
            "reconciler_drift_addresses", "Addresses the last run found changed outside reconciler.", registry=registry
        )
        self.pending = Gauge(
            "reconciler_pending_actions",
            "Remote actions sent whose outcome is not known yet (read from the state).",
            registry=registry,
        )
        self.held = Gauge(
            "reconciler_held_addresses",
            "Addresses the last run left alone, by reason (pending, backoff, wave, window, halted, wakeups).",
            ["reason"],
            registry=registry,
        )
        self.requests = Counter(
            "reconciler_api_requests",
            "Fleet API answers, by method and HTTP status (error: no answer).",
            ["method", "code"],
            registry=registry,
        )
        self.halted = Gauge(
            "reconciler_rollout_halted", "1 while the rollout is halted on its failure budget.", registry=registry
        )
        self.last_run = Gauge(
            "reconciler_last_run_timestamp_seconds", "When the last run ended (Unix time).", registry=registry
        )
        self.webhook_events = Counter(
            "reconciler_webhook_events",
            "Webhook events by result: recorded, duplicate, error (not stored: the API sends them again); "
            "refused counts requests.",
            ["result"],
            registry=registry,
        )
        self.notifications = Counter(
            "reconciler_notifications",
            "Notifications posted, by result (delivered, failed).",
            ["result"],
            registry=registry,
        )
        # Known label values start at zero: a rate() needs the series before its first increment.
        for action in CHANGE_ACTIONS:
            self.changes.labels(action)
        for remote_type in REMOTE_TYPES:
            for result in ACTION_RESULTS:
                self.actions.labels(remote_type, result)
        for reason in HELD_REASONS:
            self.held.labels(reason)
        for result in WEBHOOK_RESULTS:
            self.webhook_events.labels(result)
        for result in ("delivered", "failed"):
            self.notifications.labels(result)
        self._server: Any = None

    def serve(self, host: str, port: int, ready: Readiness = always_ready) -> str:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` in a daemon thread; the URL.

        A port in use is an error.
        """
        handler = type("Handler", (_Handler,), {"registry": self.registry, "ready": staticmethod(ready)})
        try:
            server = _Server((host, port), handler)
        except (OSError, OverflowError) as exc:
            raise ReconcilerError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._server = server
        bound = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # what watch tells after each run

    def run_ended(
        self,
        *,
        code: int,
        at: float,
        outcomes: Iterable[Outcome] | None = None,
        changes: Mapping[Action, int] | None = None,
        requests: Mapping[tuple[str, str], int] | None = None,
        drift: int | None = None,
        pending: int | None = None,
        halted: bool | None = None,
        seconds: float | None = None,
    ) -> None:
        """Count a run; the gauges it knows of are set (a run that failed early, with no ``outcomes``,
        leaves them as they were)."""
        self.runs.labels(str(code)).inc()
        self.last_run.set(at)
        if seconds is not None:
            self.run_seconds.observe(seconds)
        for action, count in (changes or {}).items():
            self.changes.labels(action).inc(count)
        if outcomes is not None:
            held: dict[When, int] = dict.fromkeys(HELD_REASONS, 0)
            for outcome in outcomes:
                if not outcome.remote_type and outcome.address.startswith("vehicle."):
                    continue  # a whole vehicle the fleet does not list: no action, and no callback's either
                self.actions.labels(outcome.remote_type or "callback", _RESULT.get(outcome.result, "skipped")).inc()
                if outcome.kind:
                    held[outcome.kind] = held.get(outcome.kind, 0) + 1
            for reason, count in held.items():
                self.held.labels(reason).set(count)
        for key, count in (requests or {}).items():
            self.requests.labels(*key).inc(count)
        if drift is not None:
            self.drift.set(drift)
        if pending is not None:
            self.pending.set(pending)
        if halted is not None:
            self.halted.set(1 if halted else 0)

    def notified(self, delivered: int, failed: int) -> None:
        if delivered:
            self.notifications.labels("delivered").inc(delivered)
        if failed:
            self.notifications.labels("failed").inc(failed)

    # what the webhook receiver tells

    def webhook_events_counted(self, result: str, count: int) -> None:
        """``count`` events recorded, duplicate or failed to store; a refused request counts once."""
        if count > 0:
            self.webhook_events.labels(result).inc(count)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        import socket

        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        self.address_family = infos[0][0]
        host, port = infos[0][4][:2]
        super().__init__((str(host), int(port)), handler)


class _Handler(BaseHTTPRequestHandler):
    """``/metrics`` (Prometheus text or OpenMetrics, as the scraper asks), ``/healthz``, ``/readyz``."""

    registry: CollectorRegistry
    ready: Readiness
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.registry), content_type)
        elif path == "/healthz":
            self._send(200, b'{"status": "ok"}\n', "application/json")
        elif path == "/readyz":
            try:
                ok, why = self.ready()
            except Exception as exc:  # a probe answers, whatever the check raised
                ok, why = False, f"{type(exc).__name__}: {exc}"
            body = {"status": "ready"} if ok else {"status": "not ready", "reason": why}
            self._send(200 if ok else 503, (json.dumps(body) + "\n").encode(), "application/json")
        else:
            self._send(
                404, b'{"status": "not found", "paths": ["/metrics", "/healthz", "/readyz"]}\n', "application/json"
            )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not a log line
