"""SQLite under the state store: one file in WAL mode, schema version in ``PRAGMA user_version``.

The file holds the fingerprint key, with which anyone who can read it could
test guesses of a secret offline: it is created 0600 in a directory created
0700, and an existing state readable by others is tightened when opened.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import LockHeldError, StateError
from .base import LockInfo, sqlite_path
from .sql import Connection, SQLStore, now

# Each entry migrates from version i to i + 1.
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
    # Groups: the fleet's listing (listed: 1 in it, 0 left it, NULL never seen in one); capabilities.
    """
    ALTER TABLE vehicles ADD COLUMN listed INTEGER;
    ALTER TABLE vehicles ADD COLUMN capabilities TEXT;
    ALTER TABLE vehicles ADD COLUMN capabilities_at TEXT;
    """,
    # Rollouts: the one under way (or halted, or done) and its vehicles in wave order.
    """
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL,
        ends TEXT NOT NULL, wave_started_at TEXT NOT NULL, wave_done_at TEXT NOT NULL, halt TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE rollout_vehicles (rollout_id TEXT NOT NULL, position INTEGER NOT NULL, vin TEXT NOT NULL,
        PRIMARY KEY (rollout_id, position));
    CREATE INDEX actions_by_created ON actions (created_at);
    """,
    # The wake-up budget: each vehicle's wake-ups by month, its last contact, which actions woke it.
    """
    CREATE TABLE wakeups (vin TEXT NOT NULL, month TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0,
        spent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (vin, month));
    ALTER TABLE vehicles ADD COLUMN last_contact TEXT;
    ALTER TABLE actions ADD COLUMN woke INTEGER NOT NULL DEFAULT 0;
    """,
    # When each part's last action was confirmed: a status report older than that says nothing of it.
    """
    ALTER TABLE vehicles ADD COLUMN confirmed_at TEXT;
    """,
    # Look-ups that stay flat as the journal grows: pending actions, an action's statuses, pruning.
    """
    CREATE INDEX actions_by_status ON actions (status);
    CREATE INDEX action_events_by_key ON action_events (key);
    CREATE INDEX history_by_at ON history (at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_PRIVATE = stat.S_IRWXG | stat.S_IRWXO
BUSY_TIMEOUT = 30.0  # seconds a statement waits for another process's write to end


def open_sqlite(url: str, *, readonly: bool = False, fleet: str = "") -> SQLStore:
    """The state in the SQLite file of ``url`` (``sqlite:///relative`` or ``sqlite:////absolute``)."""
    return SQLStore(url, SQLiteDialect(sqlite_path(url)), readonly=readonly, fleet=fleet)


def alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SQLiteDialect:
    for_update = ""  # SQLite serializes writers (BEGIN IMMEDIATE): no row locks to ask for
    begin = "BEGIN IMMEDIATE"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def connect(self, readonly: bool) -> Connection | None:
        try:
            if readonly:
                db = self._connect_readonly()
                return _Translated(db, self.where) if db is not None else None
            self._prepare_file()
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(db)
            return _Translated(db, self.where)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state {self.path}: {exc}") from exc

    def _connect_readonly(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError:
            db.close()
            # A read-only directory: WAL mode cannot make its shared-memory file there.
            # Closed cleanly, the state has no pending WAL to miss, so read the file as is.
            db = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.close()
            return None  # an empty file: nothing recorded yet
        self._check_version(version, readonly=True)
        return db

    def _prepare_file(self) -> None:
        """Create the state private to its owner; tighten one that others can read."""
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            try:
                if path.stat().st_mode & _PRIVATE:
                    path.chmod(0o600)
            except FileNotFoundError:
                pass
            except PermissionError:
                pass  # not ours to change; SQLite will say if it cannot write

    def _check_version(self, version: int, *, readonly: bool) -> None:
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state {self.path} is at schema version {version}, newer than this "
                f"reconciler knows ({SCHEMA_VERSION}); upgrade reconciler"
            )
        if version < SCHEMA_VERSION and readonly:
            raise StateError(f"the state {self.path} needs migrating; run an apply first")

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        self._check_version(version, readonly=False)
        for number in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # the lock: one row naming its holder

    def acquire_lock(self, store: SQLStore, owner: str, timeout: float) -> str:
        """Take the lock; one left by a process of this host that no longer exists is taken over."""
        lock_id = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            with store.transaction() as db:
                holder = _holder(db)
                if holder is None or (holder.host == socket.gethostname() and not alive(holder.pid)):
                    db.execute("DELETE FROM lock")
                    db.execute(
                        "INSERT INTO lock (id, lock_id, owner, pid, host, acquired_at) VALUES (1, ?, ?, ?, ?, ?)",
                        (lock_id, owner, os.getpid(), socket.gethostname(), now()),
                    )
                    return lock_id
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    f"the state {self.path} is locked by {holder.owner} (pid {holder.pid} on {holder.host}, "
                    f"since {holder.acquired_at}, lock id {holder.lock_id}); wait for it, pass --lock-timeout, "
                    f"or if it is gone: reconciler state unlock {holder.lock_id}"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def release_lock(self, store: SQLStore, lock_id: str) -> None:
        with store.transaction() as db:
            db.execute("DELETE FROM lock WHERE lock_id = ?", (lock_id,))

    def fence(self, db: Connection, lock_id: str) -> bool:
        """The lock row is still this run's (``state unlock --force`` and another run would have replaced it);
        the write transaction holds SQLite's write lock until it commits."""
        return db.execute("SELECT 1 FROM lock WHERE lock_id = ?", (lock_id,)).fetchone() is not None

    def unlock(self, store: SQLStore, lock_id: str, *, force: bool) -> LockInfo:
        with store.transaction() as db:
            holder = _holder(db)
            if holder is None or holder.lock_id != lock_id:
                raise StateError(
                    f"no lock {lock_id} is held" + (f"; the lock held is {holder.lock_id}" if holder else "")
                )
            if not force:
                _refuse_live_holder(holder)
            db.execute("DELETE FROM lock")
            return holder

    def close(self) -> None:
        pass


class _Translated:
    """A sqlite3 connection whose errors are the state's: ``StateError`` naming the file, never a traceback.

    A statement can fail long after the state was opened: ``database is locked``
    past the busy timeout (another process writes), a disk that is full.
    """

    def __init__(self, db: sqlite3.Connection, where: str) -> None:
        self.raw = db
        self.where = where

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        try:
            return self.raw.execute(sql, args)
        except sqlite3.Error as exc:
            raise StateError(_said(self.where, exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        try:
            return self.raw.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StateError(_said(self.where, exc)) from exc

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        self.raw.close()


def _said(where: str, exc: sqlite3.Error) -> str:
    if "locked" in str(exc) or "busy" in str(exc):
        return (
            f"the state {where} stayed locked by another process for more than {BUSY_TIMEOUT:g} s ({exc}); "
            "try again once it is done"
        )
    return f"the state {where} cannot be read or written: {exc}"


def _holder(db: Connection) -> LockInfo | None:
    row = db.execute("SELECT lock_id, owner, pid, host, acquired_at FROM lock").fetchone()
    return LockInfo(*row) if row else None


def _refuse_live_holder(holder: LockInfo) -> None:
    """``state unlock`` must not pull the lock from under a process that still runs."""
    who = f"{holder.owner} (pid {holder.pid} on {holder.host})"
    if holder.host != socket.gethostname():
        raise StateError(
            f"lock {holder.lock_id} is held by {who}, on another host: reconciler cannot tell whether it still "
            "runs; if you are sure it is gone, pass --force"
        )
    if alive(holder.pid):
        raise StateError(
            f"lock {holder.lock_id} is held by {who}, which is still running; wait for it to finish, "
            "stop it, or pass --force if it is stuck"
        )
