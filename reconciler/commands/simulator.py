"""``reconciler simulator``: serve the embedded Fleet API simulator on 127.0.0.1."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from ..errors import ReconcilerError
from ..run.saved_plan import write_atomically
from ..simulator.server import Connection, Settings, Simulator
from .shell import Shell


def run(
    shell: Shell,
    *,
    port: int,
    directory: str,
    fleet: str,
    vehicles: int,
    vins_file: str | None,
    latency: float,
    fail_rate: float,
    per_second: float,
    per_day: int,
    sleeping: bool = False,
    awake_for: float = 180.0,
    wakeup_budget: int = 20,
    report_lag: float = 0.0,
    env_file: str | None = None,
) -> int:
    """``env_file``: where to write the export lines too (atomically, mode 600), once listening."""
    vins = _read_vins(vins_file) if vins_file else []
    if not 0 <= fail_rate <= 1:
        raise ReconcilerError("--fail-rate is a probability from 0 to 1")
    settings = Settings(
        Path(directory),
        port,
        fleet,
        vehicles,
        vins,
        latency,
        fail_rate,
        per_second,
        per_day,
        sleeping=sleeping,
        awake_for=awake_for,
        wakeup_budget=wakeup_budget,
        report_lag=report_lag,
    )
    try:
        simulator = Simulator(settings)
    except OSError as exc:
        raise ReconcilerError(f"cannot start the simulator in {directory}: {exc}") from exc

    target = Path(env_file) if env_file else None
    if target is not None:
        if target.is_dir():
            raise ReconcilerError(f"--env-file {env_file} is a directory; name a file")
        target.unlink(missing_ok=True)  # a file from an earlier run must not be sourced before this one listens

    def ready(connection: Connection) -> None:
        lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in connection.environment().items())
        if target is not None:
            # Written only now, whole (a temp file renamed over): a shell that waits for it sources all or nothing.
            write_atomically(target, lines, what="the simulator's environment", mode=0o600)
        shell.stdout.write(lines)
        shell.stdout.flush()

    # uvicorn stops on SIGINT and SIGTERM, then raises the signal again under the
    # handler that was there before: make SIGTERM's a KeyboardInterrupt, so a
    # stop by either signal ends with exit code 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        simulator.serve_forever(ready)
    except OSError as exc:
        raise ReconcilerError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal it stopped on: that is a normal stop
    finally:
        if target is not None:
            target.unlink(missing_ok=True)  # it names a server that is gone
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _read_vins(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ReconcilerError(f"cannot read --vins {path}: {exc}") from exc
    vins = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    bad = [v for v in vins if len(v) != 17]
    if bad:
        raise ReconcilerError(f"{path}: {bad[0]!r} is not a 17-character VIN")
    return vins
