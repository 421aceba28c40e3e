"""Benchmark: apply 1,000 vehicles x 3 actions against the simulator limited to 100 requests/s.

Starts `reconciler simulator --rate-per-second 100` in its own process, applies
a fleet of --vehicles vehicles (a preconditioning program, a charging schedule
and charging preferences each: three remote actions), and prints the calls
made, the time taken, the ideal time (calls ÷ rate) and their ratio, and the
429 answers. Target (issue 4): at most 1.15 x ideal, no 429 after the first second.

The vehicles sleep (`simulator --sleeping`): the first message to each wakes it.
Apply sends a vehicle's changes back to back, so one wake-up carries all three:
the figure printed is wake-ups per vehicle, counted by the simulator and by
reconciler's state (issue 14: ideal 1.00).

With --receiver, a `reconciler webhook` process records the simulator's
webhook deliveries into the same state, and apply takes the outcomes from
there: the figure printed is then API calls and status polls per vehicle
(issue 21: the floor is one POST an action, and at most 0.25 polls an action).

    python benchmarks/apply_1000.py [--vehicles 1000] [--rate 100] [--parallelism 32] [--receiver]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.simulator.server import read_exports

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--parallelism", type=int, default=32, help="apply's --parallelism (its default: 32)")
    parser.add_argument("--receiver", action="store_true", help="run the webhook receiver on the same state")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reconciler-apply-bench-"))
    vins = [f"VF3BENCH{n:09d}" for n in range(args.vehicles)]
    (work / "vins.txt").write_text("\n".join(vins) + "\n")
    fleet = work / "fleet.yaml"
    port = _free_port()
    target = (
        f'{{target: "http://127.0.0.1:{port}/hook", headers: {{X-Token: "${{WEBHOOK_TOKEN}}"}}}}'
        if args.receiver
        else "{target: https://hooks.example.com/ops}"
    )
    fleet.write_text(
        "apiVersion: reconciler/v1\nfleet: 0a123bc5d1e873066454b4d9\n"
        f"callbacks:\n  ops:\n    webhook: {target}\n"
        "    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest]\n"
        'profiles:\n  p:\n    preconditioning:\n      - {slot: 1, start: "07:30", days: weekdays}\n'
        '    charging:\n      schedule:\n        - {slot: 1, start: "22:00", end: "06:00", days: everyday}\n'
        "      preferences: {level: Level3, type: Partial}\n"
        "vehicles:\n" + "".join(f"  {vin}: {{profile: p}}\n" for vin in vins)
    )
    receiver: subprocess.Popen[str] | None = None
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "simulator",
            "--dir",
            str(work / "sim"),
            "--vins",
            str(work / "vins.txt"),
            "--fleet",
            "0a123bc5d1e873066454b4d9",
            "--latency",
            "0.05",
            "--rate-per-second",
            str(args.rate),
            "--sleeping",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        exports = read_exports(server.stdout)
        env = {
            **os.environ,
            **exports,
            "RECONCILER_STATE": f"sqlite:///{work / 'state.db'}",
            "WEBHOOK_TOKEN": "t0ken-bench",
        }
        if args.receiver:
            receiver = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "webhook", "-f", str(fleet), "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert receiver.stdout is not None
            receiver.stdout.readline()  # "listening on …": its heartbeat is in the state
        time.sleep(1.1)  # let the simulator's bucket fill, as a server that was idle
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "-f",
                str(fleet),
                "--auto-approve",
                "--parallelism",
                str(args.parallelism),
                "--timeout",
                "600",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - started
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(timeout=10)
        server.terminate()
        server.wait(timeout=10)
    usage = re.search(r"API: (\d+) calls \((.*?)\), (\d+) answered 429(?: \(the last ([\d.]+) s)?", result.stderr)
    if result.returncode != 0 or usage is None:
        sys.exit(f"apply exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    calls, methods, throttled, last = int(usage[1]), usage[2], int(usage[3]), usage[4]
    ideal = calls / args.rate
    print(
        f"{args.vehicles} vehicles × 3 actions, simulator limited to {args.rate:.0f} requests/s, "
        f"parallelism {args.parallelism}"
    )
    print(f"  API calls        {calls} ({methods})")
    print(f"  apply took       {took:.1f} s (whole process, start-up included)")
    print(f"  ideal            {ideal:.1f} s (calls ÷ rate)")
    print(f"  ratio            {took / ideal:.3f} (target ≤ 1.15)")
    print(f"  429 answers      {throttled}" + (f", the last {last} s after the start" if last else ""))
    polls = re.search(
        r"Outcomes: ([\d,]+) status polls? for ([\d,]+) action\(s\)(?:.*?; ([\d,]+) from the webhook)?", result.stdout
    )
    if polls is not None:
        made, followed = int(polls[1].replace(",", "")), int(polls[2].replace(",", ""))
        heard = int((polls[3] or "0").replace(",", ""))
        posted = re.search(r"(\d+) POST", methods)
        posts = int(posted[1]) if posted else 0
        per = made / max(1, followed)
        print(f"  status polls     {made} for {followed} actions ({per:.2f} an action; target ≤ 0.25 with a receiver)")
        print(f"  from receiver    {heard} outcomes")
        per_vehicle = f"{calls / args.vehicles:.2f} ({posts / args.vehicles:.2f} POST"
        print(f"  calls a vehicle  {per_vehicle}; the floor is 3 POSTs, one an action)")
    woken, counted = _wakeups(work)
    print(
        f"  wake-ups         {woken / args.vehicles:.2f} per vehicle by the simulator, "
        f"{counted / args.vehicles:.2f} counted by reconciler (ideal 1.00)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wakeups(work: Path) -> tuple[int, int]:
    """Wake-ups the simulator's vehicles used, and those reconciler's state counted."""
    with sqlite3.connect(work / "sim" / "simulator.db") as db:
        docs = [json.loads(doc) for (doc,) in db.execute("SELECT doc FROM items WHERE kind = 'vehicle'")]
    with sqlite3.connect(work / "state.db") as db:
        (counted,) = db.execute("SELECT COALESCE(SUM(used), 0) FROM wakeups").fetchone()
    return sum(doc["wakeups_used"] for doc in docs), int(counted)


if __name__ == "__main__":
    main()
