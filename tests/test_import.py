"""reconciler import: profiles factored out, secrets kept out, and a file that plans no change."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import MINIMAL
from e2e import SECRET, VINS, apply, mutations, remote_posts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planning import WEEKDAYS, air, charge

from reconciler.cli import main
from reconciler.core.model import Attribute, Callback, ChargingPreferences, Secret, VehicleConfig
from reconciler.core.profiles import factor
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader, writer
from reconciler.run import importer
from reconciler.simulator.server import Settings, Simulator

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
ALL = ("ThermalPreconditioning", "ElectricBatteryChargingRequest", "Stolen")
EVERY_DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
COMMUTER = VehicleConfig(
    {1: air(1), 2: air(2, 1020)}, {1: charge(1, days=EVERY_DAY)}, ChargingPreferences("Level3", "Partial")
)


# factoring


def test_vehicles_holding_the_same_programs_share_a_profile_named_after_them() -> None:
    configs = {f"VIN{n}": COMMUTER for n in range(5)} | {"LONE": VehicleConfig({1: air(1, 480)})}
    factoring = factor(configs)
    assert list(factoring.profiles) == ["pre-0730-wd-1700-wd_chg-2200-0600_l3-partial"]
    assert factoring.users == {"pre-0730-wd-1700-wd_chg-2200-0600_l3-partial": 5}
    assert factoring.entries["VIN0"].profile == "pre-0730-wd-1700-wd_chg-2200-0600_l3-partial"
    assert factoring.entries["LONE"].profile is None
    assert factoring.entries["LONE"].own.preconditioning == {1: air(1, 480)}


def test_a_vehicle_with_its_own_extras_takes_a_profile_and_writes_the_section_that_differs() -> None:
    extra = VehicleConfig(
        {**COMMUTER.preconditioning, 3: air(3, 540, ("Sat",))},
        COMMUTER.charging_schedule,  # type: ignore[dict-item]
        COMMUTER.charging_preferences,
        stolen=True,
    )
    factoring = factor({"A": COMMUTER, "B": COMMUTER, "C": extra})
    entry = factoring.entries["C"]
    assert entry.profile == next(iter(factoring.profiles))
    assert set(entry.own.preconditioning or {}) == {1, 2, 3}
    assert entry.own.charging_schedule is None and entry.own.charging_preferences is None
    assert entry.own.stolen is True  # flags stay on the vehicle


def test_a_profile_with_a_section_the_vehicle_lacks_is_no_base_for_it() -> None:
    bare = VehicleConfig(COMMUTER.preconditioning)  # no charging: cannot inherit the profile's
    factoring = factor({"A": COMMUTER, "B": COMMUTER, "C": bare})
    assert factoring.entries["C"].profile is None


def test_twenty_configurations_on_ten_thousand_vehicles_give_twenty_profiles() -> None:
    configs = {f"V{n:05d}": VehicleConfig({1: air(1, 300 + (n % 20) * 15)}) for n in range(10_000)}
    factoring = factor(configs)
    assert len(factoring.profiles) == 20 and all(e.own == VehicleConfig() for e in factoring.entries.values())


# the round trip, without the API: import's file read back plans no change


def imported_fleet(vehicles: dict[str, VehicleConfig], callbacks: list[Callback]) -> importer.Imported:
    made = [importer.ImportedCallback(cb.label, f"cb-{cb.label}", cb, "Running") for cb in callbacks]
    fleet = importer.Imported(
        "F1", "https://api.example.com/v3", made, dict(vehicles), {vin: f"vid-{vin}" for vin in vehicles}, {}
    )
    importer._route(fleet)
    return fleet


def round_trip(fleet: importer.Imported) -> str:
    text, _ = importer.fleet_text(fleet, NOW)
    desired = importer.read_back(text, "fleet.yaml", fleet, {})
    importer.self_check(fleet, desired, b"k" * 32)
    return text


times = st.integers(0, 24 * 60 - 1)
day_sets = st.sampled_from([WEEKDAYS, EVERY_DAY, ("Sat", "Sun"), ("Mon",), ("Tue", "Thu")])
air_programs = st.dictionaries(st.integers(1, 4), st.tuples(times, day_sets, st.booleans()), max_size=4).map(
    lambda d: {s: air(s, t, days, enabled) for s, (t, days, enabled) in d.items()}
)
charge_programs = st.dictionaries(st.integers(1, 4), st.tuples(times, st.integers(1, 600), day_sets), max_size=4).map(
    lambda d: {s: charge(s, t, (t + span) % 1440, days) for s, (t, span, days) in d.items()}
)
preferences = st.none() | st.builds(
    ChargingPreferences, st.sampled_from([None, "Level1", "Level5"]), st.sampled_from([None, "Full", "Partial"])
).filter(lambda p: p.level is not None or p.type is not None)
configs = st.builds(
    VehicleConfig,
    st.none() | air_programs,
    st.none() | charge_programs,
    preferences,
    st.none(),
    st.sampled_from([None, True]),
)
fleets = st.dictionaries(st.sampled_from([f"VF3ABCDE0FG{n:06d}" for n in range(12)]), configs, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets, st.sampled_from([1, 2]))
def test_import_then_plan_is_the_identity_for_random_fleets(vehicles: dict[str, VehicleConfig], carriers: int) -> None:
    secret = Attribute("Header", "X-Api-Key", "k3y-value")
    callbacks = [Callback(f"cb{n}", "https://hooks.example.com/x", f"cb{n}", ALL, (secret,)) for n in range(carriers)]
    fleet = imported_fleet(vehicles, [importer._with_variables(cb, cb.label, set()) for cb in callbacks])
    text = round_trip(fleet)
    assert "k3y-value" not in text


def test_secret_looking_values_become_variables_and_api_variables_stay() -> None:
    cb = Callback(
        "ops hook",
        "https://user:pw@hooks.example.com/x?token=abc",
        "ops",
        ALL,
        (
            Attribute("Header", "Authorization", "Bearer abc"),
            Attribute("Header", "X-Vehicle", "$vin"),
            Attribute("Query", "api_KEY", "q-secret"),
            Attribute("Body", "note", "costs ${PRICE}"),
            Attribute("Body", "fleet", "$fleetID"),
            Attribute("Header", "X-Tag", "$notavar"),
            Attribute("Header", "X-Token", "$notavar"),
        ),
    )
    made = importer._with_variables(cb, "ops-hook", set())
    values = {a.key: a.value for a in made.attributes}
    assert made.target == Secret("OPS_HOOK_TARGET", "https://user:pw@hooks.example.com/x?token=abc")
    assert values["Authorization"] == Secret("OPS_HOOK_AUTHORIZATION", "Bearer abc")
    assert values["api_KEY"] == Secret("OPS_HOOK_API_KEY", "q-secret")
    assert values["X-Token"] == Secret("OPS_HOOK_X_TOKEN", "$notavar")  # its key looks secret
    assert values["X-Vehicle"] == "$vin" and values["fleet"] == "$fleetID"
    # Literals that hold a $ are written with $$, and read back as they were.
    assert (values["note"], values["X-Tag"]) == ("costs ${PRICE}", "$notavar")
    assert writer._value(values["note"]) == '"costs $${PRICE}"'
    assert writer._value(values["X-Tag"]) == '"$$notavar"'
    assert writer._value(values["X-Vehicle"]) == '"$vin"'


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("$$tag", "$tag"),
        ("a$$b", "a$b"),
        ("$${NOT_A_VARIABLE}", "${NOT_A_VARIABLE}"),
        ("$$$$x", "$$x"),
        ("$vin", "$vin"),
    ],
)
def test_a_doubled_dollar_is_a_literal_dollar(tmp_path: Path, written: str, sent: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        MINIMAL.replace(
            'webhook: {target: "https://hooks.example.com/x"}',
            f'webhook: {{target: "https://hooks.example.com/x", headers: {{X-Tag: "{written}"}}}}',
        )
    )
    desired = loader.read(path, {})
    assert [a.value for a in desired.callbacks["ops"].attributes] == [sent]


def test_a_doubled_dollar_before_an_api_variable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        MINIMAL.replace(
            'webhook: {target: "https://hooks.example.com/x"}',
            'webhook: {target: "https://hooks.example.com/x", headers: {X-Vin: "$$vin"}}',
        )
    )
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {})
    assert "'$$vin' is sent as '$vin', which the API fills in with the vin of each event" in str(caught.value)


# end to end, over mutual TLS against the simulator


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
    from conftest import EXAMPLE

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
