"""reconciler import: profiles factored out, secrets kept out, and a file that plans no change."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from support.runs import SECRET, VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.simulator.server import Settings, Simulator


def configure(sim: Simulator, fleet: Path) -> None:
    """A fleet set up through the API (by reconciler here, with a state of its own), plus a driver's extra slot."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECONCILER_STATE", f"sqlite:///{fleet.parent / 'configuring' / 'state.db'}")
        assert apply(fleet) == 0
    sim.engine.drift(
        VINS[0], 3, {"enabled": True, "recurrence": "Daily", "start": "PT9H", "occurence": {"day": ["Sat"]}}
    )


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory with a state of its own: where the fleet is imported."""
    folder = tmp_path / "imported"
    folder.mkdir()
    monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{folder / '.reconciler' / 'state.db'}")
    monkeypatch.chdir(folder)
    return folder


def test_import_round_trip_plans_nothing_and_an_edit_reaches_exactly_its_vehicles(
    sim: Simulator, fleet: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(sim, fleet)
    mark = len(sim.served)
    capsys.readouterr()
    assert main(["import"]) == 0
    out = capsys.readouterr().out
    assert "OPS_AUTHORIZATION" in out and SECRET not in out
    assert mutations(sim, mark) == []  # import sends nothing
    written = (elsewhere / "fleet.yaml").read_text()
    assert written.startswith("# yaml-language-server: $schema=")
    assert "Imported by reconciler import on" in written
    assert '"${OPS_AUTHORIZATION}"' in written
    monkeypatch.setenv("OPS_AUTHORIZATION", SECRET)
    assert main(["validate"]) == 0
    assert main(["plan", "--detailed-exitcode"]) == 0
    mark = len(sim.served)
    assert main(["apply", "--auto-approve"]) == 0
    assert mutations(sim, mark) == []
    # Edit the generated profile: its vehicles, and only they, get an action.
    document = yaml.safe_load(written)
    [profile] = document["profiles"]
    users = [vin for vin, e in document["vehicles"].items() if e.get("profile") == profile and "charging" not in e]
    assert len(users) == 3  # two share it whole; the car with a driver's slot takes its charging
    edited = written.replace('start: "22:00", end: "06:00"', 'start: "23:00", end: "06:00"', 1)
    (elsewhere / "fleet.yaml").write_text(edited)
    capsys.readouterr()
    assert main(["plan", "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert sorted(c["address"] for c in changes) == sorted(f"vehicle.{vin}.charging.schedule" for vin in users)
    mark = len(sim.served)
    assert main(["apply", "--auto-approve"]) == 0
    assert len(remote_posts(sim, mark)) == len(users)
    for path in elsewhere.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_import_refuses_to_overwrite_and_a_second_import_needs_force(
    sim: Simulator, fleet: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(sim, fleet)
    (elsewhere / "fleet.yaml").write_text("mine\n")
    assert main(["import"]) == 1
    assert "exists" in capsys.readouterr().err
    assert (elsewhere / "fleet.yaml").read_text() == "mine\n"
    assert main(["import", "--force"]) == 0
    assert main(["import", "-o", "again.yaml"]) == 1  # the state records the first import
    assert "already records" in capsys.readouterr().err
    assert not (elsewhere / "again.yaml").exists()
    assert main(["import", "-o", "again.yaml", "--force"]) == 0


def test_vin_prefix_imports_only_those_vehicles(
    sim: Simulator, fleet: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(sim, fleet)
    assert main(["import", "--vin-prefix", "VR3"]) == 0
    written = (elsewhere / "fleet.yaml").read_text()
    assert VINS[2] in written and VINS[0] not in written and VINS[1] not in written


def test_a_callback_without_a_label_gets_one_from_its_name_and_it_is_said(
    sim: Simulator, fleet: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.engine.create_callback(
        {
            "callback": {"webhook": {"target": "https://hooks.example.com/a", "name": "Ops Hook!"}},
            "remoteTypes": ["ThermalPreconditioning"],
        }
    )
    assert main(["import"]) == 0
    out = capsys.readouterr().out
    assert "no label in the API: 'Ops-Hook' here" in out
    assert main(["plan", "--detailed-exitcode"]) == 0
    # The state is lost: nothing in the API carries the label, yet the callback is found again, not made twice.
    for refresh in ("--refresh", "--no-refresh"):
        shutil.rmtree(elsewhere / ".reconciler")
        assert main(["apply", "--auto-approve", refresh]) == 0
        assert len(sim.engine.callbacks) == 1, refresh
    assert main(["plan", "--detailed-exitcode"]) == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            {"RECONCILER_API_URL": "https://127.0.0.1:9/connectedcar/v3", "RECONCILER_HTTP_TIMEOUT": "1"},
            "cannot connect",
        ),
        ({"RECONCILER_PASSWORD": "wrong"}, "authentication failed"),
        ({"RECONCILER_FLEET": "ffffffffffffffffffffffff"}, "is not accessible"),
        ({"RECONCILER_API_URL": "http://api.example.com/v3"}, "plain http://"),
    ],
)
def test_faults_are_clear_errors_and_nothing_is_written(
    sim: Simulator,
    elsewhere: Path,
    setup: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {**sim.connection.environment(), **setup}.items():
        monkeypatch.setenv(name, value)
    assert main(["import"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(elsewhere.iterdir()) == []  # neither the file nor the state


def test_quirky_status_documents_are_read_right(
    sim: Simulator, fleet: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(sim, fleet)
    for vin in VINS:
        sim.engine.configure_vehicle(vin, quirks=["null_programs", "missing_occurence", "legacy_key", "padded_times"])
    assert main(["import"]) == 0
    written = (elsewhere / "fleet.yaml").read_text()
    assert 'start: "07:30"' in written and "PT07" not in written
    monkeypatch.setenv("OPS_AUTHORIZATION", SECRET)
    assert main(["plan", "--detailed-exitcode"]) == 0


def test_import_reads_pages_not_vehicles_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(150)]
    with Simulator(Settings(tmp_path / "big", fleet_id="F1", vins=vins, per_second=5000)) as big:
        for name, value in big.connection.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state.db'}")
        mark = len(big.served)
        assert main(["import", "-o", str(tmp_path / "fleet.yaml")]) == 0
        assert len(big.served) - mark <= 2 * 3 + 5  # ⌈150/60⌉ pages of vehicles and of status, callbacks


def test_import_of_the_sandbox_example_plans_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.paths import EXAMPLE

    (tmp_path / "fleet.yaml.example").write_text(EXAMPLE.read_text())
    assert main(["apply", "-f", "fleet.yaml.example", "--auto-approve"]) == 0
    os.rename(tmp_path / ".reconciler" / "state.db", tmp_path / "old-state.db")
    for leftover in (tmp_path / ".reconciler").glob("state.db-*"):
        leftover.unlink()
    assert main(["import", "-f", "fleet.yaml.example", "-o", "fleet.yaml"]) == 0
    assert main(["plan", "-f", "fleet.yaml", "--detailed-exitcode"]) == 0


def test_dollar_literals_the_api_holds_come_back_through_import(
    sim: Simulator, fleet: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(sim, fleet)
    attributes = [
        {"type": "Header", "key": "X-Tag", "value": "$notavar"},
        {"type": "Body", "key": "note", "value": "costs ${PRICE}"},
        {"type": "Query", "key": "v", "value": "$vin"},
    ]
    webhook = {"target": "https://hooks.example.com/desk", "name": "desk", "attributes": attributes}
    sim.engine.create_callback({"label": "desk", "callback": {"webhook": webhook}, "remoteTypes": ["Horn"]})
    assert main(["import"]) == 0, capsys.readouterr().err
    written = (elsewhere / "fleet.yaml").read_text()
    assert '"$$notavar"' in written and '"costs $${PRICE}"' in written and '"$vin"' in written
    monkeypatch.setenv("OPS_AUTHORIZATION", SECRET)
    assert main(["plan", "--detailed-exitcode"]) == 0
    mark = len(sim.served)
    assert main(["apply", "--auto-approve"]) == 0
    assert mutations(sim, mark) == []
