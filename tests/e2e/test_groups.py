"""Groups: which vehicles they take, what they give them, where each value comes from, and mixed fleets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.runs import FLEET, VINS, apply, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Simulator

GROUPED = FLEET.split("vehicles:\n")[0] + "groups:\n  - {name: everyone, match: {all: true}, profile: commuter}\n"
VAN, VAN2, CAR, OTHER = "VR3AAAAAAAA000001", "VR3AAAAAAAA000002", "VF3AAAAAAAA000003", "W0VAAAAAAAA000004"


def test_vehicles_joining_are_configured_and_leaving_ones_are_let_go(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.write_text(GROUPED)
    assert apply(fleet) == 0
    assert len(remote_posts(sim)) == 9  # three programs on each of the three vehicles
    newcomer = "VF7NEWCAR00000001"
    sim.engine.add_vehicle(newcomer)
    sim.engine.remove_vehicle(VINS[2])
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["vin"] for c in doc["changes"]} == {newcomer}
    assert doc["changes"][0]["source"] == {"group": "everyone", "profile": "commuter"}
    mark = len(sim.served)
    assert apply(fleet) == 0
    assert {p.path.split("/vehicles/")[1].split("/")[0] for p in remote_posts(sim, mark)} == {
        sim.engine.by_vin(newcomer).vid
    }
    assert main(["state", "history", f"vehicle.{newcomer}"]) == 0
    assert "joined" in capsys.readouterr().out
    assert main(["state", "history", f"vehicle.{VINS[2]}"]) == 0
    assert "left" in capsys.readouterr().out


def test_an_explicit_vehicle_the_fleet_does_not_list_cannot_be_applied_and_blocks_nothing(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = "VF3STRANGER000001"
    fleet.write_text(FLEET + f"  {stranger}: {{profile: commuter}}\n")
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {
        "address": f"vehicle.{stranger}",
        "reason": f"not in fleet 0a123bc5d1e873066454b4d9: the API does not list {stranger}",
    } in doc["cannot_apply"]
    assert any(stranger in w for w in doc["warnings"])
    assert apply(fleet) == 0  # everything else converges; the stranger is no failure
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 0


def test_a_mixed_fleet_gets_only_what_each_vehicle_takes(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.engine.configure_vehicle(VINS[2], motorization="Thermic")
    sim.engine.configure_vehicle(VINS[1], charge_type=False)
    capsys.readouterr()
    assert apply(fleet) == 0  # nothing failed: what they cannot take was not sent
    out = capsys.readouterr().out
    assert f"vehicle.{VINS[2]}.charging.schedule" in out and "thermic vehicle has no remote charging" in out
    posted = remote_posts(sim)
    assert not any("charging" in (p.body or {}) and sim.engine.by_vin(VINS[2]).vid in p.path for p in posted)
    assert not any(
        (p.body or {}).get("charging", {}).get("preferences", {}).get("type")
        for p in posted
        if sim.engine.by_vin(VINS[1]).vid in p.path
    )
    mark = len(sim.served)
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 0  # only cannot-apply remains
    capabilities_reads = [s for s in sim.served[mark:] if s.path.startswith("/connectedcar/v3/vehicles/")]
    assert capabilities_reads == []  # read once, kept in the state
    assert os.environ["RECONCILER_STATE"]
