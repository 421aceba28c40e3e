"""The SQLite state store and state URLs: read-only opening, file modes, passwords kept out of messages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from support.paths import MINIMAL

from reconciler.cli import main
from reconciler.errors import StateError
from reconciler.state.backends import open_store, state_url
from reconciler.state.base import fresh_recorded, sqlite_path
from reconciler.state.urls import ambiguity, passwords, redact


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


def test_state_file_is_private_to_its_owner(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / '.reconciler' / 'state.db'}", fleet="F1")
    store.initialize(fresh_recorded())
    store.close()
    assert stat.S_IMODE((tmp_path / ".reconciler").stat().st_mode) == 0o700
    for path in (tmp_path / ".reconciler").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_world_readable_state_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    path.chmod(0o644)
    open_store(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_four_slashes_name_an_absolute_path_three_a_relative_one(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/s.db") == tmp_path / "s.db"  # tmp_path starts with /
    assert sqlite_path("sqlite:///tmp/x/state.db") == Path("tmp/x/state.db")
    assert sqlite_path("sqlite:////tmp/x/state.db") == Path("/tmp/x/state.db")


@pytest.mark.parametrize(
    ("url", "shown", "found", "refused"),
    [
        # libpq would read these passwords' '/' or '@' as part of the host: refused, and shown as nothing
        ("postgresql://u:pa/ss@db.example.com:5432/fleet", "postgresql://***", ["pa/ss"], True),
        ("postgresql://u:p@ss?x@h/db?sslmode=require", "postgresql://***", ["p", "p@ss?x"], True),
        ("postgresql://u:Zq7@Kx9@127.0.0.1/db", "postgresql://***", ["Zq7", "Zq7@Kx9"], True),
        ("postgresql://u:Zq7?x/Kx9@h/db", "postgresql://***", ["Zq7?x/Kx9"], True),
        ("postgresql://h/db?user=u&password=s3cret", "postgresql://h/db?user=u&password=***", ["s3cret"], False),
        ("postgresql://u@h/db?password=Zq7@Kx9", "postgresql://u@h/db?password=***", ["Zq7@Kx9"], False),
        ("postgresql://u:Zq7%40Kx9@h:5432/db", "postgresql://u:***@h:5432/db", ["Zq7%40Kx9"], False),
        ("host=h password='se cret' dbname=d", "host=h password=*** dbname=d", ["se cret"], False),
        ("host=h password=Zq7@Kx9 dbname=d", "host=h password=*** dbname=d", ["Zq7@Kx9"], False),
        ("postgresql://u@/db?host=/tmp/pg", "postgresql://u@/db?host=/tmp/pg", [], False),
        ("postgresql://u:pw@[::1]:5432,h2:5433/db", "postgresql://u:***@[::1]:5432,h2:5433/db", ["pw"], False),
    ],
)
def test_passwords_are_redacted_in_every_form(url: str, shown: str, found: list[str], refused: bool) -> None:
    assert redact(url) == shown
    assert passwords(url) == found
    assert bool(ambiguity(url)) is refused


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pa/ss@host:notaport/db",
        "postgresql://u:pa/ss@[bad/db",
        "postgresql://u:pa/ss@127.0.0.1:1/db?sslmode=nonsense",
        "postgresql://u:pa/ss@127.0.0.1:1/db",
    ],
)
def test_a_bad_postgresql_url_is_an_error_without_the_password(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fleet.yaml").write_text(MINIMAL)
    monkeypatch.setenv("RECONCILER_STATE", url)
    for argv in (["state", "list"], ["plan", "--no-refresh"], ["state", "migrate", "--to", url]):
        monkeypatch.setenv("RECONCILER_STATE", url if argv[1] != "migrate" else f"sqlite:///{tmp_path / 's.db'}")
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "pa/ss" not in err and "Traceback" not in err and "Error:" in err


def test_a_state_of_an_earlier_version_is_migrated_forward_with_its_data(tmp_path: Path) -> None:
    import sqlite3

    from reconciler.state.sqlite import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the state as the release before the wake-up budget left it
        for script in MIGRATIONS[: SCHEMA_VERSION - 1]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        for key, value in (("lineage", "L-old"), ("serial", "7"), ("fingerprint_key", "ab" * 32)):
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        db.execute(
            "INSERT INTO vehicles (vin, vid, config, updated_at) VALUES (?, ?, ?, ?)",
            ("VF3ABCDE0FG123456", "vid-1", '{"immobilized": true}', "2026-11-01T00:00:00+00:00"),
        )
    with pytest.raises(StateError, match="needs migrating"):
        open_store(f"sqlite:///{path}", readonly=True)
    store = open_store(f"sqlite:///{path}")
    try:
        recorded = store.read()
        assert (recorded.lineage, recorded.serial) == ("L-old", 7)
        assert recorded.vehicles["VF3ABCDE0FG123456"].config.immobilized is True
        assert store.count_wakeup("VF3ABCDE0FG123456", "2026-11") == 1
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
