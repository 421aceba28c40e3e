"""The wake-up budget: counting, batching per vehicle, holding, the reserve, the simulator's sleep model."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2e import FLEET, SECRET, VINS, apply, remote_posts
from planning import VIN, air, desired, recorded

from reconciler.cli import main
from reconciler.core.model import VehicleConfig
from reconciler.core.planner import plan
from reconciler.core.wakeups import WakeupPolicy, WakeupUse, asleep, month_of, next_month, spent_reason
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader
from reconciler.simulator.server import Settings, Simulator
from reconciler.state.backends import open_store

NOV = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
POLICY = WakeupPolicy(per_month=20, reserve=5, awake_for=180)

# the arithmetic


def test_the_budget_is_the_allowance_less_the_reserve_and_resumes_next_month() -> None:
    assert POLICY.budget == 15
    assert spent_reason(POLICY, WakeupUse("2026-11", 14), NOV) == ""
    assert spent_reason(POLICY, WakeupUse("2026-11", 15), NOV) == (
        "wake-up budget spent (15/15 in 2026-11; resumes 2026-12-01)"
    )
    assert spent_reason(POLICY, WakeupUse("2026-10", 15), NOV) == ""  # last month's count is over
    assert next_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)).isoformat() == "2027-01-01"
    assert month_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-11"  # months are UTC


def test_the_apis_refusal_spends_the_month_whatever_the_count_and_without_a_policy() -> None:
    spent = WakeupUse("2026-11", 2, spent=True)
    assert "the API refuses more wake-ups in 2026-11; resumes 2026-12-01" in spent_reason(POLICY, spent, NOV)
    assert spent_reason(None, spent, NOV)
    assert spent_reason(None, WakeupUse("2026-11", 99), NOV) == ""  # no wakeups: nothing held on a count


def test_a_vehicle_is_asleep_when_not_contacted_within_awake_for() -> None:
    assert asleep(None, NOV, 180)
    assert asleep(WakeupUse("2026-11"), NOV, 180)  # never contacted
    assert not asleep(WakeupUse("2026-11", last_contact="2026-11-26T08:58:00+00:00"), NOV, 180)
    assert asleep(WakeupUse("2026-11", last_contact="2026-11-26T08:56:59+00:00"), NOV, 180)


@pytest.mark.parametrize(
    ("wakeups", "message"),
    [
        ("{perMonth: 20, reserve: 20}", "reserve"),
        ("{perMonth: 20.5}", "whole number"),
        ("{perMonth: 0}", "perMonth"),
        ("{perMonth: 20, reserve: -1}", "reserve"),
        ("{perMonth: 20, awakeFor: soon}", "such as 30s"),
        ("{perMonth: 20, awakeFor: 100000000000000000000}", "(the most is 31622400)"),
        ("{perMonth: 20, awakeFor: 400d}", "longer than a year"),
        ("{perMonth: 20, awakeFor: ''}", "expected form"),
        ("{perMonth: null}", "expected a whole number"),
        ("{perMonth: 20, burst: 3}", "burst"),
        ("{reserve: 5}", "perMonth"),
    ],
)
def test_a_bad_wakeups_block_is_refused_with_its_place(tmp_path: Path, wakeups: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + f"wakeups: {wakeups}\n")
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {"HOOK_TOKEN": SECRET})
    text = str(caught.value)
    assert f"{path.name}:{FLEET.count(chr(10)) + 1}:" in text and message in text


def test_the_wakeups_block_is_read_and_does_not_change_the_config_hash(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    before = loader.read(path, {"HOOK_TOKEN": SECRET})
    path.write_text(FLEET + "wakeups: {perMonth: 20, reserve: 5, awakeFor: 3m}\n")
    after = loader.read(path, {"HOOK_TOKEN": SECRET})
    assert after.wakeups == WakeupPolicy(20, 5, 180.0)
    assert before.wakeups is None and before.config_hash == after.config_hash


# the planner


def test_a_spent_vehicle_keeps_its_non_urgent_changes_and_sends_urgent_ones() -> None:
    want = desired({VIN: VehicleConfig(preconditioning={1: air(1)}, immobilized=True)})
    want = replace(want, wakeups=POLICY)
    spent = recorded({VIN: VehicleConfig()}, wakeups={VIN: WakeupUse("2026-11", 15)})
    result = plan(want, spent, now="2026-11-26T09:00:00+00:00")
    assert [c.address for c in result.changes] == [f"vehicle.{VIN}.immobilization"]
    assert [(h.address, h.reason, h.kind) for h in result.held] == [
        (
            f"vehicle.{VIN}.preconditioning",
            "wake-up budget spent (15/15 in 2026-11; resumes 2026-12-01)",
            "wakeups",
        )
    ]
    fresh = recorded({VIN: VehicleConfig()}, wakeups={VIN: WakeupUse("2026-11", 14)})
    assert len(plan(want, fresh, now="2026-11-26T09:00:00+00:00").changes) == 2


# end to end, against a simulator whose vehicles sleep


@pytest.fixture
def sleepy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """Three sleeping vehicles that stay awake 1 s after a contact, 3 wake-ups a month each."""
    settings = Settings(
        tmp_path / "sim",
        fleet_id="0a123bc5d1e873066454b4d9",
        vins=[],
        latency=0.05,
        per_second=1000,
        sleeping=True,
        awake_for=1.0,
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


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


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
    budget = "wakeups: {perMonth: 3, reserve: 1, awakeFor: 1s}\n"  # 2 for reconciling, 1 kept
    fleet = write(tmp_path, FLEET + budget)
    assert apply(fleet) == 0
    time.sleep(1.2)  # asleep again
    fleet = write(tmp_path, FLEET.replace('"07:30"', '"07:45"') + budget)
    assert apply(fleet) == 0
    assert [sleepy.engine.wakeups(vin) for vin in VINS] == [2, 2, 2]
    time.sleep(1.2)
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
    assert f"vehicle.{VINS[1]}.preconditioning: held: wake-up budget spent (2/2 in {month}; resumes {resumes})" in out
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
    fleet = write(tmp_path, FLEET + "wakeups: {perMonth: 2, reserve: 1, awakeFor: 1s}\n")
    assert apply(fleet, "--target", "callback.ops") == 0  # send needs the callback
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--timeout", "30"]) == 0
    assert shown(capsys, fleet, VINS[0])["used"] == 1
    time.sleep(1.2)
    mark = len(sleepy.served)
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--timeout", "30"]) == 1
    err = capsys.readouterr().err
    assert "has used 1 of its 1 wake-ups" in err and "comes from the reserve of 1" in err and "--force" in err
    assert remote_posts(sleepy, mark) == []
    assert main(["send", VINS[0], "precondition", "now", "-f", str(fleet), "--force", "--timeout", "30"]) == 0
    assert "warning:" in capsys.readouterr().err
    assert shown(capsys, fleet, VINS[0])["used"] == 2
    assert sleepy.engine.wakeups(VINS[0]) == 2
    time.sleep(1.2)
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
