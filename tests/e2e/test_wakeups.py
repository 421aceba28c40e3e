"""The wake-up budget: counting, batching per vehicle, holding, the reserve, the simulator's sleep model."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.paths import write
from support.runs import FLEET, SECRET, VINS, apply, remote_posts

from reconciler.cli import main
from reconciler.core.wakeups import month_of, next_month
from reconciler.simulator.server import Settings, Simulator
from reconciler.state.backends import open_store


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """Three sleeping vehicles that stay awake 2 s after a contact, 3 wake-ups a month each."""
    settings = Settings(
        tmp_path / "sim",
        fleet_id="0a123bc5d1e873066454b4d9",
        vins=[],
        latency=0.05,
        per_second=1000,
        sleeping=True,
        awake_for=2.0,  # long enough for one apply on a loaded machine
        wakeup_budget=3,
    )
    simulator = Simulator(settings)
    for vin in VINS:
        simulator.engine.add_vehicle(vin)
    simulator.start()
    for name, value in simulator.connection.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    yield simulator  # type: ignore[misc]
    simulator.stop()


def shown(capsys: pytest.CaptureFixture[str], fleet: Path, vin: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["state", "show", f"vehicle.{vin}", "-f", str(fleet)]) == 0
    return json.loads(capsys.readouterr().out)["wakeups"]  # type: ignore[no-any-return]


def statuses(sim: Simulator) -> list[tuple[str, str]]:
    return [(a.status, a.failure_cause) for a in sim.engine.actions.values()]


def test_one_wake_up_carries_all_of_a_vehicles_changes(
    sleepy: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, FLEET)
    assert apply(fleet) == 0
    posts = remote_posts(sleepy)
    assert len(posts) == 3 * 3 + 1  # 3 changes a vehicle, and the immobilization
    assert [sleepy.engine.wakeups(vin) for vin in VINS] == [1, 1, 1]
    woken = [a for a in sleepy.engine.actions.values() if any(s == "WakingUpVehicle" for s, _ in a.history)]
    assert len(woken) == 3  # the lifecycle says WakingUpVehicle only when it really woke the car
    used = shown(capsys, fleet, VINS[0])
    assert used["month"] == month_of(datetime.now(UTC)) and used["used"] == 1 and used["spent"] is False
    assert used["last_contact"]


def test_a_spent_budget_holds_changes_exit_4_and_an_immobilization_still_goes(
    sleepy: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = "wakeups: {perMonth: 3, reserve: 1, awakeFor: 2s}\n"  # 2 for reconciling, 1 kept
    fleet = write(tmp_path, FLEET + budget)
    assert apply(fleet) == 0
    time.sleep(2.3)  # asleep again
    fleet = write(tmp_path, FLEET.replace('"07:30"', '"07:45"') + budget)
    assert apply(fleet) == 0
    assert [sleepy.engine.wakeups(vin) for vin in VINS] == [2, 2, 2]
    time.sleep(2.3)
    month = month_of(datetime.now(UTC))
    resumes = next_month(datetime.now(UTC)).isoformat()
    fleet = write(
        tmp_path,
        FLEET.replace('"07:30"', '"08:00"').replace(
            "VF3ABCDE0FG123456: {profile: commuter}", "VF3ABCDE0FG123456: {profile: commuter, immobilized: true}"
        )
        + budget,
    )
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "--no-refresh"]) == 0
    out = capsys.readouterr().out
    assert f"wake-up budget spent (2/2 in {month}; resumes {resumes})" in out
    mark = len(sleepy.served)
    assert apply(fleet) == 4
    out = capsys.readouterr().out
    reason = f"held: wake-up budget spent (2/2 in {month}; resumes {resumes})"
    assert any(f"vehicle.{VINS[1]}.preconditioning" in line and reason in line for line in out.splitlines())
    sent = remote_posts(sleepy, mark)
    assert len(sent) == 1 and "immobilization" in sent[0].body  # the urgent change used the reserve
    assert [sleepy.engine.wakeups(vin) for vin in VINS] == [3, 2, 2]
    assert all(cause != "TooManyWakeUpsOverMonth" for _, cause in statuses(sleepy))  # the API's limit never hit
    assert shown(capsys, fleet, VINS[0])["used"] == 3


def test_the_apis_too_many_wake_ups_marks_the_vehicle_spent_until_the_month_ends(
    sleepy: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sleepy.engine.configure_vehicle(VINS[0], wakeups_left=0)  # the driver's app used them all
    fleet = write(tmp_path, FLEET)
    assert apply(fleet) == 4
    assert "TooManyWakeUpsOverMonth" in capsys.readouterr().out
    assert shown(capsys, fleet, VINS[0])["spent"] is True
    mark = len(sleepy.served)
    assert apply(fleet) == 4
    assert "the API refuses more wake-ups in" in capsys.readouterr().out
    assert remote_posts(sleepy, mark) == []


def test_send_counts_and_asks_for_force_before_using_the_reserve(
    sleepy: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, FLEET + "wakeups: {perMonth: 2, reserve: 1, awakeFor: 2s}\n")
    assert apply(fleet, "--target", "callback.ops") == 0  # send needs the callback
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--timeout", "30"]) == 0
    assert shown(capsys, fleet, VINS[0])["used"] == 1
    time.sleep(2.3)
    mark = len(sleepy.served)
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--timeout", "30"]) == 1
    err = capsys.readouterr().err
    assert "has used 1 of its 1 wake-ups" in err and "comes from the reserve of 1" in err and "--force" in err
    assert remote_posts(sleepy, mark) == []
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--force", "--timeout", "30"]) == 0
    assert "warning:" in capsys.readouterr().err
    assert shown(capsys, fleet, VINS[0])["used"] == 2
    assert sleepy.engine.wakeups(VINS[0]) == 2
    time.sleep(2.3)
    # urgent one-offs are what the reserve is for: they go with a warning, no --force
    assert main(["send", VINS[0], "immobilize", "on", "-f", str(fleet), "--timeout", "30"]) == 0
    assert "reserve" in capsys.readouterr().err
    assert sleepy.engine.by_vin(VINS[0]).immobilized and sleepy.engine.wakeups(VINS[0]) == 3


def test_webhook_events_count_a_wake_up_once(
    sleepy: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, FLEET)
    assert apply(fleet, "--no-wait") == 0
    store = open_store(os.environ["RECONCILER_STATE"])
    try:
        from reconciler.service.webhook_receiver import record_event

        month = month_of(datetime.now(UTC))
        deadline = time.monotonic() + 10
        while any(not a.final for a in sleepy.engine.actions.values()) and time.monotonic() < deadline:
            sleepy.engine.tick()
            time.sleep(0.05)
        for action in sleepy.engine.actions.values():
            vin = sleepy.engine.vehicles[action.vid].vin
            for status, _ in action.history:  # every status, delivered twice
                event = {
                    "remoteActionId": action.id,
                    "vin": vin,
                    "remoteType": action.remote_type,
                    "eventStatus": {"type": "Pending", "status": status},
                }
                entry = store.journal_by_action(action.id)
                assert entry is not None
                record_event(store, entry, event)
                record_event(store, entry, event)
        assert [store.wakeup_use(vin, month).used for vin in VINS] == [1, 1, 1]
    finally:
        store.close()
