"""Groups: which vehicles they take, what they give them, where each value comes from, and mixed fleets."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core import groups, planner, targets
from reconciler.core.model import Capabilities, Group, Observed, Recorded, Selector, Source, VehicleConfig
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.fleetfile import loader

HEAD = """\
apiVersion: reconciler/v1
fleet: F1
api: {url: sandbox}
callbacks:
  ops:
    webhook: {target: "https://hooks.example.com/x"}
    remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest, Immobilization, Stolen]
profiles:
  commuter:
    preconditioning: [{slot: 1, start: "07:30", days: weekdays}]
    charging: {preferences: {level: Level3}}
  night:
    preconditioning: [{slot: 1, start: "22:00", days: everyday}]
"""


VAN, VAN2, CAR, OTHER = "VR3AAAAAAAA000001", "VR3AAAAAAAA000002", "VF3AAAAAAAA000003", "W0VAAAAAAAA000004"
LISTING = {vin: f"vid-{vin}" for vin in (VAN, VAN2, CAR, OTHER)}


def parse(text: str) -> loader.Desired:  # type: ignore[name-defined]
    return loader.parse(HEAD + textwrap.dedent(text), "fleet.yaml", {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(p) for p in caught.value.problems]


def resolved(text: str) -> dict[str, object]:
    desired = groups.members(parse(text), LISTING)
    return {vin: v for vin, v in desired.vehicles.items()}


def test_first_matching_group_wins_in_file_order() -> None:
    vehicles = resolved("""\
        groups:
          - {name: vans, match: {vinPrefix: VR3}, profile: commuter}
          - {name: everyone, match: {all: true}, profile: night}
        """)
    assert vehicles[VAN].config.preconditioning[1].start == 450  # type: ignore[attr-defined]
    assert vehicles[CAR].config.preconditioning[1].start == 1320  # type: ignore[attr-defined]
    assert vehicles[VAN].sources["preconditioning"] == Source(group="vans", profile="commuter")  # type: ignore[attr-defined]
    assert vehicles[VAN].explicit is False  # type: ignore[attr-defined]


def test_excluded_vehicles_fall_to_the_next_group_and_unmatched_ones_are_not_managed() -> None:
    vehicles = resolved(f"""\
        groups:
          - {{name: vans, match: {{vinPrefix: VR3}}, exclude: {{vins: [{VAN2}]}}, profile: commuter}}
          - {{name: cars, match: {{vinPrefix: [VF3, VR3]}}, profile: night}}
        """)
    assert vehicles[VAN].sources["preconditioning"].group == "vans"  # type: ignore[attr-defined]
    assert vehicles[VAN2].sources["preconditioning"].group == "cars"  # type: ignore[attr-defined]
    assert OTHER not in vehicles


def test_a_vehicle_entry_replaces_its_group_section_by_section() -> None:
    vehicles = resolved(f"""\
        groups:
          - name: vans
            match: {{vinPrefix: VR3}}
            profile: commuter
            immobilized: false
        vehicles:
          {VAN}:
            preconditioning: [{{slot: 2, start: "06:00", days: weekend}}]
        """)
    van = vehicles[VAN]
    assert set(van.config.preconditioning) == {2}  # type: ignore[attr-defined]
    assert van.config.charging_preferences.level == "Level3"  # type: ignore[attr-defined]  # kept from the group
    assert van.config.immobilized is False  # type: ignore[attr-defined]
    assert van.sources == {  # type: ignore[attr-defined]
        "preconditioning": Source(vehicle=True),
        "charging.preferences": Source(group="vans", profile="commuter"),
        "immobilization": Source(group="vans"),
    }
    assert van.explicit is True  # type: ignore[attr-defined]


def test_a_vehicle_entry_with_its_own_profile_says_so() -> None:
    vehicles = resolved(f"""\
        groups:
          - {{name: vans, match: {{vinPrefix: VR3}}, profile: commuter}}
        vehicles:
          {VAN}: {{profile: night}}
        """)
    assert vehicles[VAN].sources["preconditioning"] == Source(profile="night", vehicle=True)  # type: ignore[attr-defined]
    assert vehicles[VAN].sources["charging.preferences"].group == "vans"  # type: ignore[attr-defined]


def test_without_a_listing_groups_take_no_vehicle() -> None:
    desired = parse("groups:\n  - {name: all, match: {all: true}, profile: night}\n")
    assert groups.members(desired, None).vehicles == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "groups:\n  - {name: vans, match: {vinprefix: VR3}}\n",
            "fleet.yaml:15:26: groups[0].match: unknown key 'vinprefix'\n    did you mean 'vinPrefix'?",
        ),
        (
            "groups:\n  - {name: vans, match: {all: true}, profil: night}\n",
            "fleet.yaml:15:38: groups[0]: unknown key 'profil'",
        ),
        (
            "groups:\n  - {name: vans, match: {all: true}, profile: nihgt}\n",
            "fleet.yaml:15:47: groups[0].profile: profile 'nihgt' is not declared",
        ),
        (
            "groups:\n  - {name: vans, match: {all: true}, callback: opz}\n",
            "fleet.yaml:15:48: groups[0].callback: callback 'opz' is not declared",
        ),
        (
            "groups:\n  - {name: a, match: {vinPrefix: VR3}}\n  - {name: a, match: {vinPrefix: VF3}}\n",
            "fleet.yaml:16:12: groups[1].name: group 'a' is declared twice (first at line 15)",
        ),
        (
            "groups:\n  - {name: all, match: {all: true}}\n  - {name: vans, match: {vinPrefix: VR3}}\n",
            "fleet.yaml:16:25: groups[1].match: group 'vans' can never match a vehicle",
        ),
        (
            "groups:\n  - {name: v, match: {vinPrefix: VR}}\n  - {name: vans, match: {vinPrefix: [VR3, VR7]}}\n",
            "fleet.yaml:16:25: groups[1].match: group 'vans' can never match a vehicle",
        ),
        (
            "groups:\n  - {name: o, match: {vinPrefix: VOQ}}\n",
            "fleet.yaml:15:34: groups[0].match.vinPrefix: prefix 'VOQ' can never match",
        ),
        (
            f"groups:\n  - {{name: x, match: {{vins: [{VAN}]}}, exclude: {{vinPrefix: VR3}}}}\n",
            "fleet.yaml:15:22: groups[0].match: group 'x' can never match a vehicle",
        ),
        ("groups:\n  - {name: x, match: {vins: [NOTAVIN]}}\n", "fleet.yaml:15:30: groups[0].match.vins[0]: not a VIN"),
        ("groups:\n  - {name: x, match: {}}\n", "fleet.yaml:15:22: groups[0].match: a mapping is too small"),
        ("groups:\n  - {name: x}\n", "fleet.yaml:15:5: groups[0]: missing required key 'match'"),
    ],
)
def test_group_mistakes_are_located(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), "\n".join(found)


def test_an_explicit_vin_outside_every_prefix_is_fine() -> None:
    groups_text = "groups:\n  - {name: vans, match: {vinPrefix: VR3}, profile: night}\n"
    assert OTHER in parse(groups_text + f"vehicles:\n  {OTHER}: {{profile: night}}\n").vehicles


PREFIXES = ["VR3", "VF3", "W0V", "VXK"]


vins = st.lists(
    st.tuples(st.sampled_from(PREFIXES), st.integers(0, 99999)).map(lambda p: f"{p[0]}AAAAAAA{p[1]:07d}"),
    max_size=25,
    unique=True,
)


assignment = st.lists(st.sampled_from(["commuter", "night", None]), min_size=len(PREFIXES), max_size=len(PREFIXES))


@settings(max_examples=60, deadline=None)
@given(vins, assignment)
def test_explicit_entries_and_groups_plan_the_same(fleet_vins: list[str], profiles: list[str | None]) -> None:
    by_prefix = dict(zip(PREFIXES, profiles, strict=True))
    explicit = "vehicles:\n" + "".join(
        f"  {vin}: {{profile: {by_prefix[vin[:3]]}}}\n" for vin in fleet_vins if by_prefix[vin[:3]]
    )
    grouped = "groups:\n" + "".join(
        f"  - {{name: g-{prefix}, match: {{vinPrefix: {prefix}}}, profile: {profile}}}\n"
        for prefix, profile in by_prefix.items()
        if profile
    )
    listing = {vin: f"vid-{vin}" for vin in fleet_vins}
    recorded = Recorded(lineage="L", serial=1, fingerprint_key=b"k" * 32)
    observed = Observed(listing=listing)
    one = planner.plan(parse(explicit if "  " in explicit else ""), recorded, observed)
    two = planner.plan(parse(grouped if "  - " in grouped else ""), recorded, observed)
    assert [c._replace(source=None) for c in one.changes] == [c._replace(source=None) for c in two.changes]


def test_what_a_vehicle_cannot_take_is_listed_apart_and_is_no_change() -> None:
    schedule = '[{slot: 1, start: "22:00", end: "06:00", days: everyday}]'
    desired = parse(f"vehicles:\n  {CAR}:\n    profile: commuter\n    charging:\n      schedule: {schedule}\n")
    thermal = Capabilities(motorization="Thermic")
    small = Capabilities(preconditioning_programs=0, charging_type=False)
    recorded = Recorded(lineage="L", fingerprint_key=b"k" * 32, capabilities={CAR: thermal})
    result = planner.plan(desired, recorded)
    assert [c.address for c in result.changes if c.vin] == [f"vehicle.{CAR}.preconditioning"]
    instead = "leave charging: out for it (from a group: exclude: {vins: [...]})"  # what to write instead
    assert {c.address: c.reason for c in result.cannot_apply} == {
        f"vehicle.{CAR}.charging.schedule": f"a thermic vehicle has no remote charging; {instead}",
        f"vehicle.{CAR}.charging.preferences": f"a thermic vehicle has no remote charging; {instead}",
    }
    result = planner.plan(desired, replace(recorded, capabilities={CAR: small}))
    reasons = {c.address: c.reason for c in result.cannot_apply}
    assert reasons[f"vehicle.{CAR}.preconditioning"].endswith(
        "; leave preconditioning: out for it (from a group: exclude: {vins: [...]})"
    )
    one = Capabilities(preconditioning_programs=1)
    two = '[{slot: 1, start: "07:30", days: weekdays}, {slot: 2, start: "17:30", days: weekdays}]'
    desired = parse(f"vehicles:\n  {CAR}:\n    preconditioning: {two}\n")
    result = planner.plan(desired, replace(recorded, capabilities={CAR: one}))
    assert [c.reason for c in result.cannot_apply] == ["2 programs, and the vehicle holds at most 1; list 1 or fewer"]


def test_a_target_only_a_group_takes_is_known_once_the_listing_holds_it() -> None:
    desired = parse("groups:\n  - {name: vans, match: {vinPrefix: VR3}, profile: commuter}\n")
    recorded = Recorded(lineage="L")
    targets.check_known([f"vehicle.{VAN}.preconditioning"], desired, recorded)  # before the listing: may be
    targets.check_known([f"vehicle.{VAN}"], desired, recorded, LISTING)
    typo = "VR3AAAAAAAA000009"
    targets.check_known([f"vehicle.{typo}"], desired, recorded)
    with pytest.raises(ReconcilerError, match="the fleet's listing does not hold it"):
        targets.check_known([f"vehicle.{typo}"], desired, recorded, LISTING)
    with pytest.raises(ReconcilerError, match="matches nothing"):
        targets.check_known([f"vehicle.{CAR}"], desired, recorded)  # no group takes it


SELECTORS = st.builds(
    Selector,
    prefixes=st.lists(st.sampled_from(["V", "VF", "VF3", "VR3", "VF3A", "W0V", "VXK"]), max_size=3).map(tuple),
    vins=st.frozensets(st.sampled_from([VAN, VAN2, CAR, OTHER]), max_size=2),
    everything=st.just(False),
)


@given(
    groups_=st.lists(st.tuples(SELECTORS, st.none() | SELECTORS), min_size=1, max_size=12),
    vins=st.lists(st.sampled_from([VAN, VAN2, CAR, OTHER, "VF3BBBBBBBB000005", "VXKAAAAAAAA000006"]), max_size=6),
    everything_at=st.none() | st.integers(0, 11),
)
def test_the_prefix_index_finds_the_same_group_as_asking_each_in_turn(
    groups_: list[tuple[Selector, Selector | None]], vins: list[str], everything_at: int | None
) -> None:
    config = VehicleConfig()
    made = [
        Group(f"g{n}", replace(match, everything=n == everything_at), exclude, config, {}, {})
        for n, (match, exclude) in enumerate(groups_)
    ]
    takers = groups.Takers(made)
    for vin in vins:
        assert takers.first(vin) is groups.first_taker(made, vin)
