"""reconciler import: profiles factored out, secrets kept out, and a file that plans no change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import MINIMAL
from support.planning import WEEKDAYS, air, charge

from reconciler.core.model import Attribute, Callback, ChargingPreferences, Secret, VehicleConfig
from reconciler.core.profiles import factor
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader, writer
from reconciler.run import importer

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


ALL = ("ThermalPreconditioning", "ElectricBatteryChargingRequest", "Stolen")


EVERY_DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


COMMUTER = VehicleConfig(
    {1: air(1), 2: air(2, 1020)}, {1: charge(1, days=EVERY_DAY)}, ChargingPreferences("Level3", "Partial")
)


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


def closest_by_comparing(
    part: VehicleConfig, profiles: list[tuple[str, VehicleConfig]]
) -> tuple[str, VehicleConfig] | None:
    """The base a vehicle takes, found the plain way: every profile compared (what the index must agree with)."""
    sections = ("preconditioning", "charging_schedule", "charging_preferences")
    best, best_score = None, 0
    for name, profile in profiles:
        if any(getattr(profile, s) is not None and getattr(part, s) is None for s in sections):
            continue
        score = sum(getattr(profile, s) is not None and getattr(profile, s) == getattr(part, s) for s in sections)
        if score > best_score:
            best, best_score = (name, profile), score
    return best


SECTION_VALUES = st.fixed_dictionaries(
    {
        "preconditioning": st.none() | st.sampled_from([{1: air(1)}, {1: air(1, 480)}, {1: air(1), 2: air(2, 900)}]),
        "charging_schedule": st.none() | st.sampled_from([{1: charge(1)}, {1: charge(1, 1260)}]),
        "charging_preferences": st.none()
        | st.sampled_from([ChargingPreferences("Level3", None), ChargingPreferences("Level1", "Full")]),
    }
).map(lambda sections: VehicleConfig(**sections))


@given(configs=st.lists(SECTION_VALUES, min_size=1, max_size=30))
def test_a_unique_vehicle_takes_the_same_base_as_comparing_every_profile(configs: list[VehicleConfig]) -> None:
    vins = [f"VF3ABCDE0FG{n:06d}" for n in range(len(configs))]
    factored = factor(dict(zip(vins, configs, strict=True)))
    profiles = list(factored.profiles.items())
    for vin, config in zip(vins, configs, strict=True):
        entry = factored.entries[vin]
        if entry.profile is not None and factored.profiles[entry.profile] == config:
            continue  # a shared configuration: its own profile
        expected = closest_by_comparing(config, profiles)
        assert entry.profile == (expected[0] if expected else None)
