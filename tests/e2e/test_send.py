"""send: every one-off action end to end, the body the simulator received, and bad arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.runs import FLEET, VINS, apply, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Simulator

DESK = """\
  desk:
    webhook: {target: "https://hooks.example.com/desk"}
    remoteTypes: [Horn, Lights, Doors, WakeUp, Navigation]
profiles:"""


@pytest.fixture
def ready(sim: Simulator, fleet: Path) -> Path:
    fleet.write_text(FLEET.replace("profiles:", DESK, 1))
    assert apply(fleet) == 0
    return fleet


CASES: list[tuple[list[str], dict[str, Any]]] = [
    (["horn"], {"horn": {"state": "Activated"}}),
    (["lights"], {"lights": {"on": True}}),
    (["doors", "lock"], {"door": {"state": "Locked"}}),
    (["doors", "unlock"], {"door": {"state": "Unlocked"}}),
    (["wakeup"], {"wakeUp": {"action": "WakeUp"}}),
    (
        ["navigate", "48.8566,2.3522", "-33.8688,151.2093"],
        {
            "navigation": {
                "positions": [
                    {"type": "Point", "coordinates": [2.3522, 48.8566]},
                    {"type": "Point", "coordinates": [151.2093, -33.8688]},
                ]
            }
        },
    ),
    (["charge", "now"], {"charging": {"immediate": True}}),
    (["charge", "stop"], {"charging": {"immediate": False}}),
    (
        ["charge", "at", "2099-12-01T22:00:00+01:00"],
        {"charging": {"schedule": {"nextDelayedTime": "2099-12-01T22:00:00+01:00"}}},
    ),
    (["precondition", "now"], {"preconditioning": {"airConditioning": {"immediate": True}}}),
    (["precondition", "stop"], {"preconditioning": {"airConditioning": {"immediate": False}}}),
    (["stolen", "tracking", "30", "120"], {"stolen": {"trackingPeriod": {"running": 30, "shutdown": 120}}}),
]


@pytest.mark.parametrize(("argv", "body"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_each_action_sends_its_body_and_records_the_outcome(
    sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str], argv: list[str], body: dict[str, Any]
) -> None:
    mark = len(sim.served)
    capsys.readouterr()
    assert main(["send", VINS[0], *argv, "-f", str(ready), "--format", "json"]) == 0
    [post] = remote_posts(sim, mark)
    assert {k: v for k, v in post.body.items() if k != "label"} == body
    result = json.loads(capsys.readouterr().out)
    assert result["result"] == "confirmed" and post.body["label"] == result["key"]


def test_send_appears_in_state_history(sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", VINS[0], "horn", "-f", str(ready)]) == 0
    capsys.readouterr()
    assert main(["state", "history", f"vehicle.{VINS[0]}.horn", "-f", str(ready)]) == 0
    history = capsys.readouterr().out
    assert "send" in history and "Success" in history


def test_immobilize_against_the_file_needs_force_and_is_reverted_by_apply(
    sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # VINS[1] is declared immobilized: true
    mark = len(sim.served)
    assert main(["send", VINS[1], "immobilize", "off", "-f", str(ready)]) == 1
    assert "the next apply will revert" in capsys.readouterr().err
    assert remote_posts(sim, mark) == []
    assert main(["send", VINS[1], "immobilize", "off", "-f", str(ready), "--force"]) == 0
    assert not sim.engine.by_vin(VINS[1]).immobilized
    assert apply(ready) == 0
    assert sim.engine.by_vin(VINS[1]).immobilized


def test_no_wait_exits_0_once_accepted(sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", VINS[2], "lights", "-f", str(ready), "--no-wait"]) == 0
    assert "accepted" in capsys.readouterr().out


def test_failure_exits_1_with_the_cause(sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim.engine.configure_vehicle(VINS[2], fail_cause="DoorsOpen")
    assert main(["send", VINS[2], "doors", "lock", "-f", str(ready)]) == 1
    assert "DoorsOpen" in capsys.readouterr().out


BAD = [
    (["navigate", *["48.85,2.35"] * 11], "at most 10 points"),
    (["navigate", "91,2.35"], "latitude 91.0 is outside"),
    (["navigate", "48.85"], "is not LAT,LON"),
    (["doors", "open"], "doors takes one of lock, unlock"),
    (["honk"], "unknown action 'honk'"),
    (["stolen", "tracking", "4", "120"], "RUNNING is at least 5"),
    (["charge", "at", "tomorrow"], "is not HH:MM"),
    (["charge", "at", "2020-01-01T22:00:00Z"], "is in the past"),
    (["immobilize", "maybe"], "immobilize takes one of on, off"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(b[0])[:30] for b in BAD])
def test_bad_arguments_are_refused_before_anything_is_sent(
    sim: Simulator, ready: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    mark = len(sim.served)
    assert main(["send", VINS[0], *argv, "-f", str(ready)]) == 1
    assert message in capsys.readouterr().err
    assert sim.served[mark:] == []


def test_unknown_vin_and_unsubscribed_action_are_refused(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    assert main(["send", "VF3ZZZZZZZZ999999", "immobilize", "on", "-f", str(fleet)]) == 1
    assert "is not in fleet" in capsys.readouterr().err
    mark = len(sim.served)
    assert main(["send", VINS[0], "horn", "-f", str(fleet)]) == 1  # no callback subscribes to Horn
    assert "no callback subscribes to Horn" in capsys.readouterr().err
    assert main(["send", "NOTAVIN", "horn", "-f", str(fleet)]) == 1
    assert remote_posts(sim, mark) == []
