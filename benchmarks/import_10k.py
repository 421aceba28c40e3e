"""Benchmark: reconciler import of a 10,000-vehicle fleet, with few and with many distinct configurations.

For each count of configurations (--configs, default 3 and 5000): starts the
simulator in this process with --vehicles vehicles, sets their programs
directly in its engine (the configurations in turn, one vehicle in 50 with a
driver's extra slot), then times `reconciler import` in a process of its own
and counts the requests the simulator served. For comparison it times the
bare reading of the same pages (callbacks, vehicles, status) with the API
client alone: the floor no import can go under. Then checks that `plan
--detailed-exitcode` on the imported file exits 0.

Targets: requests ≤ 2·⌈N/60⌉ + 5; time dominated by the API (issue 11);
5,000 configurations at most twice the time of 3 (issue 21: factoring is linear).

    python benchmarks/import_10k.py [--vehicles 10000] [--configs 3 5000]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.api.client import FleetApi
from reconciler.api.settings import ApiSettings
from reconciler.simulator.server import Settings, Simulator

FLEET = "0a123bc5d1e873066454b4d9"
DAYS = (["Mon", "Tue", "Wed", "Thu", "Fri"], ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])


def configure(sim: Simulator, count: int, configs: int = 20) -> None:
    """``configs`` configurations over the fleet, set in the engine as if drivers and a portal had done it."""
    sim.engine.create_callback(
        {
            "label": "ops",
            "callback": {
                "webhook": {
                    "target": "https://hooks.example.com/ops",
                    "name": "ops",
                    "attributes": [{"type": "Header", "key": "Authorization", "value": "Bearer s3cr3t-bench"}],
                }
            },
            "remoteTypes": ["ThermalPreconditioning", "ElectricBatteryChargingRequest"],
        }
    )
    with sim.engine.lock:
        for n, vehicle in enumerate(sorted(sim.engine.vehicles.values(), key=lambda v: v.vin)):
            kind = n % configs
            vehicle.air = {
                "1": {
                    "slot": 1,
                    "enabled": True,
                    "recurrence": "Daily",
                    "start": f"PT{(kind // 60) % 24}H{kind % 60}M",
                    "occurence": {"day": DAYS[(kind // 1440) % 2]},
                }
            }
            if n % 50 == 0:  # a driver's own program
                vehicle.air["3"] = {
                    "slot": 3,
                    "enabled": True,
                    "recurrence": "Daily",
                    "start": "PT9H",
                    "occurence": {"day": ["Sat"]},
                }
            vehicle.charge = {
                "1": {
                    "slot": 1,
                    "enabled": True,
                    "start": f"PT{18 + (kind // 2880) % 6}H",
                    "end": "PT6H",
                    "occurence": {"day": DAYS[1]},
                }
            }
            vehicle.preferences = {"level": "Level3", "type": "Partial"}
            sim.engine._touch("vehicle", vehicle.vid)
        sim.engine._flush()
    assert len(sim.engine.vehicles) == count


def floor(sim: Simulator) -> float:
    """Seconds to read the same pages with the API client alone."""
    c = sim.connection
    settings = ApiSettings(
        c.url,
        c.credentials.client_id,
        c.credentials.username,
        c.credentials.password,
        str(c.material.client_cert),
        str(c.material.client_key),
        str(c.material.ca_cert),
    )
    started = time.perf_counter()
    with FleetApi(settings) as api:
        for name in ("remote/callbacks", "vehicles", "status"):
            for _ in api.pages(f"/fleets/{FLEET}/{name}", name.split("/")[-1]):
                pass
    return time.perf_counter() - started


def measure(vehicles: int, configs: int) -> float:
    """Import a fleet of ``vehicles`` holding ``configs`` configurations; print the figures; the import's seconds."""
    work = Path(tempfile.mkdtemp(prefix="reconciler-import-bench-"))
    settings = Settings(work / "sim", fleet_id=FLEET, vehicles=vehicles, per_second=100_000, per_day=10**9)
    with Simulator(settings) as sim:
        configure(sim, vehicles, configs)
        bare = floor(sim)
        env = {
            **os.environ,
            **sim.connection.environment(),
            "RECONCILER_STATE": f"sqlite:///{work / 'state.db'}",
        }
        mark = len(sim.served)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "import", "-o", str(work / "fleet.yaml")],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"import failed:\n{done.stderr}")
        requests = len(sim.served) - mark
        text = (work / "fleet.yaml").read_text()
        env["OPS_AUTHORIZATION"] = "Bearer s3cr3t-bench"
        planned = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "-f", str(work / "fleet.yaml"), "--detailed-exitcode"],
            env=env,
            capture_output=True,
            text=True,
        )
    pages = math.ceil(vehicles / 60)
    profiles = len(yaml.safe_load(text).get("profiles") or {})
    print(f"{vehicles:,} vehicles, {configs:,} configurations")
    print(f"  requests                 {requests} (target ≤ {2 * pages + 5})")
    print(f"  import                   {seconds:.2f} s")
    print(f"  reading the pages alone  {bare:.2f} s  (import / reading = {seconds / bare:.2f})")
    print(f"  fleet file               {text.count(chr(10)):,} lines, {len(text) / 1024:.0f} KiB, {profiles} profiles")
    print(f"  plan after import        exit {planned.returncode} (0: no changes)")
    print(f"  secret in the file       {'YES' if 's3cr3t-bench' in text else 'no'}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--configs", type=int, nargs="+", default=[3, 5000])
    args = parser.parse_args()
    times = [measure(args.vehicles, configs) for configs in args.configs]
    if len(times) > 1:
        print(f"{args.configs[-1]:,} configurations / {args.configs[0]:,}: {times[-1] / times[0]:.2f}x (target ≤ 2x)")


if __name__ == "__main__":
    main()
