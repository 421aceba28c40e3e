"""``reconciler webhook``: receive the API's remote events and record them in the state.

It logs JSON lines (``--log-format text`` for people) on stdout, and nothing
else anywhere: its start, the metrics' address, every refused request, a
store that failed, its stop; an error that keeps it from starting is one such
line on stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.model import Desired
from ..errors import ReconcilerError
from ..fleetfile import loader
from ..service.logs import EventLog, capturing, refused_to_start
from ..service.webhook_receiver import MAX_BODY, beating, create_app, state_answers
from ..state.backends import open_store, state_url
from ..state.base import StateStore

if TYPE_CHECKING:
    from ..service.metrics import Metrics
from .shell import Shell


def run(
    shell: Shell,
    fleet_file: str,
    *,
    host: str,
    port: int,
    max_body: int,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    log_format: str = "json",
) -> int:
    fleet = None
    try:
        desired = loader.read(fleet_file, shell.env)
        fleet = desired.fleet
        log = EventLog(shell.stdout, log_format, fleet=fleet)
        return _run(shell, fleet_file, desired, log, host, port, max_body, metrics_host, metrics_port)
    except ReconcilerError as exc:
        return refused_to_start(shell.stderr, log_format, fleet, exc)


def _run(
    shell: Shell,
    fleet_file: str,
    desired: Desired,
    log: EventLog,
    host: str,
    port: int,
    max_body: int,
    metrics_host: str,
    metrics_port: int | None,
) -> int:
    from ..service.metrics import serving

    sock = listen(host, port)  # before saying "listening": a port in use is an error, not a later surprise
    try:
        store = open_store(state_url(fleet_file, shell.env), fleet=desired.fleet)
        try:
            with (
                capturing(log),
                serving(
                    metrics_host, metrics_port, lambda url: log.info("metrics", url=url), lambda: state_answers(store)
                ) as metrics,
            ):
                _receive(desired, store, sock, host, max_body, log, metrics)
        finally:
            store.close()
    finally:
        sock.close()
    log.info("stop", code=0)
    return 0


def _receive(
    desired: Desired,
    store: StateStore,
    sock: socket.socket,
    host: str,
    max_body: int,
    log: EventLog,
    metrics: Metrics | None,
) -> None:
    import uvicorn

    count = _counter(metrics, store) if metrics is not None else None
    app = create_app(desired, store, max_body=max_body or MAX_BODY, count=count)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    log.info("listening", url=f"http://{shown}:{bound}/", health=f"http://{shown}:{bound}/healthz")
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a clean stop
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,  # its loggers are captured as events: no handler of its own
        access_log=False,
        lifespan="off",
        timeout_keep_alive=15,
        timeout_graceful_shutdown=5,  # SIGTERM: requests in progress get 5 s, well inside a grace period
    )
    instance = f"{host}:{bound} pid {os.getpid()} on {socket.gethostname()}"
    with beating(store, instance), contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


RECOUNT_EVERY = 30.0  # seconds between full counts of the pending actions (apply adds some meanwhile)


def _counter(
    metrics: Metrics, store: StateStore, clock: Callable[[], float] = time.monotonic
) -> Callable[[str, int], None]:
    """What the receiver tells, counted; the pending actions kept by what ended, counted again now and then.

    Counting the journal after every event would cost a query per event: the
    gauge goes down by the actions the events ended, and is read again from
    the state every RECOUNT_EVERY seconds (to see what apply sent meanwhile).
    """
    counted_at = [clock()]
    pending = [store.count_pending()]
    metrics.pending.set(pending[0])

    def count(result: str, n: int) -> None:
        if result == "ended":
            if clock() - counted_at[0] >= RECOUNT_EVERY:
                counted_at[0] = clock()
                pending[0] = store.count_pending()
            else:
                pending[0] = max(0, pending[0] - n)
            metrics.pending.set(pending[0])
            return
        metrics.webhook_events_counted(result, n)

    return count


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a clear error (port in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ReconcilerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ReconcilerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
