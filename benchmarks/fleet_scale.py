"""Benchmark: costs that must grow with the fleet, not faster (issue 21). Prints ratios; run by hand.

groups    plan of --vehicles vehicles (10,000) under 20 and under 2,000 VIN-prefix groups,
          each in a fresh process, best of --runs: the ratio must stay ≤ 1.2.
journal   `state show ADDR` and a nothing-to-do plan after 1 and after 30 applies of
          --journal-vehicles vehicles (1,000): the journal grows 30-fold, the times may not
          (≤ 1.2x).
webhook   the webhook receiver with metrics on, in this process over a real socket, on a
          state whose journal holds --actions finished actions (150,000) and 2,000 pending
          ones: events a second while the pending ones end (≥ 1,000/s on SQLite), and
          every event recorded once.

  python benchmarks/fleet_scale.py [groups] [journal] [webhook] [--vehicles 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
FLEET = "0a123bc5d1e873066454b4d9"
HEAD = f"""\
apiVersion: reconciler/v1
fleet: {FLEET}
api: {{url: sandbox}}
callbacks:
  ops:
    webhook: {{target: https://hooks.example.com/ops, headers: {{X-Token: "${{HOOK_TOKEN}}"}}}}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest]
"""


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode not in (0, 2):
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return took


def best(argv: list[str], env: dict[str, str], runs: int) -> float:
    return min(run(argv, env) for _ in range(runs))


def reconciler(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


# groups


def grouped_fleet(vehicles: int, groups: int, rng: random.Random) -> tuple[str, list[str]]:
    """A fleet file of ``groups`` VIN-prefix groups (20 profiles among them), and the VINs they take."""
    prefixes: list[str] = []
    while len(prefixes) < groups:
        prefix = "VF" + "".join(rng.choice(VIN_CHARS) for _ in range(3))
        if prefix not in prefixes:
            prefixes.append(prefix)
    lines = [HEAD.rstrip("\n"), "profiles:"]
    for p in range(20):
        lines.append(
            f'  p{p}: {{preconditioning: [{{slot: 1, start: "{6 + p // 6:02d}:{p * 3 % 60:02d}", days: weekdays}}]}}'
        )
    lines.append("groups:")
    lines += [
        f"  - {{name: g{n}, match: {{vinPrefix: {prefix}}}, profile: p{n % 20}}}" for n, prefix in enumerate(prefixes)
    ]
    vins = [
        prefixes[n % groups] + "".join(rng.choice(VIN_CHARS) for _ in range(6)) + f"{n:06d}" for n in range(vehicles)
    ]
    return "\n".join(lines) + "\n", vins


def listing_state(url: str, vins: list[str]) -> None:
    from reconciler.state.base import fresh_recorded
    from reconciler.state.sqlite import open_sqlite

    store = open_sqlite(url, fleet=FLEET)
    store.initialize(fresh_recorded())
    store.record_listing({vin: f"vid-{vin}" for vin in vins})
    store.close()


def bench_groups(work: Path, vehicles: int, runs: int) -> None:
    times = {}
    for groups in (20, 2000):
        text, vins = grouped_fleet(vehicles, groups, random.Random(groups))
        fleet = work / f"groups-{groups}.yaml"
        fleet.write_text(text)
        url = f"sqlite:///{work / f'groups-{groups}.db'}"
        listing_state(url, vins)
        env = {**os.environ, "RECONCILER_STATE": url, "HOOK_TOKEN": "t0ken-bench"}
        times[groups] = best(reconciler("plan", "--no-refresh", "--format", "json", "-f", str(fleet)), env, runs)
        print(f"  plan, {vehicles:,} vehicles in {groups:>5,} groups   {times[groups]:6.2f} s")
    print(f"  2,000 groups / 20 groups: {times[2000] / times[20]:.2f}x (target ≤ 1.2x)")


# journal


def bench_journal(work: Path, vehicles: int, runs: int) -> None:
    from reconciler.simulator.server import Settings, Simulator

    vins = [f"VF3JRNL{n:010d}" for n in range(vehicles)]
    fleet = work / "journal.yaml"
    profile = 'profiles:\n  p: {preconditioning: [{slot: 1, start: "07:MM", days: weekdays}]}\n'
    body = "groups:\n  - {name: all, match: {all: true}, profile: p}\n"
    settings = Settings(work / "journal-sim", fleet_id=FLEET, vins=vins, latency=0.01, per_second=100_000)
    with Simulator(settings) as sim:
        env = {
            **os.environ,
            **sim.connection.environment(),
            "RECONCILER_STATE": f"sqlite:///{work / 'journal.db'}",
            "HOOK_TOKEN": "t0ken-bench",
        }
        head = HEAD.replace("api: {url: sandbox}\n", "")
        figures = {}
        for applied in range(1, 31):
            fleet.write_text(head + profile.replace("MM", f"{applied:02d}") + body)
            run(reconciler("apply", "-f", str(fleet), "--auto-approve", "--parallelism", "32"), env)
            if applied in (1, 30):
                show = best(
                    reconciler("state", "show", f"vehicle.{vins[0]}.preconditioning", "-f", str(fleet)), env, runs
                )
                noop = best(reconciler("plan", "--no-refresh", "-f", str(fleet), "--detailed-exitcode"), env, runs)
                figures[applied] = (show, noop)
                said = f"state show {show:5.2f} s, nothing-to-do plan {noop:5.2f} s"
                print(f"  after {applied:>2} applies of {vehicles:,}: {said}")
    (show1, noop1), (show30, noop30) = figures[1], figures[30]
    print(f"  30 applies / 1: state show {show30 / show1:.2f}x, plan {noop30 / noop1:.2f}x (targets ≤ 1.2x)")


# webhook


def journal_of(url: str, finished: int, pending: int) -> list[tuple[str, str, str]]:
    """A state whose journal holds ``finished`` ended actions and ``pending`` ones; (rid, vin, type) of the pending."""
    from reconciler.core.model import Callback
    from reconciler.core.sensitive import seal_callback
    from reconciler.state.base import fresh_recorded
    from reconciler.state.sqlite import open_sqlite

    store = open_sqlite(url, fleet=FLEET)
    recorded = fresh_recorded()
    store.initialize(recorded)
    hook = Callback("ops", "https://hooks.example.com/ops", "ops", ("ThermalPreconditioning",))
    store.record_callback("ops", "cb-ops", seal_callback(hook, recorded.fingerprint_key))
    rows, events, waiting = [], [], []
    now = "2026-12-01T00:00:00+00:00"
    for n in range(finished + pending):
        vin = f"VF3HOOK{n % 5000:010d}"
        key = f"reconciler:{n:024x}"
        status = "Success" if n < finished else "Accepted"
        rid = f"r{n:08d}"
        rows.append(
            (
                key,
                f"vehicle.{vin}.preconditioning",
                vin,
                "ops",
                "ThermalPreconditioning",
                "POST",
                json.dumps({"path": f"/fleets/{FLEET}/vehicles/v/callbacks/cb-ops/remotes", "body": {}}),
                json.dumps([]),
                rid,
                status,
                None,
                now,
                now,
            )
        )
        events += [(key, "Sending", None, now), (key, "Accepted", None, now)]
        if n >= finished:
            waiting.append((rid, vin, "ThermalPreconditioning"))
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO actions (key, address, vin, callback, remote_type, method, request, after, remote_action_id, "
            "status, failure_cause, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany("INSERT INTO action_events (key, status, failure_cause, at) VALUES (?, ?, ?, ?)", events)
    store.close()
    return waiting


def bench_webhook(work: Path, finished: int) -> None:
    import httpx
    import uvicorn

    from reconciler.commands import webhook as webhook_command
    from reconciler.commands.webhook import _counter
    from reconciler.fleetfile import loader
    from reconciler.service.metrics import Metrics
    from reconciler.service.webhook_receiver import create_app
    from reconciler.state.sqlite import open_sqlite

    url = f"sqlite:///{work / 'webhook.db'}"
    waiting = journal_of(url, finished, 2000)
    fleet = work / "webhook.yaml"
    fleet.write_text(HEAD.replace("api: {url: sandbox}\n", "api: {url: sandbox}\n"))
    env = {**os.environ, "HOOK_TOKEN": "t0ken-bench"}
    store = open_sqlite(url, fleet=FLEET)
    metrics = Metrics()
    app = create_app(loader.read(fleet, env), store, count=_counter(metrics, store))
    sock = webhook_command.listen("127.0.0.1", 0)  # as `reconciler webhook` listens (TCP_NODELAY on each connection)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    target = f"http://127.0.0.1:{sock.getsockname()[1]}/"

    def events(rid: str, vin: str, kind: str) -> list[dict[str, object]]:
        return [
            {
                "remoteActionId": rid,
                "vin": vin,
                "remoteType": kind,
                "eventStatus": {"type": "Pending", "status": "SentToVehicle"},
            },
            {
                "remoteActionId": rid,
                "vin": vin,
                "remoteType": kind,
                "eventStatus": {"type": "Done", "status": "Success"},
            },
        ]

    sent = 0
    started = time.perf_counter()
    with httpx.Client(headers={"X-Token": "t0ken-bench"}) as client:
        for batch in range(0, len(waiting), 10):  # 10 actions (20 events) a request, as batchNotify sends them
            body = {"callbackId": "cb-ops", "events": [e for w in waiting[batch : batch + 10] for e in events(*w)]}
            answer = client.post(target, json=body)
            assert answer.status_code == 200, answer.text
            sent += len(body["events"])
        took = time.perf_counter() - started
        again = client.post(target, json={"callbackId": "cb-ops", "events": events(*waiting[0])}).json()
    server.should_exit = True
    thread.join(timeout=5)
    pending = store.count_pending()
    store.close()
    rate = f"{sent:,} events in {took:.2f} s = {sent / took:,.0f} events/s (target ≥ 1,000)"
    print(f"  journal of {finished:,} finished actions: {rate}")
    print(f"  pending after: {pending} (every action ended once); the same events again: {again['message']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["groups", "journal", "webhook"])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--journal-vehicles", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reconciler-scale-bench-"))
    if "groups" in args.parts:
        print("groups")
        bench_groups(work, args.vehicles, args.runs)
    if "journal" in args.parts:
        print("journal")
        bench_journal(work, args.journal_vehicles, args.runs)
    if "webhook" in args.parts:
        print("webhook")
        bench_webhook(work, args.actions)


if __name__ == "__main__":
    main()
