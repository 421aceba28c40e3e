"""The StateStore contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.planning import OPS, VIN, air, charge

from reconciler.core.model import Attribute, ChargingPreferences, Fingerprint, Secret, VehicleConfig
from reconciler.core.recording import apply_after
from reconciler.core.sensitive import seal_callback
from reconciler.core.wakeups import WakeupUse
from reconciler.errors import LockHeldError, StateError
from reconciler.state.backends import open_store
from reconciler.state.base import JournalEntry, fresh_recorded


def test_recorded_state_round_trips(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
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
    store.record_vids({"VF3ABCDE0FG000001": "vid-2"})
    assert store.commit_serial() == 1
    store.close()
    again = open_store(state_url, readonly=True, fleet="F1").read()
    assert (again.lineage, again.serial, again.fingerprint_key) == (fresh.lineage, 1, fresh.fingerprint_key)
    assert again.callbacks["ops"].config == hook
    assert isinstance(again.callbacks["ops"].config.attributes[0].value, Fingerprint)
    assert again.vehicles[VIN].config == config and again.vehicles[VIN].vid == "vid-1"
    assert again.vehicles["VF3ABCDE0FG000001"].vid == "vid-2"


def test_journal_keeps_every_status_once_and_pending_ones_show(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    address = f"vehicle.{VIN}.immobilization"
    store.journal_start(
        JournalEntry(
            "k1", address, VIN, "ops", "Immobilization", "POST", {"path": "/x", "body": {}}, {"immobilized": True}
        )
    )
    assert store.read().pending[address].status == "Sending"
    assert store.journal_update("k1", "Accepted", remote_action_id="r1") is True
    assert store.journal_update("k1", "Accepted", remote_action_id="r1") is False
    assert store.journal_by_action("r1").key == "k1"  # type: ignore[union-attr]
    assert store.journal_update("k1", "Success") is True
    assert [s for s, _, _ in store.events("k1")] == ["Sending", "Accepted", "Success"]
    assert store.read().pending == {}
    store.update_vehicle(VIN, lambda c: apply_after(c, address, {"immobilized": True}))
    assert store.read().vehicles[VIN].config.immobilized is True
    store.set_backoff(f"vehicle.{VIN}", "TooManyWakeUpsOverMonth", "2026-12-01T00:00:00+00:00")
    store.set_backoff(f"vehicle.{VIN}", "MissingRights", "2026-12-02T00:00:00+00:00")
    assert store.read().backoffs[f"vehicle.{VIN}"].cause == "MissingRights"
    store.add_history(address, "send", "x")
    assert [row[3] for row in store.history(f"vehicle.{VIN}")] == ["send"]
    store.close()


def test_lock_is_exclusive_names_its_holder_and_can_be_released(state_url: str) -> None:
    first, second = open_store(state_url, fleet="F1"), open_store(state_url, fleet="F1")
    first.initialize(fresh_recorded())
    lock_id = first.acquire_lock("job one")
    with pytest.raises(LockHeldError, match="job one"):
        second.acquire_lock("job two")
    first.release_lock(lock_id)
    again = second.acquire_lock("job two")
    assert second.lock_holder().owner == "job two"  # type: ignore[union-attr]
    second.release_lock(again)
    first.close()
    second.close()


def test_lock_timeout_waits_for_the_holder(state_url: str) -> None:
    first, second = open_store(state_url, fleet="F1"), open_store(state_url, fleet="F1")
    first.initialize(fresh_recorded())
    lock_id = first.acquire_lock("short job")
    timer = threading.Timer(0.5, first.release_lock, [lock_id])
    timer.start()
    second.release_lock(second.acquire_lock("patient", timeout=10))
    timer.join()
    first.close()
    second.close()


def test_lock_of_a_killed_holder_is_free_again(state_url: str, tmp_path: Path) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    store.close()
    holder = _doomed_holder(state_url)
    store = open_store(state_url, fleet="F1")
    with pytest.raises(LockHeldError, match="doomed"):
        store.acquire_lock("next")
    holder.kill()
    holder.wait()
    store.release_lock(store.acquire_lock("next", timeout=10))
    store.close()


def _doomed_holder(state_url: str) -> subprocess.Popen[str]:
    """Another process holding the lock, for the test to kill."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from reconciler.state.backends import open_store\n"
            "s = open_store(sys.argv[1], fleet='F1')\n"
            "print(s.acquire_lock('doomed'), flush=True)\n"
            "time.sleep(60)\n",
            state_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert holder.stdout is not None
    holder.lock_id = holder.stdout.readline().strip()  # type: ignore[attr-defined]
    return holder


def test_unlock_refuses_a_live_holder_unless_forced(state_url: str) -> None:
    holder, other = open_store(state_url, fleet="F1"), open_store(state_url, fleet="F1")
    holder.initialize(fresh_recorded())
    lock_id = holder.acquire_lock("busy job")
    with pytest.raises(StateError, match="no lock wrong"):
        other.unlock("wrong")
    with pytest.raises(StateError, match="busy job"):
        other.unlock(lock_id)  # its holder (this process) still runs
    assert other.unlock(lock_id, force=True).owner == "busy job"
    other.release_lock(other.acquire_lock("after", timeout=5))
    holder.close()
    other.close()


def test_unlock_releases_the_lock_of_a_holder_that_is_gone(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    holder = _doomed_holder(state_url)
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 10  # PostgreSQL notices the dead session's connection soon after
    while True:
        try:
            assert store.unlock(holder.lock_id).owner == "doomed"  # type: ignore[attr-defined]
            break
        except StateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert store.lock_holder() is None
    store.close()


def test_a_state_recorded_for_another_fleet_is_refused(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    store.close()
    with pytest.raises(StateError, match="recorded for fleet F1, not F2"):
        open_store(state_url, fleet="F2")
    assert open_store(state_url, readonly=True, fleet="F1").recorded_fleet() == "F1"


def test_newer_schema_is_refused(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.close()
    if state_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(state_url.removeprefix("sqlite:///")) as db:
            db.execute("PRAGMA user_version = 99")
    else:
        import psycopg

        with psycopg.connect(state_url, autocommit=True) as db:
            db.execute("UPDATE reconciler_schema SET version = 99")
    with pytest.raises(StateError, match="newer than this reconciler knows"):
        open_store(state_url, fleet="F1")


def test_wake_ups_count_once_per_action_per_month_and_the_apis_refusal_spends_the_month(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    store.journal_start(
        JournalEntry("k1", f"vehicle.{VIN}.preconditioning", VIN, "ops", "ThermalPreconditioning", "POST", {}, None)
    )
    assert store.count_wakeup(VIN, "2026-11", "k1") == 1
    assert store.count_wakeup(VIN, "2026-11", "k1") == 1  # the same action seen again (poll, webhook)
    assert store.count_wakeup(VIN, "2026-11") == 2  # a send without a journaled action
    assert store.count_wakeup(VIN, "2026-10") == 1  # another month
    store.touch(VIN, "2026-11-26T09:00:00+00:00")
    assert store.wakeup_use(VIN, "2026-11") == WakeupUse("2026-11", 2, False, "2026-11-26T09:00:00+00:00")
    store.spend_wakeups(VIN, "2026-11")
    assert store.wakeup_use(VIN, "2026-11").spent and store.wakeup_use(VIN, "2026-11").used == 2
    store.spend_wakeups("VF3ABCDE0FG000001", "2026-11")  # a vehicle never counted
    assert store.wakeup_use("VF3ABCDE0FG000001", "2026-11") == WakeupUse("2026-11", 0, True, "")
    assert store.wakeup_use(VIN, "2026-12") == WakeupUse("2026-12", 0, False, "2026-11-26T09:00:00+00:00")
    store.close()


def test_prune_drops_finished_history_but_never_a_pending_action_or_an_addresss_last(state_url: str) -> None:
    store = open_store(state_url, fleet="F1")
    store.initialize(fresh_recorded())
    air_address, stolen = f"vehicle.{VIN}.preconditioning", f"vehicle.{VIN}.stolen"

    def sent(key: str, address: str, status: str) -> None:
        store.journal_start(JournalEntry(key, address, VIN, "ops", "X", "POST", {"path": "/x", "body": {}}, None))
        store.journal_update(key, "Accepted", remote_action_id=f"r-{key}")
        if status != "Accepted":
            store.journal_update(key, status)
        store.add_history(address, "send", key)

    for n in range(3):
        sent(f"a{n}", air_address, "Success")
    sent("a3", air_address, "Accepted")  # pending, and the address's last
    sent("s0", stolen, "Failed")
    sent("s1", stolen, "Success")  # the address's last
    assert store.prune("2000-01-01T00:00:00+00:00").actions == 0  # nothing is that old
    pruned = store.prune("9999-01-01T00:00:00+00:00")
    assert (pruned.actions, pruned.history, pruned.kept) == (4, 6, 2)
    assert pruned.events == 4 * 3  # each dropped action's Sending, Accepted and end
    assert [e.key for e in store.journal()] == ["a3", "s1"]
    assert [s for s, _, _ in store.events("s1")] == ["Sending", "Accepted", "Success"]
    assert store.read().pending[air_address].key == "a3"
    sent("s2", stolen, "Success")
    assert store.prune("9999-01-01T00:00:00+00:00", keep_since="2000-01-01T00:00:00+00:00").actions == 0
    store.close()
