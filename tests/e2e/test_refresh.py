"""Refresh against the simulator: drift found exactly, quirks ignored, lost state adopted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.runs import VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Settings, Simulator


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


def test_a_callback_in_place_with_other_settings_is_adopted_and_updated_once(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No state (a first run against a fleet that has the callback, or a lost state), its body differs."""
    callback = sim.engine.create_callback(
        {
            "label": "ops",
            "callback": {"webhook": {"target": "https://old.example.com/hook", "name": "old"}},
            "remoteTypes": ["ThermalPreconditioning"],
        }
    )
    sim.engine.set_callback_status(callback.id, {"status": "Paused"})
    doc = plan_json(fleet, capsys)
    assert [(c["address"], c["action"]) for c in doc["changes"][:2]] == [
        ("callback.ops", "update"),
        ("callback.ops", "resume"),
    ]
    assert doc["changes"][0]["request"]["path"].endswith(f"/remote/callbacks/{callback.id}")
    mark = len(sim.served)
    assert apply(fleet) == 0
    callback_calls = [
        (s.method, s.path.split("/remote/callbacks")[-1]) for s in mutations(sim, mark) if "/remote/callbacks" in s.path
    ]
    assert callback_calls == [("PUT", f"/{callback.id}"), ("PUT", f"/{callback.id}/status")]
    [only] = sim.engine.list_callbacks()
    assert (
        only.status == "Running" and only.subscribe["callback"]["webhook"]["target"] == "https://hooks.example.com/ops"
    )
    mark = len(sim.served)
    assert apply(fleet) == 0
    assert mutations(sim, mark) == []


def test_unreachable_api_plans_against_the_state_and_says_so(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_API_URL", "https://127.0.0.1:9/connectedcar/v3")
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "1")
    assert main(["plan", "-f", str(fleet), "--format", "json", "--detailed-exitcode"]) == 1
    captured = capsys.readouterr()
    assert "warning: refresh failed" in captured.err
    doc = json.loads(captured.out)
    assert doc["refreshed"] is False and doc["changes"]  # planned against the (empty) state all the same
    assert doc["refresh"] == {"requested": True, "ok": False, "error": doc["refresh"]["error"]}
    assert "127.0.0.1:9" in doc["refresh"]["error"]


def test_a_refresh_refused_by_the_api_is_said_everywhere_and_stops_apply(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    sim.faults.refuse[("GET", "/remote/callbacks")] = 400
    capsys.readouterr()
    assert main(["plan", "-f", str(fleet)]) == 0
    assert "Refresh failed:" in capsys.readouterr().out
    assert main(["plan", "-f", str(fleet), "--format", "markdown"]) == 0
    assert "> [!CAUTION]\n> **Refresh failed**" in capsys.readouterr().out
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 1  # cannot say "no changes" blind
    assert main(["plan", "-f", str(fleet), "--detailed-exitcode", "--no-refresh"]) == 0
    assert json.loads(_json_plan(fleet, capsys, "--no-refresh"))["refresh"] == {
        "requested": False,
        "ok": False,
        "error": None,
    }
    mark = len(sim.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 1
    assert "refresh failed, nothing was sent" in capsys.readouterr().err
    assert mutations(sim, mark) == []
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--no-refresh"]) == 0


def _json_plan(fleet: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    main(["plan", "-f", str(fleet), "--format", "json", *extra])
    return capsys.readouterr().out


def test_relative_paging_links_and_the_api_documentation_s_callback_shape(
    tmp_path: Path, fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed subscribes $vin as a query attribute with batch notify; the API pages with references."""
    settings = Settings(
        tmp_path / "paged", fleet_id="0a123bc5d1e873066454b4d9", vins=VINS, latency=0.05, per_second=1000, page_size=2
    )
    with Simulator(settings) as paged:
        paged.faults.relative_links = True
        for name, value in paged.connection.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'paged-state' / 'state.db'}")
        fleet.write_text(
            fleet.read_text().replace(
                'headers: {Authorization: "${HOOK_TOKEN}"}',
                'headers: {Authorization: "${HOOK_TOKEN}"}\n      query: {vin: $vin}\n    batchNotify: {size: 10}',
            )
        )
        assert main(["validate", "-f", str(fleet)]) == 0
        assert "batchNotify will not batch" in capsys.readouterr().err
        assert apply(fleet) == 0
        assert apply(fleet) == 0
        assert main(["plan", "-f", str(fleet), "--detailed-exitcode"]) == 0
        pages = [s for s in paged.served if s.method == "GET" and s.path.endswith("/status")]
        assert len(pages) >= 2 * 3  # two pages of fleet status a run
        assert all(s.status == 200 for s in paged.served if s.method == "GET")


def test_a_plan_without_credentials_says_it_could_not_refresh(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_PASSWORD")
    assert main(["plan", "-f", str(fleet), "--format", "json", "--detailed-exitcode"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert "RECONCILER_PASSWORD" in doc["refresh"]["error"]
