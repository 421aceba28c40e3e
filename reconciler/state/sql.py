"""The state store's statements, written once for every SQL backend.

``SQLStore`` implements ``StateStore`` in standard SQL with ``?`` placeholders
on a ``Dialect``: the backend's small adapter, which opens the connection,
keeps the schema version, migrates it, and implements the lock. SQLite and
PostgreSQL each have one (``sqlite.py``, ``postgres.py``).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from ..core import codec, parts
from ..core.model import (
    Backoff,
    Callback,
    Capabilities,
    PendingAction,
    Recorded,
    RecordedCallback,
    RecordedVehicle,
    Rollout,
    VehicleConfig,
)
from ..core.vocabulary import RolloutState
from ..core.wakeups import WakeupUse, month_of
from ..errors import LockLostError, StateError
from .base import PENDING_JOURNAL_STATUSES, JournalEntry, LockInfo, Pruned, fresh_recorded

# What a state is made of, for copying it between backends: columns, and the order rows came in.
TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "meta": (("key", "value"), "key"),
    "callbacks": (("label", "id", "config", "updated_at"), "label"),
    "vehicles": (
        (
            "vin",
            "vid",
            "config",
            "updated_at",
            "listed",
            "capabilities",
            "capabilities_at",
            "last_contact",
            "confirmed_at",
        ),
        "vin",
    ),
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
            "woke",
        ),
        "rowid",
    ),
    "action_events": (("key", "status", "failure_cause", "at"), "rowid"),
    "backoffs": (("address", "cause", "until"), "address"),
    "history": (("at", "serial", "address", "event", "detail"), "id"),
    "rollouts": (
        (
            "id",
            "config_hash",
            "state",
            "wave",
            "ends",
            "wave_started_at",
            "wave_done_at",
            "halt",
            "created_at",
            "updated_at",
        ),
        "created_at",
    ),
    "rollout_vehicles": (("rollout_id", "position", "vin"), "rollout_id, position"),
    "wakeups": (("vin", "month", "used", "spent"), "vin, month"),
}
_PENDING = PENDING_JOURNAL_STATUSES
T = TypeVar("T")


class Connection(Protocol):
    """What the statements need of a DB-API connection (sqlite3's calling convention)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    """A backend: how to connect, keep the schema, and lock the state."""

    where: str  # the file, or the URL without its password: for messages
    for_update: str  # row locks where several writers may race (webhook receivers)
    begin: str

    def connect(self, readonly: bool) -> Connection | None:
        """The connection, migrated if writable; None when a read-only store holds nothing yet."""
        ...

    def acquire_lock(self, store: SQLStore, owner: str, timeout: float) -> str: ...

    def release_lock(self, store: SQLStore, lock_id: str) -> None: ...

    def fence(self, db: Connection, lock_id: str) -> bool:
        """Within a transaction on ``db``: True while ``lock_id`` is still held (and stays so until it commits)."""
        ...

    def unlock(self, store: SQLStore, lock_id: str, *, force: bool) -> LockInfo: ...

    def close(self) -> None: ...


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLStore:
    """Recorded state in a SQL database; ``readonly`` never creates, migrates or writes it.

    ``fleet`` is the fleet id of the fleet file in use: a state recorded for
    another fleet is refused, and a state without one records it on first write.
    """

    def __init__(self, url: str, dialect: Dialect, *, readonly: bool = False, fleet: str = "") -> None:
        self.url = url
        self.dialect = dialect
        self.readonly = readonly
        self.fleet = fleet
        self.lock = threading.RLock()  # apply's worker threads share one connection
        self.held: str | None = None  # the state lock this store took: every send is fenced by it
        self.db: Connection | None = dialect.connect(readonly)
        self._check_fleet()

    @property
    def where(self) -> str:
        return self.dialect.where

    # reading

    def read(self) -> Recorded:
        if self.db is None:
            return fresh_recorded()
        try:
            with self.lock:
                return self._read(self.db)
        except (KeyError, ValueError) as exc:
            raise StateError(f"cannot read the state {self.where}: {exc}") from exc

    def _read(self, db: Connection) -> Recorded:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "lineage" not in meta:
            return fresh_recorded()
        decode = _Interning(parts.config_from_json)
        capabilities_of = _Interning(codec.capabilities_from_json)
        vehicles = {}
        listing: dict[str, str] | None = {} if "listed_at" in meta else None
        capabilities = {}
        month = month_of(datetime.now(UTC))
        used = {
            vin: (count, bool(spent))
            for vin, count, spent in db.execute("SELECT vin, used, spent FROM wakeups WHERE month = ?", (month,))
        }
        wakeups = {}
        times = _Interning(dict)  # confirmations within the same millisecond share one mapping
        for vin, vid, config, listed, caps, contact, confirmed in db.execute(
            "SELECT vin, vid, config, listed, capabilities, last_contact, confirmed_at FROM vehicles"
        ):
            vehicles[vin] = RecordedVehicle(vin, vid, decode(config), times(confirmed) if confirmed else {})
            if listing is not None and listed and vid:
                listing[vin] = vid
            if caps:
                capabilities[vin] = capabilities_of(caps)
            if contact or vin in used:
                count, spent = used.get(vin, (0, False))
                wakeups[vin] = WakeupUse(month, count, spent, contact or "")
        marks = ",".join("?" * len(_PENDING))
        afters = _Interning(lambda value: value)
        pending = {
            address: PendingAction(
                address, key, status, rid, created, remote_type or "", afters(after) if after else None, _path(request)
            )
            for key, address, status, rid, created, remote_type, after, request in db.execute(
                f"SELECT key, address, status, remote_action_id, created_at, remote_type, after, request FROM actions "
                f"WHERE status IN ({marks}) AND vin IS NOT NULL ORDER BY created_at",
                _PENDING,
            )
        }
        backoffs = {
            address: Backoff(address, cause, until)
            for address, cause, until in db.execute("SELECT address, cause, until FROM backoffs")
        }
        return Recorded(
            rollout=self._rollout(db),
            lineage=meta["lineage"],
            serial=int(meta["serial"]),
            fingerprint_key=bytes.fromhex(meta["fingerprint_key"]),
            callbacks=self._callbacks(db),
            vehicles=vehicles,
            pending=pending,
            backoffs=backoffs,
            listing=listing,
            capabilities=capabilities,
            wakeups=wakeups,
        )

    @staticmethod
    def _rollout(db: Connection) -> Rollout | None:
        row = db.execute(
            "SELECT id, config_hash, state, wave, ends, wave_started_at, wave_done_at, halt FROM rollouts "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        rollout_id, config_hash, state, wave, ends, started, done, halt = row
        vins = tuple(
            vin
            for (vin,) in db.execute(
                "SELECT vin FROM rollout_vehicles WHERE rollout_id = ? ORDER BY position", (rollout_id,)
            )
        )
        ends_at = tuple(json.loads(ends))
        return Rollout(rollout_id, config_hash, vins, ends_at, wave, RolloutState(state), started, done, halt)

    def save_rollout(self, rollout: Rollout) -> None:
        """Record a rollout: a new one with its vehicles, or where one under way now stands."""
        at = now()
        with self.transaction() as db:
            exists = db.execute("SELECT 1 FROM rollouts WHERE id = ?", (rollout.id,)).fetchone()
            values = (
                rollout.config_hash,
                rollout.state,
                rollout.wave,
                json.dumps(list(rollout.ends)),
                rollout.wave_started_at,
                rollout.wave_done_at,
                rollout.halt,
            )
            if exists:
                db.execute(
                    "UPDATE rollouts SET config_hash = ?, state = ?, wave = ?, ends = ?, wave_started_at = ?, "
                    "wave_done_at = ?, halt = ?, updated_at = ? WHERE id = ?",
                    (*values, at, rollout.id),
                )
                return
            db.execute(
                "INSERT INTO rollouts (id, config_hash, state, wave, ends, wave_started_at, wave_done_at, halt, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rollout.id, *values, at, at),
            )
            db.executemany(
                "INSERT INTO rollout_vehicles (rollout_id, position, vin) VALUES (?, ?, ?)",
                [(rollout.id, n, vin) for n, vin in enumerate(rollout.vins)],
            )

    def actions_since(self, since: str) -> list[tuple[str, str, str, str]]:
        """(vin, address, status, failure cause) of the remote actions journaled since ``since``, oldest first."""
        if self.db is None:
            return []
        with self.lock:
            rows = self.db.execute(
                "SELECT vin, address, status, failure_cause FROM actions WHERE created_at >= ? AND vin IS NOT NULL "
                "ORDER BY created_at, rowid",
                (since,),
            ).fetchall()
        return [(vin, address, status, cause or "") for vin, address, status, cause in rows]

    def callbacks(self) -> dict[str, RecordedCallback]:
        """The recorded callbacks alone: cheaper than ``read`` when the vehicles are not needed."""
        if self.db is None:
            return {}
        with self.lock:
            return self._callbacks(self.db)

    @staticmethod
    def _callbacks(db: Connection) -> dict[str, RecordedCallback]:
        return {
            label: RecordedCallback(label, cb_id, codec.callback_from_json(label, json.loads(config)))
            for label, cb_id, config in db.execute("SELECT label, id, config FROM callbacks")
        }

    def is_initialized(self) -> bool:
        """Whether the state has its lineage yet (it is given one by its first apply)."""
        if self.db is None:
            return False
        with self.lock:
            return self.db.execute("SELECT 1 FROM meta WHERE key = 'lineage'").fetchone() is not None

    def recorded_fleet(self) -> str | None:
        """The fleet id this state was recorded for, if it says."""
        if self.db is None:
            return None
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'fleet'").fetchone()
        return str(row[0]) if row else None

    def _check_fleet(self) -> None:
        if self.db is None or not self.fleet:
            return
        recorded = self.recorded_fleet()
        if recorded is not None and recorded != self.fleet:
            self.close()
            raise StateError(
                f"the state {self.where} was recorded for fleet {recorded}, not {self.fleet}; "
                "point RECONCILER_STATE at this fleet's state (one state per fleet)"
            )
        if recorded is None and not self.readonly and self.is_initialized():
            with self.transaction() as db:
                db.execute("INSERT INTO meta (key, value) VALUES ('fleet', ?)", (self.fleet,))

    # writing

    def writable(self) -> Connection:
        if self.readonly or self.db is None:
            raise StateError(f"the state {self.where} is open read-only")
        return self.db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on the writable connection, under the store's thread lock; nests as a no-op."""
        db = self.writable()
        with self.lock:
            if db.in_transaction:
                yield db
                return
            db.execute(self.dialect.begin)
            try:
                yield db
            except BaseException:
                with contextlib.suppress(StateError):  # a connection that dropped has rolled back already
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def initialize(self, recorded: Recorded) -> None:
        """Give an empty store its lineage and fingerprint key (those of ``recorded``), and the fleet id."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = 'lineage'").fetchone():
                return
            rows = [
                ("lineage", recorded.lineage),
                ("serial", str(recorded.serial)),
                ("fingerprint_key", recorded.fingerprint_key.hex()),
            ]
            if self.fleet:
                rows.append(("fleet", self.fleet))
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows)

    def record_callback(self, label: str, callback_id: str, config: Callback) -> None:
        body = json.dumps(codec.callback_to_json(config, codec.stored))
        with self.transaction() as db:
            db.execute(
                "INSERT INTO callbacks (label, id, config, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (label) DO UPDATE SET id = excluded.id, config = excluded.config, "
                "updated_at = excluded.updated_at",
                (label, callback_id, body, now()),
            )

    def forget_callback(self, label: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM callbacks WHERE label = ?", (label,))

    def record_vehicle(self, vin: str, vid: str | None, config: VehicleConfig) -> None:
        self.record_vehicles([(vin, vid, config)])

    def record_vehicles(self, rows: list[tuple[str, str | None, VehicleConfig]]) -> None:
        at = now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO vehicles (vin, vid, config, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid, config = excluded.config, "
                "updated_at = excluded.updated_at",
                [(vin, vid, json.dumps(parts.config_to_json(c)), at) for vin, vid, c in rows],
            )

    def record_vids(self, vids: dict[str, str]) -> None:
        """Remember VIN → vid, keeping each vehicle's recorded configuration."""
        at = now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO vehicles (vin, vid, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid",
                [(vin, vid, at) for vin, vid in vids.items()],
            )

    def record_listing(self, listing: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """The fleet's vehicles as the API lists them now; returns the VINs that joined and left since."""
        at = now()
        with self.transaction() as db:
            first = db.execute("SELECT 1 FROM meta WHERE key = 'listed_at'").fetchone() is None
            before = {vin for (vin,) in db.execute("SELECT vin FROM vehicles WHERE listed = 1")}
            left = sorted(before - set(listing))
            joined = [] if first else sorted(set(listing) - before)
            if left:
                db.executemany("UPDATE vehicles SET listed = 0 WHERE vin = ?", [(vin,) for vin in left])
            db.executemany(
                "INSERT INTO vehicles (vin, vid, updated_at, listed) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (vin) DO UPDATE SET vid = excluded.vid, listed = 1",
                [(vin, vid, at) for vin, vid in listing.items() if vin not in before or first],
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('listed_at', ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (at, at),
            )
        return joined, left

    def record_capabilities(self, capabilities: Mapping[str, Capabilities]) -> None:
        """What each vehicle can take, read from the API now."""
        at = now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO vehicles (vin, updated_at, capabilities, capabilities_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET capabilities = excluded.capabilities, "
                "capabilities_at = excluded.capabilities_at",
                [(vin, at, json.dumps(codec.capabilities_to_json(c)), at) for vin, c in capabilities.items()],
            )

    # wake-ups

    def wakeup_use(self, vin: str, month: str) -> WakeupUse:
        """The vehicle's wake-ups in ``month``, and its last contact."""
        if self.db is None:
            return WakeupUse(month)
        with self.lock:
            row = self.db.execute(
                "SELECT used, spent FROM wakeups WHERE vin = ? AND month = ?", (vin, month)
            ).fetchone()
            contact = self.db.execute("SELECT last_contact FROM vehicles WHERE vin = ?", (vin,)).fetchone()
        used, spent = row if row else (0, 0)
        return WakeupUse(month, used, bool(spent), (contact[0] if contact else "") or "")

    def count_wakeup(self, vin: str, month: str, key: str | None = None) -> int:
        """One more wake-up for ``vin`` in ``month`` (the action ``key`` woke it); the month's count."""
        with self.transaction() as db:
            if key is not None:
                row = db.execute("SELECT woke FROM actions WHERE key = ?" + self.dialect.for_update, (key,)).fetchone()
                if row is not None and row[0]:
                    return self._used(db, vin, month)  # counted already
                db.execute("UPDATE actions SET woke = 1 WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO wakeups (vin, month, used, spent) VALUES (?, ?, 1, 0) "
                "ON CONFLICT (vin, month) DO UPDATE SET used = wakeups.used + 1",
                (vin, month),
            )
            return self._used(db, vin, month)

    @staticmethod
    def _used(db: Connection, vin: str, month: str) -> int:
        row = db.execute("SELECT used FROM wakeups WHERE vin = ? AND month = ?", (vin, month)).fetchone()
        return int(row[0]) if row else 0

    def spend_wakeups(self, vin: str, month: str) -> None:
        """The API said the vehicle has no wake-up left this month: spent, whatever our count says."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO wakeups (vin, month, used, spent) VALUES (?, ?, 0, 1) "
                "ON CONFLICT (vin, month) DO UPDATE SET spent = 1",
                (vin, month),
            )

    def touch(self, vin: str, at: str) -> None:
        """The vehicle was in contact at ``at``: awake for a while after it."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO vehicles (vin, updated_at, last_contact) VALUES (?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET last_contact = excluded.last_contact",
                (vin, at, at),
            )

    def update_vehicle(
        self,
        vin: str,
        change: Callable[[VehicleConfig], VehicleConfig],
        *,
        confirmed: tuple[str, str] | None = None,
    ) -> None:
        """Read, change and write one vehicle's configuration in one transaction.

        ``confirmed``: (address part, time) of the confirmed action that made the change.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT config, confirmed_at FROM vehicles WHERE vin = ?" + self.dialect.for_update, (vin,)
            ).fetchone()
            config = parts.config_from_json(json.loads(row[0])) if row else VehicleConfig()
            text = json.dumps(parts.config_to_json(change(config)))
            times = json.loads(row[1]) if row and row[1] else {}
            if confirmed is not None:
                times[confirmed[0]] = confirmed[1]
            db.execute(
                "INSERT INTO vehicles (vin, config, updated_at, confirmed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (vin) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, "
                "confirmed_at = excluded.confirmed_at",
                (vin, text, now(), json.dumps(times, sort_keys=True) if times else None),
            )

    def commit_serial(self) -> int:
        with self.transaction() as db:
            (serial,) = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
            new = int(serial) + 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'serial'", (str(new),))
        return new

    # the journal: every mutating call, written before it is sent

    def journal_start(self, entry: JournalEntry) -> None:
        """Journal a call before it is sent, fenced: refused (``LockLostError``) once the run's lock is gone.

        A run whose lock session ended (killed, its connection cut) may have been
        replaced by another run already: the journal row and the check that the
        lock is still this run's commit together, so a run that lost its hold
        journals — and so sends — nothing more, and what it journaled before is
        what the next holder reads (and settles, never sends again).
        """
        at = now()
        with self.transaction() as db:
            if self.held is not None and not self.dialect.fence(db, self.held):
                raise LockLostError(
                    f"this run no longer holds the lock of the state {self.where} (its database session ended, "
                    "or another run took the lock): nothing more is sent; the next run settles what this one sent"
                )
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
                    at,
                    at,
                ),
            )
            db.execute(
                "INSERT INTO action_events (key, status, failure_cause, at) VALUES (?, 'Sending', NULL, ?)",
                (entry.key, at),
            )

    def journal_update(
        self,
        key: str,
        status: str,
        *,
        remote_action_id: str | None = None,
        failure_cause: str | None = None,
        while_pending: bool = False,
    ) -> bool:
        """Record a status seen for the call ``key`` (once per distinct status); True if it is new.

        ``while_pending``: a status the API reported, which never moves an action
        back from its end (a late or repeated event, a poll racing the webhook
        receiver); decided under the row's lock, so concurrent writers agree.
        """
        at = now()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, failure_cause FROM actions WHERE key = ?" + self.dialect.for_update, (key,)
            ).fetchone()
            if row is None:
                raise StateError(f"no journal entry {key}")
            if while_pending and row[0] not in _PENDING:
                return False
            db.execute(
                "UPDATE actions SET status = ?, remote_action_id = COALESCE(?, remote_action_id), "
                "failure_cause = COALESCE(?, failure_cause), updated_at = ? WHERE key = ?",
                (status, remote_action_id, failure_cause, at, key),
            )
            if (status, failure_cause) == tuple(row):
                return False
            db.execute(
                "INSERT INTO action_events (key, status, failure_cause, at) VALUES (?, ?, ?, ?)",
                (key, status, failure_cause, at),
            )
            return True

    def journal_status(self, key: str) -> tuple[str, str] | None:
        """(status, failure cause) of the call ``key`` now: what apply reads while a receiver records outcomes."""
        if self.db is None:
            return None
        with self.lock:
            row = self.db.execute("SELECT status, failure_cause FROM actions WHERE key = ?", (key,)).fetchone()
        return (str(row[0]), str(row[1] or "")) if row else None

    def beat(self, who: str, instance: str) -> None:
        """``instance`` of ``who`` (a webhook receiver, where it runs) is alive now."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"heartbeat:{who}:{instance}", at),
            )

    def stop_beating(self, who: str, instance: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM meta WHERE key = ?", (f"heartbeat:{who}:{instance}",))

    def heartbeat(self, who: str) -> tuple[datetime, str] | None:
        """The last beat of any instance of ``who``, and that instance; None if none beats."""
        if self.db is None:
            return None
        prefix = f"heartbeat:{who}:"
        with self.lock:
            rows = self.db.execute(
                "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (prefix, prefix[:-1] + ";")
            ).fetchall()
        beats = []
        for key, value in rows:
            try:
                beats.append((datetime.fromisoformat(value), str(key)[len(prefix) :]))
            except ValueError:
                continue
        return max(beats) if beats else None

    def journal_by_action(self, remote_action_id: str) -> JournalEntry | None:
        """The journal entry of the API's remote action ``remote_action_id``, if it is one of ours."""
        entries = self.journal(remote_action_id=remote_action_id)
        return entries[0] if entries else None

    def count_pending(self) -> int:
        if self.db is None:
            return 0
        marks = ",".join("?" * len(_PENDING))
        with self.lock:
            row = self.db.execute(
                f"SELECT COUNT(*) FROM actions WHERE status IN ({marks}) AND vin IS NOT NULL", _PENDING
            ).fetchone()
        return int(row[0])

    def journal(
        self, *, pending_only: bool = False, address: str | None = None, remote_action_id: str | None = None
    ) -> list[JournalEntry]:
        if self.db is None:
            return []
        query = (
            "SELECT key, address, vin, callback, remote_type, method, request, after, remote_action_id, "
            "status, failure_cause, created_at FROM actions"
        )
        where: list[str] = []
        args: list[str] = []
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
        with self.lock:
            rows = self.db.execute(query + " ORDER BY created_at, rowid", args).fetchall()
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
        if self.db is None:
            return []
        with self.lock:
            rows = self.db.execute(
                "SELECT status, failure_cause, at FROM action_events WHERE key = ? ORDER BY rowid", (key,)
            ).fetchall()
        return [(status, cause or "", at) for status, cause, at in rows]

    # backoffs and history

    def set_backoff(self, address: str, cause: str, until: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO backoffs (address, cause, until) VALUES (?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET cause = excluded.cause, until = excluded.until",
                (address, cause, until),
            )

    def clear_backoff(self, address: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM backoffs WHERE address = ?", (address,))

    def add_history(self, address: str | None, event: str, detail: str = "") -> None:
        with self.transaction() as db:
            (serial,) = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone() or ("0",)
            db.execute(
                "INSERT INTO history (at, serial, address, event, detail) VALUES (?, ?, ?, ?, ?)",
                (now(), int(serial), address, event, detail),
            )

    def history(self, address: str | None = None) -> list[tuple[str, int, str, str, str]]:
        """(time, serial, address, event, detail), oldest first; under ``address`` when given."""
        if self.db is None:
            return []
        query = "SELECT at, serial, COALESCE(address, ''), event, COALESCE(detail, '') FROM history"
        args: list[str] = []
        if address:  # the address and everything under it, as an index range (LIKE would scan)
            query += " WHERE address = ? OR (address >= ? AND address < ?)"
            args = [address, address + ".", address + "/"]
        with self.lock:
            return [tuple(row) for row in self.db.execute(query + " ORDER BY id", args)]

    # pruning

    def prune(self, before: str, *, keep_since: str = "") -> Pruned:
        """Drop the finished actions (and their statuses) and the history older than ``before``.

        Never a pending action, never the last action of an address (what
        ``state show`` and the next run read of it), and nothing journaled
        since ``keep_since`` (the rollout's wave under way is judged on it).
        """
        cutoff = min(before, keep_since) if keep_since else before
        marks = ",".join("?" * len(_PENDING))
        prunable = (
            f"created_at < ? AND status NOT IN ({marks}) AND EXISTS (SELECT 1 FROM actions newer "
            "WHERE newer.address = actions.address AND newer.rowid > actions.rowid)"
        )
        with self.transaction() as db:
            events = db.execute(
                f"DELETE FROM action_events WHERE key IN (SELECT key FROM actions WHERE {prunable})",
                (cutoff, *_PENDING),
            ).rowcount
            actions = db.execute(f"DELETE FROM actions WHERE {prunable}", (cutoff, *_PENDING)).rowcount
            history = db.execute("DELETE FROM history WHERE at < ?", (before,)).rowcount
            kept = db.execute("SELECT COUNT(*) FROM actions WHERE created_at < ?", (cutoff,)).fetchone()[0]
        return Pruned(actions, events, history, int(kept))

    # the lock: the dialect's

    def acquire_lock(self, owner: str, timeout: float = 0.0) -> str:
        """Take the state lock or raise ``LockHeldError`` naming its holder; returns the lock id."""
        self.writable()
        self.held = self.dialect.acquire_lock(self, owner, timeout)
        return self.held

    def release_lock(self, lock_id: str) -> None:
        """Release the lock; best effort when the state itself failed (the run's own error is what to say).

        A lock left behind that way is taken over: SQLite's names a process that
        is gone, PostgreSQL's advisory lock ends with its connection.
        """
        if self.held == lock_id:
            self.held = None
        if self.db is not None and not self.readonly:
            with contextlib.suppress(StateError):
                self.dialect.release_lock(self, lock_id)

    def lock_holder(self) -> LockInfo | None:
        if self.db is None:
            return None
        with self.lock:
            row = self.db.execute("SELECT lock_id, owner, pid, host, acquired_at FROM lock").fetchone()
        return LockInfo(*row) if row else None

    def unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        """Release the lock ``lock_id`` whose holder is gone (or, with ``force``, still there)."""
        self.writable()
        return self.dialect.unlock(self, lock_id, force=force)

    # copying between backends (state migrate)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table but the lock, in insertion order."""
        if self.db is None:
            return {table: [] for table in TABLES}
        with self.lock:
            return {
                table: [tuple(r) for r in self.db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")]
                for table, (columns, order) in TABLES.items()
            }

    def load(self, rows: dict[str, list[tuple[Any, ...]]], *, replace_existing: bool = False) -> None:
        """Write ``rows`` (a ``dump``) into this store, which must be empty unless ``replace_existing``."""
        with self.transaction() as db:
            if any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in TABLES):
                if not replace_existing:
                    raise StateError(f"the state {self.where} is not empty; pass --force to overwrite it")
                for table in TABLES:
                    db.execute(f"DELETE FROM {table}")
            for table, (columns, _) in TABLES.items():
                marks = ", ".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows.get(table, []))

    def ping(self) -> None:
        if self.db is None:
            return  # read-only and nothing written yet: the database answered when it was opened
        with self.lock:
            self.db.execute("SELECT 1").fetchone()

    def reconnect(self) -> None:
        with self.lock:
            if self.db is not None:
                with contextlib.suppress(Exception):  # it is being replaced because it failed
                    self.db.close()
            self.db = None
            self.db = self.dialect.connect(self.readonly)

    def close(self) -> None:
        # Under the lock: closing a connection another thread is using crashes sqlite3.
        with self.lock:
            self.dialect.close()
            if self.db is not None:
                self.db.close()
                self.db = None


def _path(request: str) -> str:
    """The path a journaled call went to."""
    document = json.loads(request)
    return str(document.get("path", "")) if isinstance(document, dict) else ""


class _Interning(Generic[T]):
    """Decodes JSON texts, sharing one object among identical ones.

    Most vehicles of a fleet hold one of a few configurations (and are of a few
    kinds): decoding each distinct text once keeps reading 100,000 vehicles
    fast and small.
    """

    def __init__(self, decode: Callable[[Any], T]) -> None:
        self._decode = decode
        self._seen: dict[str, T] = {}

    def __call__(self, text: str) -> T:
        value = self._seen.get(text)
        if value is None:
            value = self._seen[text] = self._decode(json.loads(text))
        return value
