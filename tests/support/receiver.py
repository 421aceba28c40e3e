"""The webhook receiver, run in a thread of the test over a real socket, as ``reconciler webhook`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn

from reconciler.fleetfile import loader
from reconciler.service.webhook_receiver import beating, create_app
from reconciler.state.backends import open_store

TOKEN = "wh-secret-5e1f"


class Receiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def start(self, fleet: Path, *, max_body: int = 4096, heartbeat: bool = False) -> None:
        """Serve; with ``heartbeat``, say so in the state as ``reconciler webhook`` does (apply then listens)."""
        self.store = open_store(os.environ["RECONCILER_STATE"])
        app = create_app(loader.read(fleet, os.environ), self.store, max_body=max_body, read_timeout=1.0)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.beats = contextlib.ExitStack()
        if heartbeat:
            self.beats.enter_context(beating(self.store, f"test receiver at {self.url}", every=1.0))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        if not hasattr(self, "server"):
            return
        self.beats.close()
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.store.close()
