"""PostgreSQL under the state store: a shared server for CI runners and teams (DESIGN §5, §6).

The store's statements run unchanged on a psycopg connection dressed in
sqlite3's calling convention (``?`` placeholders). What is PostgreSQL's own:
the schema version table, and the lock — a session-level advisory lock keyed by
the fleet id, held on a connection of its own for the whole apply, which
PostgreSQL releases itself when the holder's connection dies. A row names the
holder for messages and ``state unlock``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from ..errors import LockHeldError, StateError
from .base import LockInfo
from .sql import Connection, SQLStore, now
from .urls import ambiguity, redact, scrub

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
    """
    ALTER TABLE vehicles ADD COLUMN listed INTEGER;
    ALTER TABLE vehicles ADD COLUMN capabilities TEXT;
    ALTER TABLE vehicles ADD COLUMN capabilities_at TEXT
    """,
    """
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL,
        ends TEXT NOT NULL, wave_started_at TEXT NOT NULL, wave_done_at TEXT NOT NULL, halt TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE rollout_vehicles (rollout_id TEXT NOT NULL, position INTEGER NOT NULL, vin TEXT NOT NULL,
        PRIMARY KEY (rollout_id, position));
    CREATE INDEX actions_by_created ON actions (created_at)
    """,
    """
    CREATE TABLE wakeups (vin TEXT NOT NULL, month TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0,
        spent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (vin, month));
    ALTER TABLE vehicles ADD COLUMN last_contact TEXT;
    ALTER TABLE actions ADD COLUMN woke INTEGER NOT NULL DEFAULT 0
    """,
    """
    ALTER TABLE vehicles ADD COLUMN confirmed_at TEXT
    """,
    """
    CREATE INDEX actions_by_status ON actions (status);
    CREATE INDEX action_events_by_key ON action_events (key);
    CREATE INDEX history_by_at ON history (at)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 7_362_001  # advisory key serializing first-use migrations of one database


def open_postgres(url: str, *, readonly: bool = False, fleet: str = "") -> SQLStore:
    """The state in the PostgreSQL database of ``url``; ``fleet`` keys the advisory lock."""
    return SQLStore(url, PostgresDialect(url, fleet), readonly=readonly, fleet=fleet)


class _Connection:
    """A psycopg connection with sqlite3's calling convention (``?`` placeholders, ``in_transaction``).

    Its errors are the state's: a connection dropped mid-apply, a statement
    refused, is a ``StateError`` naming the server (the password scrubbed).
    """

    def __init__(self, connection: psycopg.Connection[Any], dialect: PostgresDialect) -> None:
        self.raw = connection
        self.dialect = dialect

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self.raw.execute(sql.replace("?", "%s"), tuple(args))
        except psycopg.Error as exc:
            raise self.dialect.failed(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
        except psycopg.Error as exc:
            raise self.dialect.failed(exc) from None

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


class PostgresDialect:
    for_update = " FOR UPDATE"  # several webhook receivers may record the same event at once
    begin = "BEGIN"

    def __init__(self, url: str, fleet: str) -> None:
        self.url = url
        self.where = redact(url)
        self.fleet = fleet
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._guard = threading.Lock()

    def raw_connect(self) -> psycopg.Connection[Any]:
        """A new connection; errors name the server, never the password."""
        problem = ambiguity(self.url)
        if problem:  # refused before libpq could print a piece of the password
            raise StateError(f"RECONCILER_STATE {self.where}: {problem}")
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except (psycopg.Error, ValueError) as exc:
            raise StateError(f"cannot connect to the state {self.where}: {self._clean(exc)}") from None

    def failed(self, exc: Exception) -> StateError:
        """What a statement's error is to the user: the state named, the password never."""
        if isinstance(exc, psycopg.OperationalError):
            return StateError(f"lost the connection to the state {self.where}: {self._clean(exc)}")
        return StateError(f"the state {self.where} refused a statement: {self._clean(exc)}")

    def _clean(self, exc: Exception) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return scrub(text, self.url)

    def connect(self, readonly: bool) -> Connection | None:
        db = _Connection(self.raw_connect(), self)
        try:
            version = _version(db)
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state {self.where} is at schema version {version}, newer than this reconciler "
                    f"knows ({SCHEMA_VERSION}); upgrade reconciler"
                )
            if version < SCHEMA_VERSION:
                if readonly and version == 0:
                    db.close()
                    return None
                if readonly:
                    raise StateError(f"the state {self.where} needs migrating; run an apply first")
                self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: _Connection) -> None:
        with db.raw.transaction():
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS reconciler_schema (version INTEGER NOT NULL)")
            version = _version(db)  # another process may have migrated meanwhile
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("DELETE FROM reconciler_schema")
            db.execute("INSERT INTO reconciler_schema (version) VALUES (?)", (max(version, SCHEMA_VERSION),))

    # the lock: a session advisory lock, plus a row naming its holder

    def acquire_lock(self, store: SQLStore, owner: str, timeout: float) -> str:
        connection = self.raw_connect()
        try:
            return self._acquire(store, owner, timeout, connection)
        except psycopg.Error as exc:
            connection.close()
            raise self.failed(exc) from None

    def _acquire(self, store: SQLStore, owner: str, timeout: float, connection: psycopg.Connection[Any]) -> str:
        key = f"reconciler:{self.fleet}"
        deadline = time.monotonic() + timeout
        while not connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                connection.close()
                holder = store.lock_holder()
                who = (
                    (
                        f"{holder.owner} (pid {holder.pid} on {holder.host}, since {holder.acquired_at}, "
                        f"lock id {holder.lock_id})"
                    )
                    if holder
                    else "another process"
                )
                raise LockHeldError(
                    f"the state {self.where} is locked by {who}; wait for it, pass --lock-timeout, or if it is "
                    f"stuck: reconciler state unlock {holder.lock_id if holder else 'LOCK_ID'}"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        lock_id = str(uuid.uuid4())
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        with store.transaction() as db:
            db.execute(
                "INSERT INTO lock (id, lock_id, owner, pid, host, acquired_at, backend) VALUES (1, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET lock_id = excluded.lock_id, owner = excluded.owner, "
                "pid = excluded.pid, host = excluded.host, acquired_at = excluded.acquired_at, "
                "backend = excluded.backend",
                (lock_id, owner, os.getpid(), socket.gethostname(), now(), backend),
            )
        with self._guard:
            self._lock_connection = connection
        return lock_id

    def release_lock(self, store: SQLStore, lock_id: str) -> None:
        try:
            with store.transaction() as db:
                db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))
        finally:
            self.close()  # ends the lock's session: PostgreSQL releases the advisory lock

    def fence(self, db: Connection, lock_id: str) -> bool:
        """The lock row is still this run's and its session still holds the advisory lock.

        ``FOR SHARE`` keeps the row as it is until this transaction commits: a run
        taking the lock over updates that row first, so it waits for this commit,
        and then reads what was journaled here.
        """
        row = db.execute(
            "SELECT 1 FROM lock WHERE lock_id = ? AND backend IN "
            "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted) FOR SHARE OF lock",
            (lock_id,),
        ).fetchone()
        return row is not None

    def unlock(self, store: SQLStore, lock_id: str, *, force: bool) -> LockInfo:
        """Release ``lock_id``: refused while its session lives, unless ``force`` (which ends that session)."""
        with store.transaction() as db:
            row = db.execute("SELECT lock_id, owner, pid, host, acquired_at, backend FROM lock").fetchone()
            if row is None or row[0] != lock_id:
                held = f"; the lock held is {row[0]}" if row else ""
                raise StateError(f"no lock {lock_id} is held{held}")
            holder = LockInfo(*row[:5])
            session = db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ?", (row[5],)).fetchone()
            if session is not None and not force:
                raise StateError(
                    f"lock {lock_id} is held by {holder.owner} (pid {holder.pid} on {holder.host}), whose "
                    "database session is still open; wait for it to finish, stop it, or pass --force to end "
                    "that session"
                )
            if session is not None:
                db.execute("SELECT pg_terminate_backend(?)", (row[5],))
            db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))
            return holder

    def close(self) -> None:
        with self._guard:
            if self._lock_connection is not None:
                self._lock_connection.close()
                self._lock_connection = None


def _version(db: _Connection) -> int:
    exists = db.execute("SELECT to_regclass('reconciler_schema')").fetchone()[0]  # type: ignore[index]
    if exists is None:
        return 0
    row = db.execute("SELECT version FROM reconciler_schema").fetchone()
    return int(row[0]) if row else 0
