"""Benchmark: running as a service on one PostgreSQL state (issue 23).

receivers — three `reconciler webhook` processes share one PostgreSQL state; 8
concurrent senders post every event to every receiver (three times each, in
batches of 10, in shuffled order so that receivers race on the same events).
Prints events/s (every delivery, and the distinct events recorded), request
latency p50/p99, and the events lost or recorded twice. Goals: ≥ 1,000 events/s,
0 lost, 0 twice.

failover — two `reconciler watch` processes on one state; while the lock
holder sends (the API answering in 0.2 s, one call at a time), it is SIGKILLed.
Prints the seconds from the kill to the other's first send. Goal: ≤ one
interval + 5 s. Then checks that every change went exactly once.

Needs a PostgreSQL server: RECONCILER_TEST_POSTGRES, as the tests use it
(`bash -c '. .ci/postgres.sh; .venv/bin/python benchmarks/service.py'`).

    python benchmarks/service.py [receivers] [failover] [--actions 6000] [--interval 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from reconciler.simulator.server import Settings, Simulator
from reconciler.state.backends import open_store
from reconciler.state.base import JournalEntry

FLEET_ID = "0a123bc5d1e873066454b4d9"
TOKEN = "bench-token-0c1d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["receivers", "failover"])
    parser.add_argument("--actions", type=int, default=6000, help="receivers: distinct actions (events)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--interval", type=float, default=5.0, help="failover: watch's --interval, seconds")
    parser.add_argument("--vehicles", type=int, default=30, help="failover: vehicles in the fleet")
    args = parser.parse_args()
    server = os.environ.get("RECONCILER_TEST_POSTGRES")
    if not server:
        sys.exit("set RECONCILER_TEST_POSTGRES (bash -c '. .ci/postgres.sh; python benchmarks/service.py')")
    work = Path(tempfile.mkdtemp(prefix="reconciler-service-bench-"))
    if "receivers" in args.parts:
        receivers(work / "receivers", database(server), args.actions, args.senders)
    if "failover" in args.parts:
        failover(work / "failover", database(server), args.interval, args.vehicles)


def database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server.replace("/postgres?", f"/{name}?", 1)


def fleet_file(path: Path, vins: list[str], start: str = "07:30") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"apiVersion: reconciler/v1\nfleet: {FLEET_ID}\napi: {{url: https://replaced.invalid}}\n"
        "callbacks:\n  ops:\n"
        '    webhook: {target: "https://hooks.example.com/ops", headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}}\n'
        "    remoteTypes: [ThermalPreconditioning, Immobilization]\n"
        "groups:\n  - name: all\n    match: {all: true}\n"
        f'    preconditioning: [{{slot: 1, start: "{start}", days: weekdays}}]\n'
        "vehicles:\n" + "".join(f"  {vin}: {{}}\n" for vin in vins)
    )
    return path


def environment(sim: Simulator, state: str) -> dict[str, str]:
    return {**os.environ, **sim.connection.environment(), "RECONCILER_STATE": state, "WEBHOOK_TOKEN": TOKEN}


def reconciler(*argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )


def first_line(process: subprocess.Popen[str], event: str) -> dict[str, Any]:
    assert process.stdout is not None
    for line in process.stdout:
        item = json.loads(line)
        if item["event"] == event:
            return item
    raise SystemExit(f"the process ended before logging {event}: {process.stderr.read() if process.stderr else ''}")


# receivers


def receivers(work: Path, state: str, actions: int, senders: int) -> None:
    vins = [f"VF3BENCH{n:09d}" for n in range(10)]
    with Simulator(Settings(work / "sim", fleet_id=FLEET_ID, vins=vins, per_second=5000)) as sim:
        env = environment(sim, state)
        fleet = fleet_file(work / "fleet.yaml", vins)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "-f",
                str(fleet),
                "--auto-approve",
                "--target",
                "callback.ops",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    store = open_store(state)
    callback_id = store.callbacks()["ops"].id
    with store.transaction():
        for n in range(actions):
            vin = vins[n % len(vins)]
            store.journal_start(
                JournalEntry(f"k{n}", f"vehicle.{vin}.immobilization", vin, "ops", "Immobilization", "POST", {}, None)
            )
            store.journal_update(f"k{n}", "Accepted", remote_action_id=f"r{n}")
    processes = [reconciler("webhook", "-f", str(fleet), "--port", "0", env=env) for _ in range(3)]
    try:
        urls = [first_line(p, "listening")["url"] for p in processes]
        batches = [list(range(start, min(start + 10, actions))) for start in range(0, actions, 10)]
        deliveries = [(batch, url) for batch in batches for url in urls]  # every event to every receiver
        random.Random(7).shuffle(deliveries)
        latencies: list[float] = []
        new: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()

        def sender(mine: list[tuple[list[int], str]]) -> None:
            with httpx.Client(headers={"X-Webhook-Token": TOKEN}, timeout=60) as client:
                for batch, url in mine:
                    events = [
                        {
                            "remoteActionId": f"r{n}",
                            "vin": vins[n % len(vins)],
                            "remoteType": "Immobilization",
                            "eventStatus": {"type": "Done", "status": "Success"},
                        }
                        for n in batch
                    ]
                    started = time.perf_counter()
                    answer = client.post(url, json={"callbackId": callback_id, "events": events})
                    took = time.perf_counter() - started
                    with lock:
                        latencies.append(took)
                        if answer.status_code == 200:
                            new.append(int(answer.json()["message"].split()[0]))
                        else:
                            failures.append(f"{answer.status_code} {answer.text[:80]}")

        threads = [threading.Thread(target=sender, args=(deliveries[i::senders],)) for i in range(senders)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    successes = [n for n in range(actions) if [s for s, _, _ in store.events(f"k{n}")].count("Success") == 1]
    twice = sum(1 for n in range(actions) if [s for s, _, _ in store.events(f"k{n}")].count("Success") > 1)
    pending = store.count_pending()
    store.close()
    delivered = 3 * actions
    ordered = sorted(latencies)
    print("receivers: 3 webhook processes, one PostgreSQL state")
    print(f"  {actions:,} events x 3 deliveries = {delivered:,}, {senders} senders, batches of 10")
    print(f"  {elapsed:.2f} s: {delivered / elapsed:,.0f} events/s delivered, {actions / elapsed:,.0f} distinct/s")
    p50, p99 = statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]
    print(f"  latency per request: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"  recorded new: {sum(new):,} (of {actions:,}); requests refused: {len(failures)}")
    print(f"  lost: {actions - len(successes) - twice}, recorded twice: {twice}, still pending: {pending}")


# failover


def failover(work: Path, state: str, interval: float, vehicles: int) -> None:
    vins = [f"VF3FAXL{n:010d}" for n in range(vehicles)]
    with Simulator(Settings(work / "sim", fleet_id=FLEET_ID, vins=vins, per_second=5000)) as sim:
        env = environment(sim, state)
        fleet = fleet_file(work / "fleet.yaml", vins)
        argv = ("watch", "-f", str(fleet), "--interval", f"{interval}s", "--jitter", "0", "--parallelism", "1")
        watchers = [reconciler(*argv, env=env) for _ in range(2)]
        lines: dict[int, list[dict[str, Any]]] = {w.pid: [] for w in watchers}

        def read(process: subprocess.Popen[str]) -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines[process.pid].append(json.loads(line))

        for watcher in watchers:
            threading.Thread(target=read, args=(watcher,), daemon=True).start()
        try:
            deadline = time.monotonic() + 120
            while _remote_posts(sim, 0) < vehicles and time.monotonic() < deadline:
                time.sleep(0.05)
            if _remote_posts(sim, 0) < vehicles:
                raise SystemExit(f"the watchers did not converge: {[x[-3:] for x in lines.values()]}")
            sim.faults.slow = 0.2  # one call at a time, 0.2 s each: the next run sends for seconds
            mark = len(sim.served)
            fleet_file(fleet, vins, start="08:15")
            while _remote_posts(sim, mark) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            with psycopg.connect(state, autocommit=True) as db:
                (pid,) = db.execute("SELECT pid FROM lock").fetchone()  # type: ignore[misc]
            holder = next(w for w in watchers if w.pid == pid)
            survivor = next(w for w in watchers if w.pid != pid)
            before = _remote_posts(sim, mark)
            holder.kill()
            killed = time.monotonic()
            at_kill = len(sim.served)
            while _remote_posts(sim, at_kill) == 0 and time.monotonic() < killed + 10 * interval:
                time.sleep(0.01)
            took = time.monotonic() - killed
            while _remote_posts(sim, mark) < vehicles and time.monotonic() < killed + 120:
                time.sleep(0.05)
            time.sleep(interval + 2)  # one more run: nothing left to send
            bodies = [
                (s.path, json.dumps(s.body.get("preconditioning"), sort_keys=True))
                for s in sim.served[mark:]
                if s.method == "POST" and s.path.endswith("/remotes") and s.status == 202
            ]
        finally:
            for watcher in watchers:
                if watcher.poll() is None:
                    watcher.send_signal(signal.SIGTERM)
            for watcher in watchers:
                watcher.wait(timeout=60)
    print(f"failover: 2 watch processes, --interval {interval:g}s, {vehicles} vehicles, the holder SIGKILLed")
    print(f"  killed after it sent {before} of {vehicles} changes")
    print(f"  {took:.2f} s from the kill to the survivor's first send (goal <= {interval + 5:g} s)")
    print(
        f"  changes sent after the edit: {len(bodies)}, distinct {len(set(bodies))} (goal: {vehicles} and {vehicles})"
    )
    runs = sum(1 for x in lines[survivor.pid] if x["event"] == "run")
    print(f"  survivor exited {survivor.returncode}; its runs: {runs}")


def _remote_posts(sim: Simulator, since: int) -> int:
    return sum(1 for s in sim.served[since:] if s.method == "POST" and s.path.endswith("/remotes") and s.status == 202)


if __name__ == "__main__":
    main()
