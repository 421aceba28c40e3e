"""apply as separate processes against a simulator process: crashes and concurrency."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.simclient import client

from reconciler.errors import StateError
from reconciler.simulator.server import Connection, read_exports
from reconciler.state.backends import open_store

VINS = [f"VF3ABCDE0FG1234{n:02d}" for n in range(8)]


FLEET = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
callbacks:
  ops:
    webhook: {target: "https://hooks.example.com/ops"}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest, Immobilization]
profiles:
  p:
    preconditioning:
      - {slot: 1, start: "07:30", days: weekdays}
    charging:
      schedule:
        - {slot: 1, start: "22:00", end: "06:00", days: everyday}
      preferences: {level: Level2, type: Full}
vehicles:
""" + "".join(f"  {vin}: {{profile: p, immobilized: {str(n % 2 == 0).lower()}}}\n" for n, vin in enumerate(VINS))


@pytest.fixture
def world(tmp_path: Path, state_url: str) -> Iterator[tuple[dict[str, str], Path, Connection]]:
    """A simulator process, and the environment to apply a fleet to it with the state in ``state_url``."""
    vins = tmp_path / "vins.txt"
    vins.write_text("\n".join(VINS) + "\n")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "simulator",
            "--dir",
            str(tmp_path / "sim"),
            "--vins",
            str(vins),
            "--fleet",
            "0a123bc5d1e873066454b4d9",
            "--latency",
            "0.15",
            "--rate-per-second",
            "1000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert server.stdout is not None
    exports = read_exports(server.stdout)
    env = {**os.environ, **exports, "RECONCILER_STATE": state_url}
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    connection = Connection.from_environment(exports)
    try:
        yield env, fleet, connection
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def start_apply(env: dict[str, str], fleet: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(fleet), "--auto-approve", "--timeout", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def actions_by_body(connection: Connection) -> Counter[str]:
    """How many remote actions the API holds for each (vehicle, body without its label)."""
    counts: Counter[str] = Counter()
    with client(connection) as http:
        vehicles = http.get("/vehicles").json()["_embedded"]["vehicles"]
        callbacks = http.get("/remote/callbacks").json()["_embedded"]["callbacks"]
        assert len(callbacks) == 1, "the callback was created more than once"
        for vehicle in vehicles:
            url = f"/vehicles/{vehicle['id']}/callbacks/{callbacks[0]['id']}/remotes"
            while url:
                page = http.get(url).json()
                for action in page["_embedded"]["remoteActions"]:
                    body = {k: v for k, v in action["remote"].items() if k != "label"}
                    counts[vehicle["vin"] + json.dumps(body, sort_keys=True)] += 1
                url = page["_links"].get("next", {}).get("href")
    return counts


def test_apply_killed_at_random_points_converges_without_sending_twice(
    world: tuple[dict[str, str], Path, Connection],
) -> None:
    env, fleet, connection = world
    rng = random.Random(20261125)
    for _ in range(6):
        process = start_apply(env, fleet)
        time.sleep(rng.uniform(0.3, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    for _ in range(3):
        final = start_apply(env, fleet)
        out, err = final.communicate(timeout=120)
        if final.returncode == 0:
            break
        time.sleep(1)
    assert final.returncode == 0, out + err
    counts = actions_by_body(connection)
    assert counts and max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert len(counts) == len(VINS) * 4
    plan = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "-f", str(fleet), "--no-refresh", "--detailed-exitcode"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_two_applies_at_once_one_exits_3(world: tuple[dict[str, str], Path, Connection]) -> None:
    env, fleet, _ = world
    first = start_apply(env, fleet)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # start the second once the first holds the lock
        try:
            store = open_store(env["RECONCILER_STATE"], readonly=True)
        except StateError:
            time.sleep(0.02)
            continue  # the first apply is creating or migrating it
        try:
            if store.lock_holder() is not None:
                break
        finally:
            store.close()
        time.sleep(0.02)
    second = start_apply(env, fleet)
    results = sorted([first.wait(timeout=120), second.wait(timeout=120)])
    errors = (first.stderr.read() if first.stderr else "") + (second.stderr.read() if second.stderr else "")
    assert results == [0, 3], errors
    assert "is locked by reconciler apply" in errors
