from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fleet.yaml.example"
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No RECONCILER_* from the developer's shell, and a home directory that does not exist.

    Anything that reads or writes under ~ fails loudly instead of touching the real one.
    """
    for name in list(os.environ):
        if name.startswith("RECONCILER_") or name == "NO_COLOR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home-here"))
    monkeypatch.chdir(tmp_path)


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
