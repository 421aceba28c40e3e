from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runs import FLEET, SECRET, VINS

from reconciler.simulator.server import Settings, Simulator

# Read before any test runs: the autouse fixture below clears RECONCILER_* from the environment.
POSTGRES = os.environ.get("RECONCILER_TEST_POSTGRES", "")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RECONCILER_* from the developer's shell, and a home directory that does not exist.

    Anything that reads or writes under ~ fails loudly instead of touching the real one.
    """
    for name in list(os.environ):
        if name.startswith("RECONCILER_") or name == "NO_COLOR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home-here"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    settings = Settings(tmp_path / "sim", fleet_id="0a123bc5d1e873066454b4d9", vins=VINS, latency=0.05, per_second=1000)
    with Simulator(settings) as simulator:
        yield simulator


@pytest.fixture
def fleet(tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in sim.connection.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return path


@pytest.fixture
def postgres_url() -> str:
    """A new, empty database on the test PostgreSQL server (.ci/run starts one)."""
    if not POSTGRES:
        pytest.skip("no PostgreSQL server for the tests (.ci/run starts one: RECONCILER_TEST_POSTGRES)")
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: the store's contract holds for both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))
