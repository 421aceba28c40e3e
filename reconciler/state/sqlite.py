"""The SQLite state store (WAL), with versioned schema migrations."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .. import codec
from ..errors import StateError
from ..model import (
    Backoff,
    Callback,
    PendingAction,
    Recorded,
    RecordedCallback,
    RecordedVehicle,
    VehicleConfig,
)
from .base import fresh_recorded, sqlite_path

# Each entry migrates from version i to i + 1; PRAGMA user_version holds the version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE callbacks (
        label TEXT PRIMARY KEY, id TEXT NOT NULL, config TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE vehicles (
        vin TEXT PRIMARY KEY, vid TEXT, config TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL);
    CREATE TABLE actions (
        key TEXT PRIMARY KEY, address TEXT NOT NULL, vin TEXT, callback TEXT, remote_type TEXT,
        request TEXT NOT NULL, after TEXT, remote_action_id TEXT, status TEXT NOT NULL,
        failure_cause TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX actions_by_address ON actions (address);
    CREATE TABLE action_events (
        key TEXT NOT NULL, status TEXT NOT NULL, failure_cause TEXT, at TEXT NOT NULL);
    CREATE TABLE backoffs (address TEXT PRIMARY KEY, cause TEXT NOT NULL, until TEXT NOT NULL);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, serial INTEGER NOT NULL,
        address TEXT, event TEXT NOT NULL, detail TEXT);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_PENDING = ("Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle", "Sending")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """State in one SQLite file; ``readonly`` never creates, migrates or writes it."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        if readonly and not self.path.exists():
            return
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._check_version()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state {self.path}: {exc}") from exc

    def _check_version(self) -> None:
        assert self._db is not None
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state {self.path} is at schema version {version}, newer than this "
                f"reconciler knows ({SCHEMA_VERSION}); upgrade reconciler"
            )
        if version < SCHEMA_VERSION:
            if self.readonly:
                if version == 0:
                    self._db.close()
                    self._db = None  # an empty file: nothing recorded yet
                    return
                raise StateError(f"the state {self.path} needs migrating; run an apply first")
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        assert self._db is not None
        for number in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # reading

    def read(self) -> Recorded:
        if self._db is None:
            return fresh_recorded()
        try:
            return self._read(self._db)
        except (sqlite3.Error, KeyError, ValueError) as exc:
            raise StateError(f"cannot read the state {self.path}: {exc}") from exc

    def _read(self, db: sqlite3.Connection) -> Recorded:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "lineage" not in meta:
            return fresh_recorded()
        callbacks = {
            label: RecordedCallback(label, cb_id, codec.callback_from_json(label, json.loads(config)))
            for label, cb_id, config in db.execute("SELECT label, id, config FROM callbacks")
        }
        decode = _VehicleDecoder()
        vehicles = {
            vin: RecordedVehicle(vin, vid, decode(config))
            for vin, vid, config in db.execute("SELECT vin, vid, config FROM vehicles")
        }
        marks = ",".join("?" * len(_PENDING))
        pending = {
            address: PendingAction(address, key, status, rid, created)
            for key, address, status, rid, created in db.execute(
                f"SELECT key, address, status, remote_action_id, created_at FROM actions "
                f"WHERE status IN ({marks}) ORDER BY created_at",
                _PENDING,
            )
        }
        backoffs = {
            address: Backoff(address, cause, until)
            for address, cause, until in db.execute("SELECT address, cause, until FROM backoffs")
        }
        return Recorded(
            lineage=meta["lineage"],
            serial=int(meta["serial"]),
            fingerprint_key=bytes.fromhex(meta["fingerprint_key"]),
            callbacks=callbacks,
            vehicles=vehicles,
            pending=pending,
            backoffs=backoffs,
        )

    # writing

    def _writable(self) -> sqlite3.Connection:
        if self.readonly or self._db is None:
            raise StateError(f"the state {self.path} is open read-only")
        return self._db

    def initialize(self, recorded: Recorded) -> None:
        """Give an empty store its lineage and fingerprint key (those of ``recorded``)."""
        db = self._writable()
        with _transaction(db):
            if db.execute("SELECT 1 FROM meta WHERE key = 'lineage'").fetchone():
                return
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("lineage", recorded.lineage),
                    ("serial", str(recorded.serial)),
                    ("fingerprint_key", recorded.fingerprint_key.hex()),
                ],
            )

    def record_callback(self, label: str, callback_id: str, config: Callback) -> None:
        db = self._writable()
        body = json.dumps(codec.callback_to_json(config, codec.stored))
        db.execute(
            "INSERT INTO callbacks (label, id, config, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (label) DO UPDATE SET id = excluded.id, config = excluded.config, "
            "updated_at = excluded.updated_at",
            (label, callback_id, body, _now()),
        )

    def forget_callback(self, label: str) -> None:
        self._writable().execute("DELETE FROM callbacks WHERE label = ?", (label,))

    def record_vehicle(self, vin: str, vid: str | None, config: VehicleConfig) -> None:
        self.record_vehicles([(vin, vid, config)])

    def record_vehicles(self, rows: list[tuple[str, str | None, VehicleConfig]]) -> None:
        db = self._writable()
        now = _now()
        with _transaction(db):
            db.executemany(
                "INSERT INTO vehicles (vin, vid, config, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid, config = excluded.config, "
                "updated_at = excluded.updated_at",
                [(vin, vid, json.dumps(codec.vehicle_config_to_json(c)), now) for vin, vid, c in rows],
            )

    def commit_serial(self) -> int:
        db = self._writable()
        with _transaction(db):
            (serial,) = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
            new = int(serial) + 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'serial'", (str(new),))
        return new

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error; nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, kind: Any, *_: Any) -> None:
        if self.outer:
            self.db.execute("ROLLBACK" if kind else "COMMIT")


class _VehicleDecoder:
    """Decodes vehicle configs, sharing one object among identical ones.

    Most vehicles of a fleet hold one of a few configurations; decoding each
    distinct text once keeps reading 10,000 vehicles fast and small.
    """

    def __init__(self) -> None:
        self._seen: dict[str, VehicleConfig] = {}

    def __call__(self, text: str) -> VehicleConfig:
        config = self._seen.get(text)
        if config is None:
            config = self._seen[text] = codec.vehicle_config_from_json(json.loads(text))
        return config
