"""``reconciler webhook``: receive the API's remote events and record them in the state."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ..core.model import Desired
from ..errors import ReconcilerError
from ..fleetfile import loader
from ..service.webhook_receiver import MAX_BODY, beating, create_app
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
) -> int:
    from ..service.metrics import serving

    desired = loader.read(fleet_file, shell.env)
    sock = listen(host, port)  # before saying "listening": a port in use is an error, not a later surprise
    store = open_store(state_url(fleet_file, shell.env), fleet=desired.fleet)
    try:
        with serving(metrics_host, metrics_port, lambda url: shell.stdout.write(f"metrics at {url}\n")) as metrics:
            _receive(desired, store, sock, host, max_body, shell.stdout, metrics)
    finally:
        sock.close()
        store.close()
    return 0


def _receive(
    desired: Desired,
    store: StateStore,
    sock: socket.socket,
    host: str,
    max_body: int,
    out: TextIO,
    metrics: Metrics | None,
) -> None:
    import uvicorn

    count = _counter(metrics, store) if metrics is not None else None
    app = create_app(desired, store, max_body=max_body or MAX_BODY, count=count)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bound = sock.getsockname()[1]
    out.write(f"reconciler webhook receiver listening on http://{host}:{bound}/ for fleet {desired.fleet}\n")
    out.flush()
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a clean stop
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=15)
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
