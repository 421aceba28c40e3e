"""Serving the simulator over HTTPS with mutual TLS, in the foreground or in a thread."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from . import tls
from .app import Credentials, Served, create_app
from .clock import Clock, WallClock
from .engine import MIXED, Engine, generated_vins
from .faults import Faults
from .ratelimit import RateLimiter
from .spec import BASE_PATH
from .webhooks import Deliverer


@dataclass
class Settings:
    """How to start a simulator; what is not given is read from, or created in, ``directory``."""

    directory: Path
    port: int = 0
    fleet_id: str = ""
    vehicles: int = 10
    vins: list[str] = field(default_factory=list)
    latency: float = 0.2
    fail_rate: float = 0.0
    per_second: float = 50.0
    per_day: int = 1_000_000
    page_size: int = 60  # items per page when the client does not ask (the API's maximum)
    sleeping: bool = False  # vehicles sleep between contacts: the first message wakes them
    awake_for: float = 180.0  # seconds a vehicle stays awake after a contact
    wakeup_budget: int = 20  # wake-ups a vehicle allows a calendar month
    report_lag: float = 0.0  # seconds by which status documents lag behind what the vehicles hold


@dataclass(frozen=True)
class Connection:
    """What a client needs: the environment variables ``reconciler simulator`` prints."""

    url: str
    fleet: str
    credentials: Credentials
    material: tls.Material

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Connection:
        """The connection the printed variables describe (what a client of the simulator has)."""
        material = tls.Material(
            Path(env["RECONCILER_CA_BUNDLE"]),
            Path(),
            Path(),
            Path(env["RECONCILER_CLIENT_CERT"]),
            Path(env["RECONCILER_CLIENT_KEY"]),
        )
        credentials = Credentials(env["RECONCILER_CLIENT_ID"], env["RECONCILER_USERNAME"], env["RECONCILER_PASSWORD"])
        return cls(env["RECONCILER_API_URL"], env["RECONCILER_FLEET"], credentials, material)

    def environment(self) -> dict[str, str]:
        return {
            "RECONCILER_API_URL": self.url,
            "RECONCILER_CLIENT_ID": self.credentials.client_id,
            "RECONCILER_USERNAME": self.credentials.username,
            "RECONCILER_PASSWORD": self.credentials.password,
            "RECONCILER_CLIENT_CERT": str(self.material.client_cert),
            "RECONCILER_CLIENT_KEY": str(self.material.client_key),
            "RECONCILER_CA_BUNDLE": str(self.material.ca_cert),
            "RECONCILER_FLEET": self.fleet,
        }


class Simulator:
    """An engine, its HTTPS server and its webhook deliverer, started and stopped together."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or WallClock()
        directory = settings.directory
        directory.mkdir(parents=True, exist_ok=True)
        identity = _identity(directory, settings.fleet_id)
        self.credentials = Credentials(identity["client_id"], identity["username"], identity["password"])
        self.material = tls.ensure(directory)
        fresh = not (directory / "simulator.db").exists()
        self.engine = Engine(
            identity["fleet_id"],
            self.clock,
            vins=settings.vins,
            directory=directory,
            latency=settings.latency,
            fail_rate=settings.fail_rate,
            sleeping=settings.sleeping,
            awake_for=settings.awake_for,
            wakeup_budget=settings.wakeup_budget,
            report_lag=settings.report_lag,
        )
        if fresh and not settings.vins:  # a made-up fleet is a mixed one: electric, hybrid, thermal
            for number, vin in enumerate(generated_vins(settings.vehicles)):
                self.engine.add_vehicle(vin, MIXED[number % len(MIXED)])
        self.faults = Faults()
        self.limiter = RateLimiter(self.clock, settings.per_second, settings.per_day)
        self.deliverer = Deliverer(self.clock, self.engine.fleet_id)
        self.engine.sinks.append(self.deliverer.enqueue)
        self.served: list[Served] = []
        self.app = create_app(
            self.engine, self.credentials, self.limiter, self.faults, self.served, page_size=settings.page_size
        )
        self._server: uvicorn.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.port = 0

    @property
    def connection(self) -> Connection:
        url = f"https://127.0.0.1:{self.port}{BASE_PATH}"
        return Connection(url, self.engine.fleet_id, self.credentials, self.material)

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            ssl_certfile=str(self.material.server_cert),
            ssl_keyfile=str(self.material.server_key),
            ssl_ca_certs=str(self.material.ca_cert),
            ssl_cert_reqs=ssl.CERT_REQUIRED,  # mutual TLS: no client certificate, no connection
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )

    def _socket(self) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets
        # only when the proto says TCP; without it every answer waits ~40 ms for
        # the client's delayed ACK (Nagle), capping a connection at 25 requests/s.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.settings.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> Connection:
        """Serve in background threads; returns once the server accepts connections."""
        sock = self._socket()
        self._server = uvicorn.Server(self._config())
        server = self._server
        serving = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        serving.start()
        self._threads.append(serving)
        self._start_background()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not serving.is_alive():
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self.connection

    def serve_forever(self, on_ready: Any) -> None:
        """Serve in this thread until interrupted (SIGINT or SIGTERM); ``on_ready`` runs once listening."""
        sock = self._socket()
        self._server = uvicorn.Server(self._config())
        self._start_background()
        server = self._server

        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            on_ready(self.connection)
            await task

        try:
            asyncio.run(main())
        finally:
            self._shutdown()

    def _start_background(self) -> None:
        def loop() -> None:
            while not self._stopping.wait(0.05):
                self.engine.tick()
                self.deliverer.deliver_due()

        ticking = threading.Thread(target=loop, daemon=True)
        ticking.start()
        self._threads.append(ticking)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._shutdown()

    def _shutdown(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        self.deliverer.close()
        self.engine.close()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def read_exports(stream: TextIO) -> dict[str, str]:
    """The variables a ``reconciler simulator`` process printed on ``stream`` (its eight export lines)."""
    exports = {}
    for _ in range(8):
        name, _, value = stream.readline().strip().removeprefix("export ").partition("=")
        exports[name] = shlex.split(value)[0] if value else ""
    return exports


def _identity(directory: Path, fleet_id: str) -> dict[str, str]:
    """The fleet id and credentials of this directory's simulator, made on first start."""
    path = directory / "identity.json"
    if path.exists():
        identity: dict[str, str] = json.loads(path.read_text())
        if fleet_id and fleet_id != identity["fleet_id"]:
            identity["fleet_id"] = fleet_id
            path.write_text(json.dumps(identity))
        return identity
    identity = {
        "fleet_id": fleet_id or secrets.token_hex(12),
        "client_id": secrets.token_hex(16),
        "username": "sandbox",
        "password": secrets.token_urlsafe(18),
    }
    path.write_text(json.dumps(identity))
    path.chmod(0o600)
    return identity
