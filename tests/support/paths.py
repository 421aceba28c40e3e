"""Files the tests read: the project's example fleet, the API reference beside the project, a minimal fleet;
and the two helpers that write a fleet file and list what a command left behind."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "fleet.yaml.example"
REFERENCE = ROOT.parent / "shared" / "reference"  # the official OpenAPI files, when they are beside the project

MINIMAL = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
api: {url: sandbox}
callbacks:
  ops:
    webhook: {target: "https://hooks.example.com/x"}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest, Immobilization, Stolen]
vehicles:
  VF3ABCDE0FG123456:
    preconditioning:
      - {slot: 1, start: "07:30", days: weekdays}
"""

# One group takes every vehicle the API lists (the brakes' and the plan-truth tests' fleets add a rollout).
ALL_IN_ONE_GROUP = """\
apiVersion: reconciler/v1
fleet: 0a123bc5d1e873066454b4d9
callbacks:
  ops:
    webhook: {target: "https://hooks.example.com/x"}
    remoteTypes: [ThermalPreconditioning, Immobilization]
profiles:
  p: {preconditioning: [{slot: 1, start: "07:30", days: weekdays}]}
groups:
  - {name: all, match: {all: true}, profile: p}
"""


def write(tmp_path: Path, text: str) -> Path:
    """``text`` as ``tmp_path/fleet.yaml``."""
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}
