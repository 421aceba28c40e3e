"""The SQLite state store: round trips, read-only opening, schema versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.state.base import open_store, state_url


def test_readonly_store_that_does_not_exist_is_fresh_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(f"sqlite:///{path}", readonly=True)
    first, second = store.read(), store.read()
    assert first.serial == 0 and first.callbacks == {} and first.lineage
    assert first.lineage != second.lineage  # a fresh state gets its lineage when a plan is made
    assert not path.exists()


def test_default_state_lives_beside_the_fleet_file(tmp_path: Path) -> None:
    assert state_url(tmp_path / "fleet.yaml", {}) == f"sqlite:///{tmp_path / '.reconciler' / 'state.db'}"
    assert state_url("fleet.yaml", {"RECONCILER_STATE": "sqlite:///x.db"}) == "sqlite:///x.db"


def test_unknown_state_url_is_refused() -> None:
    with pytest.raises(StateError, match="unsupported state URL"):
        open_store("redis://x")
