"""Files the tests read: the project's example fleet, the API reference beside the project, a minimal fleet."""

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
