"""watch: one run for cron, drift corrected within an interval, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.runs import VINS

from reconciler.cli import main
from reconciler.simulator.server import Simulator


def test_once_converges_and_logs_json_lines(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "-f", str(fleet), "--once"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    run = next(line for line in lines if line["event"] == "run")
    assert run["code"] == 0 and run["confirmed"] == 11 and run["changes"] == 11
    assert sum(1 for line in lines if line["event"] == "action") == 11


def test_drift_is_corrected_within_an_interval_and_sigterm_stops_cleanly(sim: Simulator, fleet: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "watch", "-f", str(fleet), "--interval", "1s", "--jitter", "0"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        runs = []
        while len(runs) < 1:
            line = json.loads(process.stdout.readline())
            if line["event"] == "run":
                runs.append(line)
        assert runs[0]["code"] == 0
        sim.engine.drift(
            VINS[0], 1, {"enabled": True, "recurrence": "Daily", "start": "PT5H", "occurence": {"day": ["Sat"]}}
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = json.loads(process.stdout.readline())
            if line["event"] == "run" and line["drift"]:
                assert line["changes"] == 1 and line["confirmed"] == 1
                break
        else:
            pytest.fail("the drift was not corrected")
        assert sim.engine.by_vin(VINS[0]).air["1"]["start"] == "PT7H30M"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_a_failed_refresh_in_watch_says_what_watch_does_not_a_flag_it_lacks(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", "-f", str(fleet), "--once"]) == 0
    sim.faults.refuse = {("GET", "/remote/callbacks"): 400}  # the refresh cannot read the callbacks
    capsys.readouterr()
    assert main(["watch", "-f", str(fleet), "--once"]) == 1
    run = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"event": "run"' in line)
    assert "refresh failed" in run["error"] and "watch tries again on its next run" in run["error"]
    assert "--no-refresh" not in run["error"]
