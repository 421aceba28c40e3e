"""``reconciler webhook``: receive the API's remote events and record them in the state."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from typing import TextIO

from ..errors import ReconcilerError
from ..fleetfile import loader
from ..service.webhook_receiver import MAX_BODY, create_app
from ..state.base import open_store, state_url


def run(path: str, *, host: str, port: int, max_body: int, env: Mapping[str, str], out: TextIO) -> int:
    import uvicorn

    desired = loader.read(path, env)
    store = open_store(state_url(path, env), fleet=desired.fleet)
    try:
        app = create_app(desired, store, max_body=max_body or MAX_BODY)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        out.write(f"reconciler webhook receiver listening on http://{host}:{port}/ for fleet {desired.fleet}\n")
        out.flush()
        signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a clean stop
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            raise ReconcilerError(f"cannot listen on {host}:{port}: {exc}") from exc
    finally:
        store.close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
