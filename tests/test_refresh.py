"""Refresh against the simulator: drift found exactly, quirks ignored, lost state adopted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e import VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Simulator


def plan_json(fleet: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "--format", "json"]) in (0, 2)
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_program_changed_behind_the_back_is_drift_exactly_and_corrected(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    sim.engine.drift(
        VINS[2],
        2,
        {
            "enabled": True,
            "recurrence": "Daily",
            "start": "PT19H",
            "occurence": {"day": ["Mon", "Tue", "Wed", "Thu", "Fri"]},
        },
    )
    sim.engine.drift(
        VINS[0], 4, {"enabled": True, "recurrence": "Daily", "start": "PT9H", "occurence": {"day": ["Sun"]}}
    )  # a slot reconciler does not manage
    doc = plan_json(fleet, capsys)
    assert [(d["address"], d["field"]) for d in doc["drift"]] == [(f"vehicle.{VINS[2]}.preconditioning", "slot 2")]
    assert doc["drift"][0]["recorded"]["start"] == "17:00" and doc["drift"][0]["observed"]["start"] == "19:00"
    [change] = doc["changes"]
    assert change["request"]["body"]["preconditioning"]["airConditioning"]["programs"][0]["slot"] == 2
    mark = len(sim.served)
    assert apply(fleet) == 0
    assert len(remote_posts(sim, mark)) == 1
    assert sim.engine.by_vin(VINS[2]).air["2"]["start"] == "PT17H"
    assert "4" in sim.engine.by_vin(VINS[0]).air  # never touched
    doc = plan_json(fleet, capsys)
    assert doc["drift"] == [] and doc["changes"] == []


def test_drift_shows_in_text_as_changed_outside(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    sim.engine.drift(VINS[1], 1, None, charging=True)
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet)]) == 0
    out = capsys.readouterr().out
    assert "Changed outside reconciler (drift):" in out
    assert f"vehicle.{VINS[1]}.charging.schedule slot 1" in out


def test_quirky_status_documents_are_no_drift(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(fleet) == 0
    for vin in VINS:
        sim.engine.configure_vehicle(vin, quirks=["null_programs", "missing_occurence", "legacy_key", "padded_times"])
    doc = plan_json(fleet, capsys)
    assert doc["drift"] == [] and doc["changes"] == []


def test_lost_state_is_adopted_without_duplicates_or_resent_programs(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    state = Path(os.environ["RECONCILER_STATE"].removeprefix("sqlite:///"))
    for path in state.parent.glob("state.db*"):
        path.unlink()
    doc = plan_json(fleet, capsys)
    adopted = {a["address"] for a in doc["adoptions"]}
    assert "callback.ops" in adopted and f"vehicle.{VINS[0]}.preconditioning" in adopted
    # immobilization is not in the status documents: the one flag declared is asserted again
    assert [c["address"] for c in doc["changes"]] == [f"vehicle.{VINS[1]}.immobilization"]
    mark = len(sim.served)
    assert apply(fleet) == 0
    posts = [s for s in mutations(sim, mark)]
    assert [s.path.rsplit("/", 1)[-1] for s in posts] == ["remotes"]  # no callback created, no program resent
    assert len(sim.engine.list_callbacks()) == 1
    doc = plan_json(fleet, capsys)
    assert doc["changes"] == [] and doc["adoptions"] == []


def test_unreachable_api_plans_against_the_state_with_a_warning(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_API_URL", "https://127.0.0.1:9/connectedcar/v3")
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "1")
    assert main(["plan", "-f", str(fleet), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "warning: refresh skipped" in captured.err
    assert json.loads(captured.out)["refreshed"] is False
