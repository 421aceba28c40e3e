"""The SQLite state store: round trips, read-only opening, schema versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from planning import OPS, VIN, air, charge

from reconciler.errors import StateError
from reconciler.model import Attribute, ChargingPreferences, Fingerprint, Secret, VehicleConfig
from reconciler.sensitive import seal_callback
from reconciler.state.base import fresh_recorded, open_store, state_url
from reconciler.state.sqlite import SQLiteStore


def test_readonly_store_that_does_not_exist_is_fresh_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(f"sqlite:///{path}", readonly=True)
    first, second = store.read(), store.read()
    assert first.serial == 0 and first.callbacks == {} and first.lineage
    assert first.lineage != second.lineage  # a fresh state gets its lineage when a plan is made
    assert not path.exists()


def test_recorded_state_round_trips(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SQLiteStore(url)
    fresh = fresh_recorded()
    store.initialize(fresh)
    hook = seal_callback(
        OPS.__class__(
            **{**OPS.__dict__, "attributes": (Attribute("Header", "Authorization", Secret("T", "very-secret")),)}
        ),
        fresh.fingerprint_key,
    )
    store.record_callback("ops", "cb-1", hook)
    config = VehicleConfig({1: air(1)}, {2: charge(2)}, ChargingPreferences("Level1", None), True, False)
    store.record_vehicle(VIN, "vid-1", config)
    assert store.commit_serial() == 1
    store.close()

    again = open_store(url, readonly=True).read()
    assert (again.lineage, again.serial, again.fingerprint_key) == (fresh.lineage, 1, fresh.fingerprint_key)
    assert again.callbacks["ops"].id == "cb-1"
    assert again.callbacks["ops"].config == hook
    assert isinstance(again.callbacks["ops"].config.attributes[0].value, Fingerprint)
    assert again.vehicles[VIN].vid == "vid-1"
    assert again.vehicles[VIN].config == config
    assert b"very-secret" not in (tmp_path / "state.db").read_bytes()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match="newer than this reconciler knows"):
        open_store(f"sqlite:///{path}", readonly=True)


def test_default_state_lives_beside_the_fleet_file(tmp_path: Path) -> None:
    assert state_url(tmp_path / "fleet.yaml", {}) == f"sqlite:///{tmp_path / '.reconciler' / 'state.db'}"
    assert state_url("fleet.yaml", {"RECONCILER_STATE": "sqlite:///x.db"}) == "sqlite:///x.db"


def test_unknown_state_url_is_refused() -> None:
    with pytest.raises(StateError, match="unsupported state URL"):
        open_store("redis://x")
