"""``api.url: sandbox``: the embedded simulator, started in this process, as the API.

Its fleet (the fleet file's id and vehicles, and with ``api.vehicles`` a mixed
fleet of that many more), CA and credentials persist in a ``sandbox`` folder
beside the state store, so sandbox runs continue where they stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..api.settings import ApiSettings
from ..core.model import Desired
from ..state.base import sqlite_path


def directory(state_url: str, fleet_file: str | Path) -> Path:
    """Where the sandbox keeps its fleet: beside a SQLite state, else beside the fleet file."""
    if state_url.startswith("sqlite:///"):
        return sqlite_path(state_url).parent / "sandbox"
    return Path(fleet_file).resolve().parent / ".reconciler" / "sandbox"


@contextmanager
def running(desired: Desired, folder: Path, timeout: float = 30.0) -> Iterator[ApiSettings]:
    """Start the simulator for ``desired``'s fleet; yield how to reach it; stop it after."""
    from ..simulator.engine import MIXED, generated_vins  # the server stack loads only for the sandbox
    from ..simulator.server import Settings, Simulator

    simulator = Simulator(Settings(folder, fleet_id=desired.fleet, vins=sorted(desired.vehicles)))
    # api.vehicles: a mixed fleet of its own (the same VINs every time), for groups and capabilities to try.
    for number, vin in enumerate(generated_vins(desired.sandbox_vehicles)):
        simulator.engine.add_vehicle(vin, MIXED[number % len(MIXED)])
    with simulator:
        connection = simulator.connection
        credentials = connection.credentials
        yield ApiSettings(
            base_url=connection.url,
            client_id=credentials.client_id,
            username=credentials.username,
            password=credentials.password,
            client_cert=str(connection.material.client_cert),
            client_key=str(connection.material.client_key),
            ca_bundle=str(connection.material.ca_cert),
            timeout=timeout,
        )
