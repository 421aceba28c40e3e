"""Brakes: rollout waves with a failure budget, change windows, a cap on sends per minute."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.paths import ALL_IN_ONE_GROUP

from reconciler.cli import main
from reconciler.core import waves
from reconciler.simulator.server import Settings, Simulator


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


ROLLOUT_VINS = [f"VF3WAVEST{n:08d}" for n in range(40)]


ROLLOUT_FLEET = ALL_IN_ONE_GROUP + "rollout: {waves: [5%, 25%, 100%], bake: BAKE, maxFailures: 10%}\n"


@pytest.fixture
def forty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    settings = Settings(
        tmp_path / "sim40", fleet_id="0a123bc5d1e873066454b4d9", vins=ROLLOUT_VINS, latency=0.05, per_second=5000
    )
    simulator = Simulator(settings)
    simulator.start()
    for name, value in simulator.connection.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    yield simulator  # type: ignore[misc]
    simulator.stop()


def sent_to(sim: Simulator, since: int = 0) -> list[str]:
    vins = {v.vid: v.vin for v in sim.engine.vehicles.values()}
    return [
        vins[s.path.split("/vehicles/")[1].split("/")[0]]
        for s in sim.served[since:]
        if s.method == "POST" and s.path.endswith("/remotes") and s.status == 202
    ]


def test_failing_canaries_halt_the_rollout_until_it_is_continued(
    forty: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "1s"))
    canaries = waves.order(ROLLOUT_VINS)[:2]
    for vin in canaries:
        forty.engine.configure_vehicle(vin, fail_cause="VehicleError")
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 5
    out = capsys.readouterr().out
    assert sorted(sent_to(forty)) == sorted(canaries)  # nobody else
    assert "Rollout halted at wave 1 of 3: 2 of 2 vehicles failed" in out and canaries[0] in out
    mark = len(forty.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 5  # the same file: nothing sent
    assert sent_to(forty, mark) == []
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rollout"]["state"] == "halted"
    # Every change the halt holds is still in the plan, with its schedule: nothing is hidden from the reviewer.
    assert len(doc["changes"]) == 40 and {c["schedule"]["kind"] for c in doc["changes"]} == {"halted"}
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 2
    for vin in canaries:
        forty.engine.configure_vehicle(vin, fail_cause="")
    mark = len(forty.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--continue-rollout"]) == 0
    sent = sent_to(forty, mark)
    assert sent[:2] == canaries or sorted(sent[:2]) == sorted(canaries)  # the failed ones first
    assert sorted(sent) == sorted(ROLLOUT_VINS)  # then every other vehicle, once
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 0


def test_a_changed_file_starts_a_new_rollout(forty: Simulator, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "0s"))
    for vin in waves.order(ROLLOUT_VINS)[:2]:
        forty.engine.configure_vehicle(vin, fail_cause="VehicleError")
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 5
    for vin in waves.order(ROLLOUT_VINS)[:2]:
        forty.engine.configure_vehicle(vin, fail_cause="")
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "0s").replace('"07:30"', '"08:00"'))
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    assert main(["state", "history"]) == 0


def test_no_wait_and_watch_advance_one_wave_a_run(forty: Simulator, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "0s"))
    order = waves.order(ROLLOUT_VINS)
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--no-wait"]) == 0
    assert sorted(sent_to(forty)) == sorted(order[:2])
    time.sleep(0.5)  # the canaries' actions end
    mark = len(forty.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--no-wait"]) == 0
    assert sorted(sent_to(forty, mark)) == sorted(order[2:10])


def test_a_halt_survives_the_process_being_killed(forty: Simulator, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "30s"))
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(fleet), "--auto-approve"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while len(sent_to(forty)) < 2:  # wave 1 sent; then it bakes for 30 s
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    mark = len(forty.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--no-wait"]) == 0  # still baking: nothing new
    assert sent_to(forty, mark) == []
    assert main(["plan", "-f", str(fleet), "--format", "json"]) == 0


def test_a_closed_window_sends_only_the_immobilization_and_exits_3(
    forty: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=3)).strftime("%H:%M")
    end = (datetime.now(UTC) + timedelta(hours=4)).strftime("%H:%M")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        ROLLOUT_FLEET.split("rollout:")[0]
        + f"windows: {{timezone: UTC, allow: [{{days: everyday, start: '{start}', end: '{end}'}}]}}\n"
        + f"vehicles:\n  {ROLLOUT_VINS[0]}: {{immobilized: true}}\n"
    )
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 3
    out = capsys.readouterr().out
    posted = [s for s in forty.served if s.method == "POST" and s.path.endswith("/remotes")]
    assert [list(s.body)[1] for s in posted] == ["immobilization"]
    assert f"Change window closed until {datetime.now(UTC).strftime('%Y-%m-%d')}" in out or "closed until" in out
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--ignore-windows"]) == 0


def test_watch_advances_one_wave_a_run(forty: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(ROLLOUT_FLEET.replace("BAKE", "0s"))
    order = waves.order(ROLLOUT_VINS)
    assert main(["watch", "-f", str(fleet), "--once"]) == 0
    assert sorted(sent_to(forty)) == sorted(order[:2])  # waits for outcomes, yet stops after the wave
    run = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"event": "run"' in line)
    assert run["rollout"] == {"state": "running", "wave": 1, "waves": 3, "held": 38}
    mark = len(forty.served)
    assert main(["watch", "-f", str(fleet), "--once"]) == 0
    assert sorted(sent_to(forty, mark)) == sorted(order[2:10])
