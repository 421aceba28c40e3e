"""Benchmark: `reconciler plan` on a 100,000-vehicle fleet against a bare YAML load.

Generates a fleet of 20 VIN prefixes and 20 profiles (vehicle i: prefix and
profile i mod 20; an override on one vehicle in seven, one in fifty
immobilized), written two ways: an explicit entry per vehicle, and 20 groups by
VIN prefix (with entries for the overrides only; its state records the fleet's
listing, as a refresh would have). Then times, each in a fresh process and
best of --runs:

  load      gc.disable(); yaml.load(f, Loader=yaml.CSafeLoader)          (the baseline)
  plan      reconciler plan --no-refresh --format json, empty state       (everything to send)
  noop      the same against a state that already records the fleet       (nothing to send)
  groups    plan of the groups file, its state recording only the listing (everything to send)
  validate  reconciler validate of the explicit file
  out       plan --out PLAN (the saved plan streamed to its file)
  markdown  plan --format markdown (every distinct change, within 65,000 characters)

and prints wall time, the ratio to the baseline and peak RSS. Targets (issue 12):
plan at most 3x load, peak RSS at most 400 MB; issue 21: --out and markdown at most
400 MB too.

    python benchmarks/plan_100k.py [--vehicles 100000] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


PREFIXES = [f"VF{n}" for n in range(10)] + [f"VR{n}" for n in range(10)]


def vin_of(i: int, rng: random.Random) -> str:
    return PREFIXES[i % 20] + "".join(rng.choice(VIN_CHARS) for _ in range(8)) + f"{i:06d}"


def fleet_yaml(vehicles: int, *, grouped: bool = False, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = [
        "apiVersion: reconciler/v1",
        "fleet: 0a123bc5d1e873066454b4d9",
        "api: {url: sandbox}",
        "callbacks:",
        "  ops:",
        "    webhook: {target: https://hooks.example.com/ops}",
        "    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest]",
        "  security:",
        "    webhook: {target: https://hooks.example.com/security}",
        "    remoteTypes: [Immobilization, Stolen]",
        "profiles:",
    ]
    for p in range(20):
        days = sorted(rng.sample(DAYS, rng.randint(1, 7)), key=DAYS.index)
        lines += [
            f"  profile-{p}:",
            "    preconditioning:",
            f'      - {{slot: 1, start: "{6 + p % 4:02d}:{(p * 5) % 60:02d}", days: [{", ".join(days)}]}}',
            f'      - {{slot: 2, start: "17:{p % 60:02d}", days: weekdays}}',
            "    charging:",
            "      schedule:",
            f'        - {{slot: 1, start: "22:{p % 60:02d}", end: "06:00", days: everyday}}',
            f"      preferences: {{level: Level{1 + p % 5}, type: {'Partial' if p % 2 else 'Full'}}}",
        ]
    if grouped:
        lines.append("groups:")
        lines += [f"  - {{name: g{p}, match: {{vinPrefix: {PREFIXES[p]}}}, profile: profile-{p}}}" for p in range(20)]
    lines.append("vehicles:")
    for i in range(vehicles):
        vin = vin_of(i, rng)
        if grouped and i % 7 and i % 50:
            continue  # the group gives it all
        lines.append(f"  {vin}:")
        if not grouped:
            lines.append(f"    profile: profile-{i % 20}")
        if i % 7 == 0:
            lines.append("    preconditioning:")
            lines.append(f'      - {{slot: 3, start: "{i % 24:02d}:{i % 60:02d}", days: weekend}}')
        if i % 50 == 0:
            lines.append("    immobilized: true")
    return "\n".join(lines) + "\n"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        sys.exit(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss * 1024


def best(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, int]:
    results = [timed(argv, env) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def record_listing(vehicles: int, state_url: str) -> None:
    """A state that knows the fleet's vehicles (as a refresh lists them) and nothing else."""
    from reconciler.state.base import fresh_recorded
    from reconciler.state.sqlite import open_sqlite

    rng = random.Random(7)
    store = open_sqlite(state_url, fleet="0a123bc5d1e873066454b4d9")
    store.initialize(fresh_recorded())
    store.record_listing({(vin := vin_of(i, rng)): f"vid-{vin}" for i in range(vehicles)})
    store.close()


def record_everything(fleet: Path, state_url: str) -> None:
    """Record the whole fleet as applied, so the next plan has nothing to do."""
    from reconciler.core.sensitive import seal_callback
    from reconciler.fleetfile import loader
    from reconciler.state.base import fresh_recorded
    from reconciler.state.sqlite import open_sqlite

    desired = loader.read(fleet, os.environ)
    store = open_sqlite(state_url)
    recorded = fresh_recorded()
    store.initialize(recorded)
    for label, cb in desired.callbacks.items():
        store.record_callback(label, f"cb-{label}", seal_callback(cb, recorded.fingerprint_key))
    store.record_vehicles([(vin, f"vid-{vin}", v.config) for vin, v in desired.vehicles.items()])
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="where to write the fleet and state (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="reconciler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    fleet = work / "fleet.yaml"
    fleet.write_text(fleet_yaml(args.vehicles))
    grouped = work / "grouped.yaml"
    grouped.write_text(fleet_yaml(args.vehicles, grouped=True))
    (work / "listing.db").unlink(missing_ok=True)
    record_listing(args.vehicles, f"sqlite:///{work / 'listing.db'}")
    listing_env = {**os.environ, "RECONCILER_STATE": f"sqlite:///{work / 'listing.db'}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    empty_env = {**env, "RECONCILER_STATE": f"sqlite:///{work / 'empty.db'}"}
    full_url = f"sqlite:///{work / 'full.db'}"
    (work / "full.db").unlink(missing_ok=True)
    record_everything(fleet, full_url)
    full_env = {**env, "RECONCILER_STATE": full_url}

    load = [
        sys.executable,
        "-c",
        f"import gc, yaml; gc.disable(); yaml.load(open({str(fleet)!r}), Loader=yaml.CSafeLoader)",
    ]
    plan = [sys.executable, "-m", "reconciler", "plan", "--no-refresh", "--format", "json", "-f", str(fleet)]
    plan_groups = [*plan[:-1], str(grouped)]
    validate = [sys.executable, "-m", "reconciler", "validate", "-f", str(fleet)]
    saved = [sys.executable, "-m", "reconciler", "plan", "--no-refresh", "--out", str(work / "saved.json")]
    saved += ["-f", str(fleet)]
    markdown = [sys.executable, "-m", "reconciler", "plan", "--no-refresh", "--format", "markdown", "-f", str(fleet)]
    size = fleet.stat().st_size
    print(
        f"fleet: {args.vehicles:,} vehicles, {size / 1e6:.1f} MB of YAML "
        f"({grouped.stat().st_size / 1e6:.2f} MB as groups), best of {args.runs} runs"
    )
    base, base_rss = best(load, env, args.runs)
    print(f"  gc-free yaml.load (CSafeLoader)   {base:7.3f} s   {base_rss / 2**20:6.0f} MB")
    for name, argv, run_env in (
        ("plan, empty state", plan, empty_env),
        ("plan, nothing to do", plan, full_env),
        ("plan of the groups file", plan_groups, listing_env),
        ("validate", validate, env),
        ("plan --out (saved plan)", saved, empty_env),
        ("plan --format markdown", markdown, empty_env),
    ):
        took, rss = best(argv, run_env, args.runs)
        print(f"  {name:<32}  {took:7.3f} s   {rss / 2**20:6.0f} MB   {took / base:4.2f}x load")


if __name__ == "__main__":
    main()
