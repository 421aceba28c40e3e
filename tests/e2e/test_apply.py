"""apply end to end against the simulator over HTTPS with mutual TLS, counting the calls it receives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.runs import FLEET, SECRET, VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Settings, Simulator
from reconciler.state.sqlite import open_sqlite


def test_first_apply_converges_and_second_sends_nothing(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    sent = mutations(sim)
    assert [s.method for s in sent if "/remote/callbacks" in s.path] == ["POST"]
    assert len(remote_posts(sim)) == 3 * 3 + 1  # precond, schedule, preferences each; one immobilization
    assert "Apply finished: 11 confirmed, 0 failed." in capsys.readouterr().out
    for vin in VINS:
        vehicle = sim.engine.by_vin(vin)
        assert set(vehicle.air) == {"1", "2"} and set(vehicle.charge) == {"1"}
    assert sim.engine.by_vin(VINS[1]).immobilized

    mark = len(sim.served)
    assert apply(fleet) == 0
    assert mutations(sim, mark) == []
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--detailed-exitcode"]) == 0


def test_an_edit_sends_only_the_changed_slot(sim: Simulator, fleet: Path) -> None:
    assert apply(fleet) == 0
    fleet.write_text(
        FLEET.replace(
            "VR3KLMNP2RS345678: {profile: commuter}",
            """VR3KLMNP2RS345678:
    profile: commuter
    preconditioning:
      - {slot: 1, start: "07:30", days: weekdays}
      - {slot: 2, start: "18:00", days: weekdays}""",
        )
    )
    mark = len(sim.served)
    assert apply(fleet) == 0
    [post] = mutations(sim, mark)
    assert post.body["preconditioning"]["airConditioning"]["programs"] == [
        {
            "actionsType": "Set",
            "slot": 2,
            "enabled": True,
            "recurrence": "Daily",
            "start": "PT18H",
            "occurence": {"day": ["Mon", "Tue", "Wed", "Thu", "Fri"]},
        }
    ]
    assert sim.engine.by_vin(VINS[2]).air["2"]["start"] == "PT18H"


def test_removed_slot_is_deleted_and_driver_slot_untouched(sim: Simulator, fleet: Path) -> None:
    assert apply(fleet) == 0
    sim.engine.drift(
        VINS[0], 4, {"enabled": True, "recurrence": "Daily", "start": "PT9H", "occurence": {"day": ["Sun"]}}
    )
    fleet.write_text(FLEET.replace('      - {slot: 2, start: "17:00", days: weekdays}\n', ""))
    mark = len(sim.served)
    assert apply(fleet) == 0
    bodies = [s.body["preconditioning"]["airConditioning"]["programs"] for s in remote_posts(sim, mark)]
    assert bodies == [[{"actionsType": "Delete", "slot": 2}]] * 3
    assert set(sim.engine.by_vin(VINS[0]).air) == {"1", "4"}


def test_rate_limit_storms_and_server_errors_are_ridden_out(sim: Simulator, fleet: Path) -> None:
    sim.faults.rate_limit_storm = 5
    sim.faults.server_errors = 2
    assert apply(fleet) == 0
    assert len(remote_posts(sim)) == 10
    assert sum(1 for s in sim.served if s.status == 429) == 5


def test_post_answered_too_late_is_found_not_resent(
    sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "1")
    main(["apply", "-f", str(fleet), "--auto-approve", "--target", "callback.ops"])
    sim.faults.late_posts, sim.faults.late_delay = 1, 2.5
    assert apply(fleet) == 0
    labels = [a.remote.get("label") for a in sim.engine.actions.values()]
    assert len(labels) == 10 and len(set(labels)) == 10  # each key exactly once


def test_failing_vehicle_exits_4_and_is_retried_alone(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.engine.configure_vehicle(VINS[2], fail_cause="VehicleConnectionTimeout")
    assert apply(fleet) == 4
    out = capsys.readouterr().out
    assert "vehicle.VR3KLMNP2RS345678.preconditioning" in out and "VehicleConnectionTimeout" in out
    sim.engine.configure_vehicle(VINS[2], fail_cause="")
    mark = len(sim.served)
    assert apply(fleet) == 0
    vids = {s.path.split("/vehicles/")[1].split("/")[0] for s in remote_posts(sim, mark)}
    assert vids == {sim.engine.by_vin(VINS[2]).vid}
    # the failed chain stopped at its first action: schedule and preferences share a remote type
    assert len(remote_posts(sim, mark)) == 3


def test_slow_failure_cause_is_backed_off(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim.engine.configure_vehicle(VINS[0], asleep=True, wakeups_left=0)
    assert apply(fleet) == 4
    assert "TooManyWakeUpsOverMonth" in capsys.readouterr().out
    mark = len(sim.served)
    assert apply(fleet) == 4  # held back, reported, not resent
    assert remote_posts(sim, mark) == []
    out = capsys.readouterr().out  # the API's own count wins: no retries before the month ends
    assert "wake-up budget spent (the API refuses more wake-ups in" in out and "3 held" in out


def test_stale_saved_plan_is_refused_with_exit_3(sim: Simulator, fleet: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", str(plan_file)]) == 0
    assert apply(fleet, "--target", "callback.ops") == 0
    mark = len(sim.served)
    assert main(["apply", str(plan_file)]) == 3
    assert mutations(sim, mark) == []


def test_a_stale_plan_says_what_changed_and_blames_nothing_else(
    sim: Simulator, fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apply(fleet, "--target", "callback.ops") == 0
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv("HOOK_TOKEN", "a-rotated-token")  # reviewed: the secret changes
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", str(plan_file)]) == 0
    monkeypatch.setenv("HOOK_TOKEN", SECRET)  # applied: it does not
    assert main(["apply", str(plan_file)]) == 3
    assert "a secret of callback.ops has another value in the environment" in capsys.readouterr().err
    monkeypatch.setenv("HOOK_TOKEN", "a-rotated-token")
    saved = json.loads(plan_file.read_text())
    saved["changes"][1]["summary"] = "something else"
    plan_file.write_text(json.dumps(saved))
    assert main(["apply", str(plan_file)]) == 3
    assert "was the plan file edited?" in capsys.readouterr().err
    assert remote_posts(sim) == []


def test_a_spent_daily_quota_leaves_accepted_actions_pending_not_failed(
    tmp_path: Path, fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        tmp_path / "quota", fleet_id="0a123bc5d1e873066454b4d9", vins=VINS, latency=0.5, per_second=1000, per_day=11
    )
    with Simulator(settings) as limited:
        for name, value in limited.connection.environment().items():
            monkeypatch.setenv(name, value)
        assert apply(fleet) == 4
        report = capsys.readouterr().out
        lines = [line for line in report.splitlines() if line.startswith("  ")]
        assert any("pending" in line and "accepted" in line for line in lines), report
        assert any("not sent: the API's quota is spent" in line for line in lines), report
        assert not any(" failed: " in line for line in lines), report


def test_saved_plan_is_applied_exactly(sim: Simulator, fleet: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert (
        main(
            [
                "plan",
                "-f",
                str(fleet),
                "--no-refresh",
                "--out",
                str(plan_file),
                "--target",
                f"vehicle.{VINS[0]}.preconditioning",
            ]
        )
        == 0
    )
    assert main(["apply", str(plan_file)]) == 0
    planned = json.loads(plan_file.read_text())["changes"]
    assert [c["address"] for c in planned] == ["callback.ops", f"vehicle.{VINS[0]}.preconditioning"]
    assert len(remote_posts(sim)) == 1
    fleet.write_text(FLEET + "\n")
    assert main(["apply", str(plan_file)]) == 3  # the fleet file changed since


def test_second_apply_while_locked_exits_3_naming_the_holder(
    sim: Simulator, fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_sqlite(os.environ["RECONCILER_STATE"])
    lock_id = store.acquire_lock("ci job 42")
    try:
        assert apply(fleet) == 3
        err = capsys.readouterr().err
        assert "locked by ci job 42" in err and lock_id in err
        assert apply(fleet, "--lock-timeout", "0.5") == 3
        assert main(["state", "unlock", "wrong-id", "-f", str(fleet)]) == 1
        assert main(["state", "unlock", lock_id, "-f", str(fleet)]) == 1  # its holder (this process) still runs
        assert "still running" in capsys.readouterr().err
        assert main(["state", "unlock", lock_id, "--force", "-f", str(fleet)]) == 0
        assert apply(fleet) == 0
    finally:
        store.close()


def test_no_wait_stops_at_accepted(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(fleet, "--no-wait") == 0
    assert "accepted" in capsys.readouterr().out


def test_apply_needs_auto_approve_without_a_terminal(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "-f", str(fleet)]) == 1
    assert "--auto-approve" in capsys.readouterr().err


def test_unknown_vin_is_said_naming_the_vehicle(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.write_text(FLEET + "  VF3ZZZZZZZZ999999: {profile: commuter}\n")
    assert apply(fleet, "--no-refresh") == 4  # blind: found out when its vid is looked up
    assert "VIN VF3ZZZZZZZZ999999 is not in fleet" in capsys.readouterr().out
    assert apply(fleet) == 0  # with the fleet's listing: cannot apply, said, and no failure
    assert "the API does not list VF3ZZZZZZZZ999999" in capsys.readouterr().out


def test_wrong_password_exits_1_with_the_api_error(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_PASSWORD", "wrong")
    assert apply(fleet) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "uuid" in err and "Traceback" not in err


def test_state_commands_show_what_was_sent(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(fleet) == 0
    capsys.readouterr()
    assert main(["state", "list", "-f", str(fleet)]) == 0
    assert f"vehicle.{VINS[1]}.immobilization" in capsys.readouterr().out
    assert main(["state", "show", f"vehicle.{VINS[0]}.preconditioning", "-f", str(fleet)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in shown["actions"][0]["statuses"]][:2] == ["Sending", "Accepted"]
    assert shown["actions"][0]["status"] == "Success"
    assert main(["state", "history", f"vehicle.{VINS[0]}", "-f", str(fleet)]) == 0
    assert "Success" in capsys.readouterr().out


def test_secrets_appear_in_no_output_and_no_file(
    sim: Simulator, fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    for args in (["state", "list"], ["state", "history"], ["state", "show", "callback.ops"]):
        main([*args, "-f", str(fleet)])
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    password = os.environ["RECONCILER_PASSWORD"]
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and password.encode() not in data, path
    # what the API received does carry the secret: it is the webhook's own header
    created = next(s for s in sim.served if s.path.endswith("/remote/callbacks") and s.method == "POST")
    assert created.body["callback"]["webhook"]["attributes"][0]["value"] == SECRET
