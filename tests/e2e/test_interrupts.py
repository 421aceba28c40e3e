"""Ctrl-C and SIGTERM during apply: nothing new is sent, what is in flight is recorded, nothing is sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support.runs import FLEET, SECRET, VINS, apply, remote_posts

from reconciler.simulator.server import Settings, Simulator


@pytest.fixture
def slow_sim(tmp_path: Path) -> Simulator:
    """Actions take seconds to end, as real vehicles' do."""
    settings = Settings(tmp_path / "sim", fleet_id="0a123bc5d1e873066454b4d9", vins=VINS, latency=1.0, per_second=1000)
    simulator = Simulator(settings)
    simulator.start()
    yield simulator  # type: ignore[misc]
    simulator.stop()


def start_apply(tmp_path: Path, sim: Simulator) -> tuple[subprocess.Popen[str], dict[str, str]]:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    env = {
        **os.environ,
        **sim.connection.environment(),
        "RECONCILER_STATE": f"sqlite:///{tmp_path / 'state' / 'state.db'}",
        "HOOK_TOKEN": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(fleet), "--auto-approve", "--parallelism", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, env


def wait_for_first_action(sim: Simulator) -> None:
    deadline = time.monotonic() + 20
    while not remote_posts(sim):
        assert time.monotonic() < deadline, "apply sent no action"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_sending_at_once_records_what_is_in_flight_and_reports(
    slow_sim: Simulator, tmp_path: Path, signum: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, env = start_apply(tmp_path, slow_sim)
    wait_for_first_action(slow_sim)
    process.send_signal(signum)
    sent_then = len(remote_posts(slow_sim))
    out, err = process.communicate(timeout=10)
    assert process.returncode == 4, err  # the actions in flight are left pending
    assert len(remote_posts(slow_sim)) <= sent_then + 1  # at most the POST already on its way
    assert "no new call will be sent" in err
    assert "pending" in out and "not sent: the run was interrupted" in out
    assert "Traceback" not in err
    # The next apply settles what was in flight and sends the rest, nothing twice.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The actions left in flight take seconds to end: the next apply follows them like its own.
    assert apply(tmp_path / "fleet.yaml") == 0
    bodies = Counter((s.path, str({k: v for k, v in s.body.items() if k != "label"})) for s in remote_posts(slow_sim))
    assert len(bodies) == 10 and set(bodies.values()) == {1}


def test_before_anything_is_sent_an_interrupt_ends_the_run_with_130(slow_sim: Simulator, tmp_path: Path) -> None:
    slow_sim.faults.slow = 3.0  # every answer takes 3 s: the refresh is still reading when the signal comes
    process, _ = start_apply(tmp_path, slow_sim)
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 130, err
    assert remote_posts(slow_sim) == []
    assert "Traceback" not in err


def test_a_second_interrupt_quits_at_once(slow_sim: Simulator, tmp_path: Path) -> None:
    slow_sim.faults.late_posts, slow_sim.faults.late_delay = 10, 8.0  # a POST in flight hangs
    process, _ = start_apply(tmp_path, slow_sim)
    deadline = time.monotonic() + 20
    while not slow_sim.engine.actions:  # created, its answer not given yet
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 130
    assert time.monotonic() - started < 3
    assert "quitting now" in err
