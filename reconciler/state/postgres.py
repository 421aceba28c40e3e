"""The PostgreSQL state store: the SQLite store's semantics on a shared server (DESIGN §5, §6).

The statements are the SQLite store's (standard SQL with ``?`` placeholders,
translated here); what differs is the schema's types, how versions are kept,
and the lock: a session-level advisory lock keyed by the fleet id, held on a
connection of its own for the whole apply, which PostgreSQL releases itself
when the holder's connection dies. A row names the holder for messages and
``state unlock``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from ..errors import LockHeldError, StateError
from .base import LockInfo
from .sqlite import SQLiteStore, _now

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE callbacks (
        label TEXT PRIMARY KEY, id TEXT NOT NULL, config TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE vehicles (
        vin TEXT PRIMARY KEY, vid TEXT, config TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL);
    CREATE TABLE actions (
        rowid BIGSERIAL, key TEXT PRIMARY KEY, address TEXT NOT NULL, vin TEXT, callback TEXT, remote_type TEXT,
        method TEXT NOT NULL DEFAULT 'POST', request TEXT NOT NULL, after TEXT, remote_action_id TEXT,
        status TEXT NOT NULL, failure_cause TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX actions_by_address ON actions (address);
    CREATE INDEX actions_by_remote_action ON actions (remote_action_id);
    CREATE TABLE action_events (
        rowid BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, failure_cause TEXT, at TEXT NOT NULL);
    CREATE TABLE backoffs (address TEXT PRIMARY KEY, cause TEXT NOT NULL, until TEXT NOT NULL);
    CREATE TABLE history (
        id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, serial INTEGER NOT NULL,
        address TEXT, event TEXT NOT NULL, detail TEXT);
    CREATE INDEX history_by_address ON history (address);
    CREATE TABLE lock (
        id INTEGER PRIMARY KEY CHECK (id = 1), lock_id TEXT NOT NULL, owner TEXT NOT NULL,
        pid INTEGER NOT NULL, host TEXT NOT NULL, acquired_at TEXT NOT NULL, backend INTEGER NOT NULL)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 7_362_001  # advisory key serializing first-use migrations of one database


class _Connection:
    """A psycopg connection with sqlite3's calling convention (``?`` placeholders, ``in_transaction``)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.raw = connection

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        sql = "BEGIN" if sql == "BEGIN IMMEDIATE" else sql.replace("?", "%s")
        return self.raw.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


class PostgresStore(SQLiteStore):
    """State in a PostgreSQL database; ``fleet`` keys the advisory lock."""

    _for_update = " FOR UPDATE"  # several webhook receivers may record the same event at once

    def __init__(self, url: str, *, readonly: bool = False, fleet: str = "") -> None:
        self.url = url
        self.path = _display(url)  # type: ignore[assignment]
        self.readonly = readonly
        self.fleet = fleet
        self._lock_connection: psycopg.Connection[Any] | None = None
        import threading

        self._lock = threading.RLock()
        try:
            self._pg = _Connection(psycopg.connect(url, autocommit=True, connect_timeout=10))
        except psycopg.Error as exc:
            raise StateError(f"cannot connect to the state {self.path}: {_first_line(exc)}") from exc
        # The SQLite store's methods run unchanged on this sqlite3-shaped connection.
        self._db = self._pg  # type: ignore[assignment]
        self._check_version()

    def _version(self) -> int:
        assert self._db is not None
        exists = self._db.execute("SELECT to_regclass('reconciler_schema')").fetchone()[0]
        if exists is None:
            return 0
        row = self._db.execute("SELECT version FROM reconciler_schema").fetchone()
        return int(row[0]) if row else 0

    def _check_version(self) -> None:
        assert self._db is not None
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state {self.path} is at schema version {version}, newer than this reconciler "
                f"knows ({SCHEMA_VERSION}); upgrade reconciler"
            )
        if version < SCHEMA_VERSION:
            if self.readonly:
                if version == 0:
                    self._db.close()
                    self._db = None
                    return
                raise StateError(f"the state {self.path} needs migrating; run an apply first")
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        assert self._db is not None
        with self._pg.raw.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            self._db.execute("CREATE TABLE IF NOT EXISTS reconciler_schema (version INTEGER NOT NULL)")
            version = self._version()  # another process may have migrated meanwhile
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute("DELETE FROM reconciler_schema")
            self._db.execute("INSERT INTO reconciler_schema (version) VALUES (?)", (max(version, SCHEMA_VERSION),))

    # the lock: a session advisory lock, plus a row naming its holder

    def acquire_lock(self, owner: str, timeout: float = 0.0) -> str:
        self._writable()
        key = f"reconciler:{self.fleet}"
        connection = psycopg.connect(self.url, autocommit=True)
        deadline = time.monotonic() + timeout
        while not connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                connection.close()
                holder = self.lock_holder()
                who = (
                    (
                        f"{holder.owner} (pid {holder.pid} on {holder.host}, since {holder.acquired_at}, "
                        f"lock id {holder.lock_id})"
                    )
                    if holder
                    else "another process"
                )
                raise LockHeldError(
                    f"the state {self.path} is locked by {who}; wait for it, pass --lock-timeout, or if it is "
                    f"stuck: reconciler state unlock {holder.lock_id if holder else 'LOCK_ID'}"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        lock_id = str(uuid.uuid4())
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        assert self._db is not None
        with self._lock:
            self._db.execute(
                "INSERT INTO lock (id, lock_id, owner, pid, host, acquired_at, backend) VALUES (1, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET lock_id = excluded.lock_id, owner = excluded.owner, "
                "pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at, "
                "backend = excluded.backend",
                (lock_id, owner, os.getpid(), socket.gethostname(), _now(), backend),
            )
        self._lock_connection = connection
        return lock_id

    def release_lock(self, lock_id: str) -> None:
        if self._db is not None:
            with self._lock:
                self._db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))
        if self._lock_connection is not None:
            self._lock_connection.close()  # ends the session: PostgreSQL releases the advisory lock
            self._lock_connection = None

    def unlock(self, lock_id: str) -> LockInfo:
        """End the session holding the lock ``lock_id`` (its advisory lock goes with it)."""
        db = self._writable()
        with self._lock:
            row = db.execute("SELECT lock_id, owner, pid, host, acquired_at, backend FROM lock").fetchone()
            if row is None or row[0] != lock_id:
                held = f"; the lock held is {row[0]}" if row else ""
                raise StateError(f"no lock {lock_id} is held{held}")
            db.execute("SELECT pg_terminate_backend(?)", (row[5],))
            db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))
            return LockInfo(*row[:5])

    def close(self) -> None:
        with self._lock:
            if self._lock_connection is not None:
                self._lock_connection.close()
                self._lock_connection = None
        super().close()


def _display(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = info.get("host") or "localhost"
    return f"postgresql://{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
