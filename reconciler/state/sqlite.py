"""The SQLite state store (WAL), with versioned schema migrations."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..core import codec
from ..core.model import Backoff, Callback, PendingAction, Recorded, RecordedCallback, RecordedVehicle, VehicleConfig
from ..errors import LockHeldError, StateError
from .base import PENDING_JOURNAL_STATUSES, JournalEntry, LockInfo, fresh_recorded, sqlite_path

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
    """
    CREATE TABLE lock (
        id INTEGER PRIMARY KEY CHECK (id = 1), lock_id TEXT NOT NULL, owner TEXT NOT NULL,
        pid INTEGER NOT NULL, host TEXT NOT NULL, acquired_at TEXT NOT NULL);
    ALTER TABLE actions ADD COLUMN method TEXT NOT NULL DEFAULT 'POST';
    CREATE INDEX history_by_address ON history (address);
    """,
    # The webhook receiver finds each event's action by its remoteActionId.
    """
    CREATE INDEX actions_by_remote_action ON actions (remote_action_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# What a state is made of, for copying it between backends: columns, and the order rows came in.
TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "meta": (("key", "value"), "key"),
    "callbacks": (("label", "id", "config", "updated_at"), "label"),
    "vehicles": (("vin", "vid", "config", "updated_at"), "vin"),
    "actions": (
        (
            "key",
            "address",
            "vin",
            "callback",
            "remote_type",
            "method",
            "request",
            "after",
            "remote_action_id",
            "status",
            "failure_cause",
            "created_at",
            "updated_at",
        ),
        "rowid",
    ),
    "action_events": (("key", "status", "failure_cause", "at"), "rowid"),
    "backoffs": (("address", "cause", "until"), "address"),
    "history": (("at", "serial", "address", "event", "detail"), "id"),
}
_PENDING = PENDING_JOURNAL_STATUSES


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """State in one SQLite file; ``readonly`` never creates, migrates or writes it."""

    # SQLite serializes writers (BEGIN IMMEDIATE): no row locks to ask for.
    _for_update = ""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # apply's worker threads share one connection
        if readonly and not self.path.exists():
            return
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
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
            with self._lock:
                return self._read(self._db)
        except (sqlite3.Error, KeyError, ValueError) as exc:
            raise StateError(f"cannot read the state {self.path}: {exc}") from exc

    def _read(self, db: sqlite3.Connection) -> Recorded:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "lineage" not in meta:
            return fresh_recorded()
        callbacks = self._callbacks(db)
        decode = _VehicleDecoder()
        vehicles = {
            vin: RecordedVehicle(vin, vid, decode(config))
            for vin, vid, config in db.execute("SELECT vin, vid, config FROM vehicles")
        }
        marks = ",".join("?" * len(_PENDING))
        pending = {
            address: PendingAction(address, key, status, rid, created, remote_type or "")
            for key, address, status, rid, created, remote_type in db.execute(
                f"SELECT key, address, status, remote_action_id, created_at, remote_type FROM actions "
                f"WHERE status IN ({marks}) AND vin IS NOT NULL ORDER BY created_at",
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

    def callbacks(self) -> dict[str, RecordedCallback]:
        """The recorded callbacks alone: cheaper than ``read`` when the vehicles are not needed."""
        if self._db is None:
            return {}
        with self._lock:
            return self._callbacks(self._db)

    @staticmethod
    def _callbacks(db: sqlite3.Connection) -> dict[str, RecordedCallback]:
        return {
            label: RecordedCallback(label, cb_id, codec.callback_from_json(label, json.loads(config)))
            for label, cb_id, config in db.execute("SELECT label, id, config FROM callbacks")
        }

    # writing

    def _writable(self) -> sqlite3.Connection:
        if self.readonly or self._db is None:
            raise StateError(f"the state {self.path} is open read-only")
        return self._db

    def is_initialized(self) -> bool:
        """Whether the state has its lineage yet (it is given one by its first apply)."""
        if self._db is None:
            return False
        with self._lock:
            return self._db.execute("SELECT 1 FROM meta WHERE key = 'lineage'").fetchone() is not None

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
        with self._lock:
            self._record_callback(db, label, callback_id, body)

    @staticmethod
    def _record_callback(db: sqlite3.Connection, label: str, callback_id: str, body: str) -> None:
        db.execute(
            "INSERT INTO callbacks (label, id, config, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (label) DO UPDATE SET id = excluded.id, config = excluded.config, "
            "updated_at = excluded.updated_at",
            (label, callback_id, body, _now()),
        )

    def forget_callback(self, label: str) -> None:
        with self._lock:
            self._writable().execute("DELETE FROM callbacks WHERE label = ?", (label,))

    def record_vehicle(self, vin: str, vid: str | None, config: VehicleConfig) -> None:
        self.record_vehicles([(vin, vid, config)])

    def record_vehicles(self, rows: list[tuple[str, str | None, VehicleConfig]]) -> None:
        db = self._writable()
        now = _now()
        with self._lock, _transaction(db):
            db.executemany(
                "INSERT INTO vehicles (vin, vid, config, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid, config = excluded.config, "
                "updated_at = excluded.updated_at",
                [(vin, vid, json.dumps(codec.vehicle_config_to_json(c)), now) for vin, vid, c in rows],
            )

    def record_vids(self, vids: dict[str, str]) -> None:
        """Remember VIN → vid, keeping each vehicle's recorded configuration."""
        db = self._writable()
        now = _now()
        with self._lock, _transaction(db):
            db.executemany(
                "INSERT INTO vehicles (vin, vid, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid",
                [(vin, vid, now) for vin, vid in vids.items()],
            )

    def update_vehicle(self, vin: str, change: Callable[[VehicleConfig], VehicleConfig]) -> None:
        """Read, change and write one vehicle's configuration in one transaction."""
        db = self._writable()
        with self._lock, _transaction(db):
            row = db.execute("SELECT config FROM vehicles WHERE vin = ?", (vin,)).fetchone()
            config = codec.vehicle_config_from_json(json.loads(row[0])) if row else VehicleConfig()
            text = json.dumps(codec.vehicle_config_to_json(change(config)))
            db.execute(
                "INSERT INTO vehicles (vin, config, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
                (vin, text, _now()),
            )

    def commit_serial(self) -> int:
        db = self._writable()
        with self._lock, _transaction(db):
            (serial,) = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
            new = int(serial) + 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'serial'", (str(new),))
        return new

    # the journal: every mutating call, written before it is sent

    def journal_start(self, entry: JournalEntry) -> None:
        db = self._writable()
        now = _now()
        with self._lock, _transaction(db):
            db.execute(
                "INSERT INTO actions (key, address, vin, callback, remote_type, method, request, after, "
                "remote_action_id, status, failure_cause, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'Sending', NULL, ?, ?)",
                (
                    entry.key,
                    entry.address,
                    entry.vin,
                    entry.callback,
                    entry.remote_type,
                    entry.method,
                    json.dumps(entry.request),
                    json.dumps(entry.after),
                    now,
                    now,
                ),
            )
            db.execute(
                "INSERT INTO action_events (key, status, failure_cause, at) VALUES (?, 'Sending', NULL, ?)",
                (entry.key, now),
            )

    def journal_update(
        self, key: str, status: str, *, remote_action_id: str | None = None, failure_cause: str | None = None
    ) -> bool:
        """Record a status seen for the call ``key`` (once per distinct status); True if it is new."""
        db = self._writable()
        now = _now()
        with self._lock, _transaction(db):
            row = db.execute(
                "SELECT status, failure_cause FROM actions WHERE key = ?" + self._for_update, (key,)
            ).fetchone()
            if row is None:
                raise StateError(f"no journal entry {key}")
            db.execute(
                "UPDATE actions SET status = ?, remote_action_id = COALESCE(?, remote_action_id), "
                "failure_cause = COALESCE(?, failure_cause), updated_at = ? WHERE key = ?",
                (status, remote_action_id, failure_cause, now, key),
            )
            if (status, failure_cause) == tuple(row):
                return False
            db.execute(
                "INSERT INTO action_events (key, status, failure_cause, at) VALUES (?, ?, ?, ?)",
                (key, status, failure_cause, now),
            )
            return True

    def journal_by_action(self, remote_action_id: str) -> JournalEntry | None:
        """The journal entry of the API's remote action ``remote_action_id``, if it is one of ours."""
        entries = self.journal(remote_action_id=remote_action_id)
        return entries[0] if entries else None

    def journal(
        self, *, pending_only: bool = False, address: str | None = None, remote_action_id: str | None = None
    ) -> list[JournalEntry]:
        db = self._db
        if db is None:
            return []
        query = (
            "SELECT key, address, vin, callback, remote_type, method, request, after, remote_action_id, "
            "status, failure_cause, created_at FROM actions"
        )
        where, args = [], []
        if pending_only:
            where.append(f"status IN ({','.join('?' * len(_PENDING))})")
            args += list(_PENDING)
        if address:
            where.append("address = ?")
            args.append(address)
        if remote_action_id:
            where.append("remote_action_id = ?")
            args.append(remote_action_id)
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = db.execute(query + " ORDER BY created_at, rowid", args).fetchall()
        return [
            JournalEntry(
                key,
                address,
                vin,
                callback,
                remote_type,
                method,
                json.loads(request),
                json.loads(after),
                rid,
                status,
                cause or "",
                created,
            )
            for key, address, vin, callback, remote_type, method, request, after, rid, status, cause, created in rows
        ]

    def events(self, key: str) -> list[tuple[str, str, str]]:
        """(status, failure cause, time) of every status seen for ``key``."""
        db = self._db
        if db is None:
            return []
        with self._lock:
            rows = db.execute(
                "SELECT status, failure_cause, at FROM action_events WHERE key = ? ORDER BY rowid", (key,)
            ).fetchall()
        return [(status, cause or "", at) for status, cause, at in rows]

    # backoffs and history

    def set_backoff(self, address: str, cause: str, until: str) -> None:
        db = self._writable()
        with self._lock:
            db.execute(
                "INSERT INTO backoffs (address, cause, until) VALUES (?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET cause = excluded.cause, until = excluded.until",
                (address, cause, until),
            )

    def clear_backoff(self, address: str) -> None:
        db = self._writable()
        with self._lock:
            db.execute("DELETE FROM backoffs WHERE address = ?", (address,))

    def add_history(self, address: str | None, event: str, detail: str = "") -> None:
        db = self._writable()
        with self._lock:
            (serial,) = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone() or ("0",)
            db.execute(
                "INSERT INTO history (at, serial, address, event, detail) VALUES (?, ?, ?, ?, ?)",
                (_now(), int(serial), address, event, detail),
            )

    def history(self, address: str | None = None) -> list[tuple[str, int, str, str, str]]:
        """(time, serial, address, event, detail), oldest first; under ``address`` when given."""
        db = self._db
        if db is None:
            return []
        query = "SELECT at, serial, COALESCE(address, ''), event, COALESCE(detail, '') FROM history"
        args: list[str] = []
        if address:
            query += " WHERE address = ? OR address LIKE ?"
            args = [address, address + ".%"]
        with self._lock:
            return [tuple(row) for row in db.execute(query + " ORDER BY id", args)]

    # the lock

    def acquire_lock(self, owner: str, timeout: float = 0.0) -> str:
        """Take the state lock or raise ``LockHeldError`` naming its holder.

        A lock left by a process of this host that no longer exists (killed,
        crashed) is taken over; any other waits up to ``timeout`` seconds.
        """
        db = self._writable()
        lock_id = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            with self._lock, _transaction(db):
                holder = self._holder(db)
                if holder is None or (holder.host == socket.gethostname() and not _alive(holder.pid)):
                    db.execute("DELETE FROM lock")
                    db.execute(
                        "INSERT INTO lock (id, lock_id, owner, pid, host, acquired_at) VALUES (1, ?, ?, ?, ?, ?)",
                        (lock_id, owner, os.getpid(), socket.gethostname(), _now()),
                    )
                    return lock_id
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    f"the state {self.path} is locked by {holder.owner} (pid {holder.pid} on {holder.host}, "
                    f"since {holder.acquired_at}, lock id {holder.lock_id}); wait for it, pass --lock-timeout, "
                    f"or if it is gone: reconciler state unlock {holder.lock_id}"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def release_lock(self, lock_id: str) -> None:
        with self._lock:
            if self._db is not None and not self.readonly:
                self._db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))

    def lock_holder(self) -> LockInfo | None:
        if self._db is None:
            return None
        with self._lock:
            return self._holder(self._db)

    def unlock(self, lock_id: str) -> LockInfo:
        """Release a lock left behind, by its id; ``StateError`` if it is not the one held."""
        db = self._writable()
        with self._lock, _transaction(db):
            holder = self._holder(db)
            if holder is None or holder.lock_id != lock_id:
                raise StateError(
                    f"no lock {lock_id} is held" + (f"; the lock held is {holder.lock_id}" if holder else "")
                )
            db.execute("DELETE FROM lock")
            return holder

    @staticmethod
    def _holder(db: sqlite3.Connection) -> LockInfo | None:
        row = db.execute("SELECT lock_id, owner, pid, host, acquired_at FROM lock").fetchone()
        return LockInfo(*row) if row else None

    # copying between backends (state migrate)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table but the lock, in insertion order."""
        db = self._db
        if db is None:
            return {table: [] for table in TABLES}
        with self._lock:
            return {
                table: [tuple(r) for r in db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")]
                for table, (columns, order) in TABLES.items()
            }

    def load(self, rows: dict[str, list[tuple[Any, ...]]], *, replace_existing: bool = False) -> None:
        """Write ``rows`` (a ``dump``) into this store, which must be empty unless ``replace_existing``."""
        db = self._writable()
        with self._lock, _transaction(db):
            if any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in TABLES):
                if not replace_existing:
                    raise StateError(f"the state {self.path} is not empty; pass --force to overwrite it")
                for table in TABLES:
                    db.execute(f"DELETE FROM {table}")
            for table, (columns, _) in TABLES.items():
                marks = ", ".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows.get(table, []))

    def close(self) -> None:
        # Under the lock: closing a connection another thread is using crashes sqlite3.
        with self._lock:
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
