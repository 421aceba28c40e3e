"""The ``StateStore`` interface every backend implements, and choosing a backend by URL."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..core.model import Callback, Capabilities, Recorded, RecordedCallback, Rollout, VehicleConfig
from ..core.wakeups import WakeupUse

DEFAULT_STATE = ".reconciler/state.db"

# Journal statuses of a call whose outcome is not known yet: "Sending" is
# written before the request goes out, the others are the API's own.
PENDING_JOURNAL_STATUSES = ("Sending", "Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle")


# A running webhook receiver says so in the state (``beat``) this often; apply trusts it to
# record outcomes while its last beat is at most HEARTBEAT_FRESH seconds old.
RECEIVER = "webhook"
HEARTBEAT_EVERY = 10.0
HEARTBEAT_FRESH = 30.0


@dataclass(frozen=True)
class JournalEntry:
    """One mutating call: what was sent (secrets sealed), for which address, and what came of it."""

    key: str
    address: str
    vin: str | None
    callback: str | None
    remote_type: str | None
    method: str
    request: Any
    after: Any
    remote_action_id: str | None = None
    status: str = "Sending"
    failure_cause: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` dropped, and the old actions it kept (pending, or the last of their address)."""

    actions: int
    events: int  # the statuses of the actions dropped
    history: int
    kept: int


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    owner: str
    pid: int
    host: str
    acquired_at: str


class StateStore(Protocol):
    """Where recorded state lives; every backend implements this with the same semantics.

    Writes are transactional; methods are safe to call from apply's worker threads.
    """

    url: str

    @property
    def where(self) -> str:
        """The file, or the URL without its password: for messages."""
        ...

    def read(self) -> Recorded:
        """Everything recorded; a store never written gives a fresh lineage and serial 0."""
        ...

    def callbacks(self) -> dict[str, RecordedCallback]:
        """The recorded callbacks alone (``read`` decodes every vehicle too)."""
        ...

    def is_initialized(self) -> bool: ...

    def ping(self) -> None:
        """Ask the database a trivial question; ``StateError`` when it does not answer (a readiness probe)."""
        ...

    def reconnect(self) -> None:
        """Drop the connection and open a new one (after a lost connection: a long-running receiver)."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """Make the writes inside one transaction: all of them, or none."""
        ...

    def initialize(self, recorded: Recorded) -> None:
        """Give a store never written the lineage and fingerprint key of ``recorded``."""
        ...

    def commit_serial(self) -> int:
        """Increment the serial (each apply that sends something); returns the new one."""
        ...

    def record_callback(self, label: str, callback_id: str, config: Callback) -> None:
        """Record ``config`` (secrets sealed) as confirmed for callback ``label``."""
        ...

    def forget_callback(self, label: str) -> None: ...

    def record_vehicle(self, vin: str, vid: str | None, config: VehicleConfig) -> None: ...

    def record_vehicles(self, rows: list[tuple[str, str | None, VehicleConfig]]) -> None: ...

    def record_vids(self, vids: dict[str, str]) -> None: ...

    def record_listing(self, listing: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """The fleet's vehicles as the API lists them now; returns the VINs that joined and left since."""
        ...

    def record_capabilities(self, capabilities: Mapping[str, Capabilities]) -> None: ...

    def wakeup_use(self, vin: str, month: str) -> WakeupUse:
        """The vehicle's wake-ups in ``month``, and its last contact."""
        ...

    def count_wakeup(self, vin: str, month: str, key: str | None = None) -> int:
        """One more wake-up for ``vin`` in ``month`` (once for the action ``key``); the month's count."""
        ...

    def spend_wakeups(self, vin: str, month: str) -> None: ...

    def count_pending(self) -> int:
        """How many remote actions are journaled and not ended (sent, outcome not known yet)."""
        ...

    def touch(self, vin: str, at: str) -> None:
        """The vehicle was in contact at ``at``."""
        ...

    def save_rollout(self, rollout: Rollout) -> None:
        """Record a rollout: a new one with its vehicles, or where one under way now stands."""
        ...

    def actions_since(self, since: str) -> list[tuple[str, str, str, str]]:
        """(vin, address, status, failure cause) of the remote actions journaled since ``since``, oldest first."""
        ...

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
        ...

    def journal_start(self, entry: JournalEntry) -> None:
        """Journal a call before it is sent."""
        ...

    def journal_update(
        self,
        key: str,
        status: str,
        *,
        remote_action_id: str | None = None,
        failure_cause: str | None = None,
        while_pending: bool = False,
    ) -> bool:
        """Record a status seen for ``key``; True when it is news (so outcomes are recorded once).

        ``while_pending``: only while the action has not ended (an end is never undone).
        """
        ...

    def journal(
        self, *, pending_only: bool = False, address: str | None = None, remote_action_id: str | None = None
    ) -> list[JournalEntry]: ...

    def journal_by_action(self, remote_action_id: str) -> JournalEntry | None: ...

    def journal_status(self, key: str) -> tuple[str, str] | None:
        """(status, failure cause) of the call ``key`` now."""
        ...

    def beat(self, who: str, instance: str) -> None:
        """``instance`` of ``who`` (a running service; ``instance`` says where it runs) is alive now."""
        ...

    def stop_beating(self, who: str, instance: str) -> None: ...

    def heartbeat(self, who: str) -> tuple[datetime, str] | None:
        """When an instance of ``who`` last said it was alive, and which one."""
        ...

    def events(self, key: str) -> list[tuple[str, str, str]]: ...

    def set_backoff(self, address: str, cause: str, until: str) -> None: ...

    def clear_backoff(self, address: str) -> None: ...

    def add_history(self, address: str | None, event: str, detail: str = "") -> None: ...

    def history(self, address: str | None = None) -> list[tuple[str, int, str, str, str]]: ...

    def prune(self, before: str, *, keep_since: str = "") -> Pruned:
        """Drop finished actions and history older than ``before`` (ISO-8601 UTC); never a pending action,
        never the last action of an address, nothing journaled since ``keep_since``."""
        ...

    def acquire_lock(self, owner: str, timeout: float = 0.0) -> str:
        """Take the lock or raise ``LockHeldError`` naming the holder; returns the lock id."""
        ...

    def release_lock(self, lock_id: str) -> None: ...

    def lock_holder(self) -> LockInfo | None: ...

    def unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        """Release a lock whose holder is gone (``StateError`` while it runs, unless ``force``)."""
        ...

    def recorded_fleet(self) -> str | None:
        """The fleet id the state was recorded for, if it says."""
        ...

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row but the lock's, to copy the state to another backend."""
        ...

    def load(self, rows: dict[str, list[tuple[Any, ...]]], *, replace_existing: bool = False) -> None: ...

    def close(self) -> None: ...


def fresh_recorded() -> Recorded:
    """The state of a store never written: a new lineage, serial 0, a new fingerprint key."""
    return Recorded(lineage=str(uuid.uuid4()), serial=0, fingerprint_key=secrets.token_bytes(32))


def sqlite_path(url: str) -> Path:
    """The file of ``sqlite:///relative/path`` (to the working directory) or ``sqlite:////absolute/path``."""
    return Path(os.path.expanduser(url[len("sqlite:///") :]))
