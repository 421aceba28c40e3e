"""The first hour: what a new user does with the README — the simulator's env file, the README's own fleets."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.paths import MINIMAL, ROOT

from reconciler.cli import main


def test_the_simulator_writes_its_environment_for_a_shell_to_source(tmp_path: Path) -> None:
    env_file = tmp_path / "sim.env"
    env_file.write_text("export RECONCILER_API_URL=https://stale.invalid\n")  # an earlier run's
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(MINIMAL.replace("api: {url: sandbox}\n", "").replace("0a123bc5d1e873066454b4d9", "F1"))
    (tmp_path / "vins.txt").write_text("VF3ABCDE0FG123456\n")
    command = [sys.executable, "-m", "reconciler", "simulator", "--port", "0", "--fleet", "F1"]
    command += ["--dir", str(tmp_path / "sim"), "--vins", str(tmp_path / "vins.txt"), "--env-file", str(env_file)]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "127.0.0.1" not in (env_file.read_text() if env_file.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "stale.invalid" not in env_file.read_text()  # replaced, whole, once listening
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the password
        # The README's recipe: source the file, then plan against the simulator.
        script = f". {env_file} && {sys.executable} -m reconciler plan -f {fleet} --detailed-exitcode"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env["RECONCILER_STATE"] = f"sqlite:///{tmp_path / 'state.db'}"
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "vehicle.VF3ABCDE0FG123456.preconditioning" in done.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert not env_file.exists()  # it named a server that is gone


def test_the_pre_commit_hook_validates_the_files_it_is_given_offline(tmp_path: Path) -> None:

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "reconciler-validate" and "--offline" in hook["entry"]
    good, bad = tmp_path / "fleet.yaml", tmp_path / "fleet.staging.yaml"
    good.write_text(
        MINIMAL.replace('"https://hooks.example.com/x"}', '"https://hooks.example.com/x", headers: {X: "${T}"}}')
    )
    bad.write_text(MINIMAL + "    immobilized: yes\n")
    assert re.search(hook["files"], "fleets/fleet.staging.yaml") and not re.search(hook["files"], "ci.yaml")
    env = {k: v for k, v in os.environ.items() if k != "T"}
    entry = shlex.split(hook["entry"])
    assert entry[0] == "reconciler"
    command = [sys.executable, "-m", "reconciler", *entry[1:]]  # as pre-commit runs the installed script
    ok = subprocess.run([*command, str(good)], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    both = subprocess.run([*command, str(good), str(bad)], env=env, capture_output=True, text=True)
    assert both.returncode == 1 and "fleet.staging.yaml:12:18" in both.stderr


SANDBOX_FLEET = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
api: {url: sandbox, vehicles: 50}
callbacks:
  ops:
    webhook: {target: "https://hooks.example.com/x"}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest]
groups:
  - name: everyone
    match: {all: true}
    preconditioning: [{slot: 1, start: "07:30", days: weekdays}]
    charging:
      schedule: [{slot: 1, start: "22:00", end: "06:00", days: everyday}]
"""


def test_a_groups_only_fleet_has_a_mixed_sandbox_fleet_to_plan_and_apply_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fleet.yaml").write_text(SANDBOX_FLEET)
    assert main(["plan", "-f", "fleet.yaml", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    air = {c["vin"] for c in plan["changes"] if c["address"].endswith(".preconditioning")}
    charging = {c["vin"] for c in plan["changes"] if c["address"].endswith(".charging.schedule")}
    assert len(air) == 50 and len(charging) == 40 and charging < air  # electric and hybrid cars charge
    cannot = plan["cannot_apply"]
    assert len(cannot) == 10 and {c["address"].split(".")[1] for c in cannot} == air - charging
    assert all(c["reason"].startswith("a thermic vehicle has no remote charging; leave charging: out") for c in cannot)
    # The same made-up fleet on every run: applied once, nothing is left to do but what it cannot take.
    assert main(["apply", "-f", "fleet.yaml", "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["plan", "-f", "fleet.yaml", "--detailed-exitcode"]) == 0


def test_a_made_up_fleet_is_the_sandbox_s_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fleet.yaml").write_text(SANDBOX_FLEET.replace("url: sandbox", "url: https://api.example.com"))
    assert main(["validate", "--offline", "fleet.yaml"]) == 1
    assert "fleet.yaml:3:47: api.vehicles: a made-up fleet is the sandbox's" in capsys.readouterr().err
