"""Benchmark: requests per second the simulator serves over keep-alive HTTPS with mutual TLS.

Starts `reconciler simulator` in its own process, then one client process (this
one) sends GET requests on one keep-alive connection for --seconds and prints
the rate. Target (issue 3): at least 500 requests per second.

    python benchmarks/simulator_rps.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
import time

import httpx

from reconciler.simulator.server import read_exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="reconciler-sim-bench-")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "simulator",
            "--dir",
            directory,
            "--vehicles",
            "100",
            "--rate-per-second",
            "1000000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        env = read_exports(server.stdout)
        context = ssl.create_default_context(cafile=env["RECONCILER_CA_BUNDLE"])
        context.load_cert_chain(env["RECONCILER_CLIENT_CERT"], env["RECONCILER_CLIENT_KEY"])
        base = f"{env['RECONCILER_API_URL']}/fleets/{env['RECONCILER_FLEET']}"
        params = {"client_id": env["RECONCILER_CLIENT_ID"]}
        auth = (env["RECONCILER_USERNAME"], env["RECONCILER_PASSWORD"])
        with httpx.Client(verify=context, auth=auth) as http:
            vid = http.get(f"{base}/vehicles", params=params).json()["_embedded"]["vehicles"][0]["id"]
            for name, path in (("vehicle status", f"/vehicles/{vid}/status"), ("callbacks list", "/remote/callbacks")):
                count, started = 0, time.perf_counter()
                while time.perf_counter() - started < args.seconds:
                    http.get(base + path, params=params).raise_for_status()
                    count += 1
                elapsed = time.perf_counter() - started
                rate = count / elapsed
                print(f"{name:<16} {rate:7.0f} requests/s  ({count} in {elapsed:.1f} s, one keep-alive connection)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
