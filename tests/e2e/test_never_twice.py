"""Never twice: what ends an action is one transaction, and a crash at its narrowest instant sends nothing again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.runs import VINS, apply, remote_posts

from reconciler.core import planner
from reconciler.fleetfile import loader
from reconciler.run import connection
from reconciler.run.executor import Executor
from reconciler.service.webhook_receiver import record_event
from reconciler.simulator.server import Simulator
from reconciler.state.backends import open_store
from reconciler.state.base import StateStore

FINAL = ("Success", "AlreadyDone", "Failed")


class Crash(BaseException):
    """The process dies here (a BaseException, as a kill is: nothing handles it)."""


class CrashAfterFinalStatus:
    """A state store that dies right after writing an action's final status, before anything else."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def journal_update(self, key: str, status: str, **options: Any) -> bool:
        written = self._store.journal_update(key, status, **options)
        if status in FINAL:
            raise Crash(f"killed right after {status} was written")
        return written


@contextmanager
def state(fleet: Path) -> Iterator[tuple[StateStore, Any]]:
    desired = loader.read(fleet, os.environ)
    store = open_store(os.environ["RECONCILER_STATE"], fleet=desired.fleet)
    try:
        yield store, desired
    finally:
        store.close()


def immobilizations(sim: Simulator) -> list[Any]:
    return [s for s in remote_posts(sim) if "immobilization" in (s.body or {})]


def test_a_crash_right_after_the_final_status_sends_nothing_twice(sim: Simulator, fleet: Path) -> None:
    assert apply(fleet, "--target", "callback.ops") == 0
    address = f"vehicle.{VINS[1]}.immobilization"  # never reported by the status: only the state knows it is done
    with state(fleet) as (store, desired):
        recorded = store.read()
        planned = planner.plan(desired, recorded, targets=[address], now="2026-12-02T10:00:00+00:00")
        assert [c.address for c in planned.changes] == [address]
        with connection.connect(desired, os.environ["RECONCILER_STATE"], str(fleet), os.environ) as api:
            executor = Executor(
                api, CrashAfterFinalStatus(store), desired, fingerprint_key=recorded.fingerprint_key, timeout=30
            )
            with pytest.raises(Crash):
                executor.run(planned)
        # Nothing of the end was kept: the action is still pending, the flag not yet recorded.
        assert [e.status for e in store.journal(address=address)] == ["Accepted"]
        assert store.read().vehicles[VINS[1]].config.immobilized is None
    assert len(immobilizations(sim)) == 1
    assert apply(fleet, "--target", address) == 0  # settles it by looking it up again
    assert len(immobilizations(sim)) == 1
    with state(fleet) as (store, _):
        assert store.read().vehicles[VINS[1]].config.immobilized is True
        assert [e.status for e in store.journal(address=address)] == ["Success"]
    assert apply(fleet, "--target", address) == 0
    assert len(immobilizations(sim)) == 1


def test_a_crash_while_the_receiver_records_an_end_changes_nothing(sim: Simulator, fleet: Path) -> None:
    address = f"vehicle.{VINS[1]}.immobilization"
    assert apply(fleet, "--target", address, "--no-wait") == 0
    with state(fleet) as (store, _):
        entry = store.journal(address=address)[0]
        event = {
            "remoteActionId": entry.remote_action_id,
            "vin": VINS[1],
            "remoteType": "Immobilization",
            "eventStatus": {"type": "Done", "status": "Success"},
        }
        with pytest.raises(Crash):
            record_event(CrashAfterFinalStatus(store), entry, event)  # type: ignore[arg-type]
        assert [e.status for e in store.journal(address=address)] == ["Accepted"]
        assert store.read().vehicles[VINS[1]].config.immobilized is None
        assert store.history(address)[-1][3] == "send"
        assert record_event(store, entry, event) is True  # delivered again: recorded, once
        assert record_event(store, entry, event) is False
        assert store.read().vehicles[VINS[1]].config.immobilized is True


def test_an_apply_follows_what_an_earlier_run_left_pending_and_exits_0(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.engine.latency = 0.5  # each action takes about two seconds to end
    assert apply(fleet, "--no-wait") == 0
    capsys.readouterr()
    with state(fleet) as (store, _):
        inherited = {e.address for e in store.journal(pending_only=True)}
    assert len(inherited) >= 5
    sent = len(remote_posts(sim))
    assert apply(fleet, "--verbose") == 0  # --wait (the default): it waits for them as for its own
    out = capsys.readouterr().out
    assert len(remote_posts(sim)) == sent
    for address in inherited:
        assert f"{address}  confirmed" in out or f"{address} confirmed" in " ".join(out.split())
    with state(fleet) as (store, _):
        assert store.journal(pending_only=True) == []


def plan_json(fleet: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    import json

    from reconciler.cli import main

    capsys.readouterr()
    code = main(["plan", "-f", str(fleet), "--format", "json", "--detailed-exitcode", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_report_older_than_our_confirmed_action_is_not_drift(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    assert apply(fleet) == 0
    sim.engine.report_lag = 6.0  # from now on the vehicles report what they held six seconds ago
    fleet.write_text(fleet.read_text().replace('start: "07:30"', 'start: "08:00"'))
    assert apply(fleet) == 0  # slot 1 moves to 08:00 on every vehicle, confirmed
    address = f"vehicle.{VINS[0]}.preconditioning"
    # The vehicles now report what they held before the change just confirmed: that says nothing of it.
    sent = len(remote_posts(sim))
    code, plan = plan_json(fleet, capsys)
    assert code == 0, plan["changes"]
    assert plan["drift"] == [] and plan["changes"] == []
    assert address in {u["address"] for u in plan["unobserved"]}
    assert "not reported since" in plan["unobserved"][0]["reason"]
    assert apply(fleet) == 0
    assert len(remote_posts(sim)) == sent  # nothing sent again
    time.sleep(6.5)  # the reports catch up: they are believed again, and they match
    code, plan = plan_json(fleet, capsys)
    assert (code, plan["unobserved"], plan["drift"]) == (0, [], [])
    sim.engine.drift(VINS[2], 2, None)  # a driver deletes a slot: a newer report that differs is drift
    time.sleep(6.5)
    code, plan = plan_json(fleet, capsys)
    assert code == 2
    assert [(d["address"], d["field"]) for d in plan["drift"]] == [(f"vehicle.{VINS[2]}.preconditioning", "slot 2")]


def test_our_own_action_that_ended_after_no_wait_is_settled_not_drift(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    assert apply(fleet, "--no-wait") == 0
    deadline = time.monotonic() + 10
    while any(not a.final for a in sim.engine.actions.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    code, plan = plan_json(fleet, capsys)
    assert plan["drift"] == [] and plan["adoptions"] == [] and plan["held"] == []
    assert code == 0, plan["changes"]
    with state(fleet) as (store, _):
        assert len(store.journal(pending_only=True)) > 0  # plan wrote nothing: apply settles them
    assert apply(fleet) == 0
    code, plan = plan_json(fleet, capsys)
    assert code == 0 and plan["drift"] == []
