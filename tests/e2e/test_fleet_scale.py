"""Fleet scale (DESIGN §10.3): a timeout per action, a deadline per run, outcomes from the receiver, short reports."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.receiver import TOKEN, Receiver
from support.runs import VINS, remote_posts

from reconciler.cli import main
from reconciler.commands.shell import Shell
from reconciler.simulator.server import Settings, Simulator

FLEET = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
callbacks:
  ops:
    webhook: {target: "TARGET", headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}}
    remoteTypes: [ThermalPreconditioning]
profiles:
  p: {preconditioning: [{slot: 1, start: "07:30", days: weekdays}]}
groups:
  - {name: all, match: {all: true}, profile: p}
"""


def fleet_of(tmp_path: Path, target: str = "https://hooks.example.com/x") -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.replace("TARGET", target))
    return path


@pytest.fixture
def slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """24 vehicles whose actions take about a second to end, as the real API's do."""
    settings = Settings(tmp_path / "sim", fleet_id="0a123bc5d1e873066454b4d9", vehicles=24, latency=0.25)
    settings.per_second = 1000
    with Simulator(settings) as simulator:
        for name, value in simulator.connection.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
        monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
        yield simulator


def apply_json(fleet: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["apply", "-f", str(fleet), "--auto-approve", "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_the_timeout_bounds_each_actions_wait_not_the_whole_run(
    slow: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 24 actions of half a second or more, 4 at a time: 3 s or more in all, yet each one waits at most 1.5 s.
    code, report = apply_json(fleet_of(tmp_path), capsys, "--parallelism", "4", "--timeout", "1.5")
    assert code == 0, report
    counts = report["counts"]
    assert isinstance(counts, dict) and counts["confirmed"] == 25  # the callback and 24 vehicles


def test_the_deadline_bounds_the_run_and_the_next_run_sends_the_rest_once(
    slow: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_of(tmp_path)
    capsys.readouterr()
    code = main(["apply", "-f", str(fleet), "--auto-approve", "--parallelism", "4", "--deadline", "2.5"])
    out = capsys.readouterr().out
    assert code == 4, out
    assert "not sent: the run's --deadline passed" in out
    assert sum("not sent" in line for line in out.splitlines()) == 1  # counted on one line, not one per address
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    posted = Counter(s.path.split("/vehicles/")[1].split("/")[0] for s in remote_posts(slow))
    assert len(posted) == 24 and set(posted.values()) == {1}  # every vehicle once, over the two runs


def test_with_a_receiver_running_apply_takes_outcomes_from_the_state(
    slow: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver()
    fleet = fleet_of(tmp_path, receiver.url)
    try:
        receiver.start(fleet, max_body=1024 * 1024, heartbeat=True)
        code, report = apply_json(fleet, capsys)
        assert code == 0, report
        learnt = report["outcomes_learnt"]
        assert isinstance(learnt, dict) and learnt["receiver"]
        assert learnt["followed"] == 24 and learnt["from_receiver"] >= 20
        assert learnt["polls"] <= 0.25 * 24
    finally:
        receiver.stop()
    # Without a fresh heartbeat (the receiver stopped), apply polls as before.
    fleet.write_text(fleet.read_text().replace('"07:30"', '"07:45"'))
    capsys.readouterr()
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "from the webhook receiver" not in out and "status polls for 24 action(s)" in out


def test_the_report_sums_up_and_recaps_the_failures(
    slow: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vins = sorted(v.vin for v in slow.engine.vehicles.values())
    for vin in vins[:3]:
        slow.engine.configure_vehicle(vin, fail_cause="VehicleError")
    capsys.readouterr()
    assert main(["apply", "-f", str(fleet_of(tmp_path)), "--auto-approve"]) == 4
    lines = capsys.readouterr().out.splitlines()
    report = lines[next(n for n, line in enumerate(lines) if "failed: VehicleError" in line) :]
    assert len(report) <= 12, report  # 3 failures, a count of the rest, the recap: not 25 lines
    assert any("✓ 22 confirmed" in line for line in report)  # the callback and 21 vehicles
    assert "Failed (3):" in report and report[-1].startswith("Next: reconciler explain ")
    assert os.environ["RECONCILER_STATE"]  # the state is where the fixture put it


def capability_reads(sim: Simulator, since: int = 0) -> int:
    return sum(1 for s in sim.served[since:] if s.method == "GET" and "/fleets/" not in s.path)


def test_refresh_records_what_plans_would_read_again_and_sends_nothing(
    slow: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_of(tmp_path)
    assert main(["plan", "-f", str(fleet)]) == 0
    assert capability_reads(slow) == 24  # a read-only plan cannot keep them: every PR plan would read them again
    capsys.readouterr()
    mark = len(slow.served)
    assert main(["refresh", "-f", str(fleet)]) == 0
    out = capsys.readouterr().out
    assert "listing: 24 vehicles" in out and "capabilities: 24 read and recorded" in out
    assert capability_reads(slow, mark) == 24
    assert [s for s in slow.served[mark:] if s.method != "GET"] == []  # nothing sent
    mark = len(slow.served)
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 2
    assert capability_reads(slow, mark) == 0
    assert main(["refresh", "-f", str(fleet)]) == 0
    assert "24 known already" in capsys.readouterr().out


def test_state_prune_says_what_it_dropped_and_watch_prunes_between_runs(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    fleet.write_text(fleet.read_text().replace('"07:30"', '"07:45"'))
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["state", "prune", "-f", str(fleet), "--older-than", "1h"]) == 0
    assert "0 finished action(s)" in capsys.readouterr().out  # nothing is an hour old
    assert main(["state", "prune", "-f", str(fleet), "--older-than", "10m"]) == 1
    assert "less than an hour" in capsys.readouterr().err
    later = Shell(os.environ, io.StringIO(), out := io.StringIO(), io.StringIO(), clock=lambda: far_future())
    assert main(["state", "prune", "-f", str(fleet)], shell=later) == 0
    said = out.getvalue()
    assert "Pruned what ended before " in said and "3 finished action(s)" in said, said  # the first air programs
    capsys.readouterr()
    assert main(["state", "show", f"vehicle.{VINS[0]}.preconditioning", "-f", str(fleet)]) == 0
    assert len(json.loads(capsys.readouterr().out)["actions"]) == 1  # the last one is kept
    assert main(["watch", "-f", str(fleet), "--once", "--prune-after", "90d"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [prune] = [e for e in events if e["event"] == "prune"]
    assert prune["actions"] == 0 and "before" in prune


def far_future() -> datetime:
    return datetime(2999, 1, 1, tzinfo=UTC)
