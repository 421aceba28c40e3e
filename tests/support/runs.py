"""Shared by the end-to-end tests: a fleet, and helpers to run apply and count what the API received."""

from __future__ import annotations

from pathlib import Path

from reconciler.cli import main
from reconciler.simulator.app import Served
from reconciler.simulator.server import Simulator

VINS = ["VF3ABCDE0FG123456", "VF3ABCDE0FG123457", "VR3KLMNP2RS345678"]
FLEET = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
api: {url: "https://replaced-by-RECONCILER_API_URL.invalid"}
callbacks:
  ops:
    webhook:
      target: https://hooks.example.com/ops
      headers: {Authorization: "${HOOK_TOKEN}"}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest, Immobilization, Stolen]
profiles:
  commuter:
    preconditioning:
      - {slot: 1, start: "07:30", days: weekdays}
      - {slot: 2, start: "17:00", days: weekdays}
    charging:
      schedule:
        - {slot: 1, start: "22:00", end: "06:00", days: everyday}
      preferences: {level: Level3, type: Partial}
vehicles:
  VF3ABCDE0FG123456: {profile: commuter}
  VF3ABCDE0FG123457: {profile: commuter, immobilized: true}
  VR3KLMNP2RS345678: {profile: commuter}
"""
SECRET = "hook-token-7f3a9c"


def apply(fleet: Path, *extra: str) -> int:
    return main(["apply", "-f", str(fleet), "--auto-approve", "--timeout", "30", *extra])


def mutations(sim: Simulator, since: int = 0) -> list[Served]:
    return [s for s in sim.served[since:] if s.method in ("POST", "PUT", "DELETE")]


def remote_posts(sim: Simulator, since: int = 0) -> list[Served]:
    return [s for s in mutations(sim, since) if s.path.endswith("/remotes") and s.status == 202]
