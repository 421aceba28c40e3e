"""The pure planner: table-driven cases for every kind of change, and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.planning import (
    KEY,
    OPS,
    VIN,
    VIN2,
    WEEKDAYS,
    air,
    charge,
    desired,
    matching,
    recorded,
    with_status,
)

from reconciler.core import rollout, spec
from reconciler.core.changes import Change, Plan
from reconciler.core.model import (
    Attribute,
    Backoff,
    Callback,
    ChargingPreferences,
    Desired,
    Observed,
    ObservedCallback,
    ObservedVehicle,
    PendingAction,
    Recorded,
    Secret,
    VehicleConfig,
)
from reconciler.core.planner import plan
from reconciler.core.recording import record_success
from reconciler.core.sensitive import seal_callback


def only(changes: tuple[Change, ...]) -> Change:
    assert len(changes) == 1, [c.address for c in changes]
    return changes[0]


def programs_of(change: Change) -> list[dict[str, Any]]:
    return change.request.body["preconditioning"]["airConditioning"]["programs"]  # type: ignore[no-any-return]


def test_first_plan_sets_every_declared_slot() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1), 2: air(2, 1035)})})
    change = only(plan(d, recorded()).changes)
    assert change.address == f"vehicle.{VIN}.preconditioning"
    assert change.action == "send"
    assert [e["slot"] for e in programs_of(change)] == [1, 2]
    assert programs_of(change)[0] == {
        "actionsType": "Set",
        "slot": 1,
        "enabled": True,
        "recurrence": "Daily",
        "start": "PT7H30M",
        "occurence": {"day": list(WEEKDAYS)},
    }
    assert change.request.path == "/fleets/F1/vehicles/{vid}/callbacks/cb-ops/remotes"


def test_changed_slot_is_set_and_unchanged_slot_is_not_resent() -> None:
    before = {1: air(1), 2: air(2, 1035)}
    after = {1: air(1), 2: air(2, 1050)}
    d = desired({VIN: VehicleConfig(preconditioning=after)})
    change = only(plan(d, recorded({VIN: VehicleConfig(preconditioning=before)})).changes)
    assert programs_of(change) == [
        {
            "actionsType": "Set",
            "slot": 2,
            "enabled": True,
            "recurrence": "Daily",
            "start": "PT17H30M",
            "occurence": {"day": list(WEEKDAYS)},
        },
    ]
    assert change.request.path == f"/fleets/F1/vehicles/vid-{VIN}/callbacks/cb-ops/remotes"


def test_removed_slot_is_deleted_not_resent() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1)})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1), 3: air(3, 600)})})
    change = only(plan(d, r).changes)
    assert programs_of(change) == [{"actionsType": "Delete", "slot": 3}]
    assert change.summary == "Delete slot 3"


def test_slots_the_reconciler_never_set_are_left_alone() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1)})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)})})
    driver_set = ObservedVehicle(VIN, f"vid-{VIN}", VehicleConfig(preconditioning={1: air(1), 4: air(4, 300)}))
    assert plan(d, r, Observed(vehicles={VIN: driver_set})).changes == ()


def test_same_time_written_differently_is_no_change() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1, days=("Mon", "Tue"))})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1, days=("Mon", "Tue"))})})
    assert plan(d, r).changes == ()


def test_disabling_a_program_is_a_change() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1, enabled=False)})})
    change = only(plan(d, recorded({VIN: VehicleConfig(preconditioning={1: air(1)})})).changes)
    assert programs_of(change)[0]["enabled"] is False


def test_empty_list_deletes_every_slot_set_before() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1), 2: air(2)})})
    assert programs_of(only(plan(d, r).changes)) == [
        {"actionsType": "Delete", "slot": 1},
        {"actionsType": "Delete", "slot": 2},
    ]


def test_section_left_out_is_not_managed() -> None:
    d = desired({VIN: VehicleConfig()})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)}, immobilized=True)})
    assert plan(d, r).changes == ()


def test_charging_schedule_removed_slot_is_disabled() -> None:
    d = desired({VIN: VehicleConfig(charging_schedule={1: charge(1)})})
    r = recorded({VIN: VehicleConfig(charging_schedule={1: charge(1), 2: charge(2, 60, 120)})})
    change = only(plan(d, r).changes)
    assert change.address == f"vehicle.{VIN}.charging.schedule"
    assert change.request.body["charging"] == {
        "schedule": {
            "programs": [
                {"slot": 2, "enabled": False, "start": "PT1H", "end": "PT2H", "occurence": {"day": list(WEEKDAYS)}},
            ]
        }
    }
    assert change.summary == "Disable slot 2"


def test_charging_preferences_are_a_separate_action() -> None:
    d = desired(
        {
            VIN: VehicleConfig(
                charging_schedule={1: charge(1)}, charging_preferences=ChargingPreferences("Level3", "Partial")
            )
        }
    )
    changes = plan(d, recorded()).changes
    assert [c.address.rsplit(".", 2)[-2:] for c in changes] == [["charging", "schedule"], ["charging", "preferences"]]
    prefs = changes[1].request.body
    assert prefs["charging"] == {"preferences": {"level": "Level3", "type": "Partial"}}
    assert "schedule" not in prefs["charging"]


def test_preferences_compare_only_what_is_declared() -> None:
    d = desired({VIN: VehicleConfig(charging_preferences=ChargingPreferences("Level3", None))})
    r = recorded({VIN: VehicleConfig(charging_preferences=ChargingPreferences("Level3", "Full"))})
    assert plan(d, r).changes == ()


def test_immobilization_and_stolen_are_sent_when_they_differ() -> None:
    d = desired({VIN: VehicleConfig(immobilized=True, stolen=False)})
    r = recorded({VIN: VehicleConfig(immobilized=False, stolen=False)})
    change = only(plan(d, r).changes)
    assert change.request.body["immobilization"] == {"activate": True}
    assert change.remote_type == "Immobilization"
    assert change.summary == "immobilize"


def test_stolen_flag_body() -> None:
    change = only(plan(desired({VIN: VehicleConfig(stolen=True)}), recorded()).changes)
    assert change.request.body["stolen"] == {"stolen": True}
    assert set(change.request.body) == {"label", "stolen"}


def test_new_callback_is_created_with_its_complete_body() -> None:
    change = only(plan(desired({}), recorded(callbacks=())).changes)
    assert (change.action, change.request.method) == ("create", "POST")
    assert change.request.path == "/fleets/F1/remote/callbacks"
    assert change.request.body == {
        "label": "ops",
        "callback": {"webhook": {"target": "https://hooks.example.com/x", "name": "ops"}},
        "remoteTypes": list(OPS.remote_types),
    }


def test_changed_callback_is_updated_with_a_complete_put() -> None:
    wanted = replace(OPS, name="renamed")
    change = only(plan(desired({}, (wanted,)), recorded()).changes)
    assert (change.action, change.request.method, change.request.path) == (
        "update",
        "PUT",
        "/fleets/F1/remote/callbacks/cb-ops",
    )
    assert change.request.body["callback"]["webhook"]["name"] == "renamed"
    assert change.request.body["remoteTypes"] == list(OPS.remote_types)


def test_pause_and_resume_use_the_status_endpoint() -> None:
    paused = with_status(OPS, "Paused")
    change = only(plan(desired({}, (paused,)), recorded()).changes)
    assert (change.action, change.request.path, change.request.body) == (
        "pause",
        "/fleets/F1/remote/callbacks/cb-ops/status",
        {"status": "Paused"},
    )
    change = only(plan(desired({}, (OPS,)), recorded(callbacks=(paused,))).changes)
    assert (change.action, change.request.body) == ("resume", {"status": "Running"})


def test_removed_callback_is_deleted() -> None:
    other = Callback("old", "https://old.example.com", "old", ("Horn",))
    change = only(plan(desired({}), recorded(callbacks=(OPS, other))).changes)
    assert (change.action, change.request.method, change.request.path) == (
        "delete",
        "DELETE",
        "/fleets/F1/remote/callbacks/cb-old",
    )


def test_secret_change_is_detected_by_fingerprint_and_never_shown() -> None:
    def hook(token: str) -> Callback:
        return replace(OPS, attributes=(Attribute("Header", "Authorization", Secret("T", token)),))

    assert plan(desired({}, (hook("one"),)), recorded(callbacks=(hook("one"),))).changes == ()
    change = only(plan(desired({}, (hook("two"),)), recorded(callbacks=(hook("one"),))).changes)
    assert change.action == "update"
    assert [(s.path, s.changed) for s in change.sensitive] == [("webhook.headers.Authorization", True)]
    assert "one" not in repr(change.before) and "two" not in repr(change.after)


def scheduled(d: Desired, r: Recorded, now: str = "2026-11-25T00:00:00+00:00") -> Plan:
    """The plan as plan and apply make it: every change, each with its schedule under the brakes."""
    return rollout.stage(plan(d, r, now=now), d, r, [], datetime.fromisoformat(now)).plan


def test_pending_action_is_shown_not_planned_again() -> None:
    address = f"vehicle.{VIN}.preconditioning"
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1)})})
    r = recorded(pending={address: PendingAction(address, "k1", "WakingUpVehicle", "rid-1")})
    result = scheduled(d, r)
    assert result.going == ()  # nothing is sent again while it is under way
    [change] = result.changes  # and the plan still says what remains to do, and why it waits
    assert change.address == address and change.schedule.kind == "pending"
    assert [h.address for h in result.held] == [address]
    assert "rid-1" in result.held[0].reason and "WakingUpVehicle" in result.held[0].reason


def test_backed_off_failure_waits_until_its_time() -> None:
    address = f"vehicle.{VIN}.immobilization"
    d = desired({VIN: VehicleConfig(immobilized=True)})
    r = recorded(backoffs={address: Backoff(address, "TooManyWakeUpsOverMonth", "2026-12-01T00:00:00+00:00")})
    held = scheduled(d, r, now="2026-11-25T00:00:00+00:00")
    assert held.going == () and [c.schedule.at for c in held.changes] == ["2026-12-01T00:00:00+00:00"]
    assert len(scheduled(d, r, now="2026-12-02T00:00:00+00:00").going) == 1


def test_target_limits_the_plan_and_keeps_needed_callback_creation() -> None:
    d = desired({VIN: VehicleConfig(immobilized=True), VIN2: VehicleConfig(stolen=True)})
    result = plan(d, recorded(callbacks=()), targets=[f"vehicle.{VIN}"])
    assert [c.address for c in result.changes] == ["callback.ops", f"vehicle.{VIN}.immobilization"]


def test_removed_vehicle_is_left_alone_without_prune() -> None:
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)})})
    assert plan(desired({}), r).changes == ()


def test_prune_deletes_programs_of_removed_vehicles_only() -> None:
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)}, charging_schedule={2: charge(2)}, immobilized=True)})
    changes = plan(desired({}, prune=True), r).changes
    assert [c.summary for c in changes] == ["Delete slot 1", "Disable slot 2"]


def test_drift_is_reported_separately_and_corrected() -> None:
    d = desired({VIN: VehicleConfig(preconditioning={1: air(1)})})
    r = recorded({VIN: VehicleConfig(preconditioning={1: air(1)})})
    o = Observed(vehicles={VIN: ObservedVehicle(VIN, f"vid-{VIN}", VehicleConfig(preconditioning={1: air(1, 480)}))})
    result = plan(d, r, o)
    [drift] = result.drift
    assert (drift.address, drift.field) == (f"vehicle.{VIN}.preconditioning", "slot 1")
    assert drift.recorded["start"] == "07:30" and drift.observed["start"] == "08:00"
    assert [e["slot"] for e in programs_of(only(result.changes))] == [1]


def test_observed_callback_is_adopted_not_duplicated() -> None:
    o = Observed(callbacks={"ops": ObservedCallback("cb-found", seal_callback(OPS, KEY))})
    assert plan(desired({}), recorded(callbacks=()), o).changes == ()


times = st.integers(0, 24 * 60 - 1)


day_sets = st.lists(st.sampled_from(spec.DAYS), min_size=1, unique=True).map(
    lambda days: tuple(sorted(days, key=spec.DAYS.index))
)


airs = st.dictionaries(st.sampled_from((1, 2, 3, 4)), st.tuples(times, day_sets, st.booleans())).map(
    lambda d: {s: air(s, t, days, enabled) for s, (t, days, enabled) in d.items()}
)


charges = st.dictionaries(st.sampled_from((1, 2, 3, 4)), st.tuples(times, times, day_sets)).map(
    lambda d: {s: charge(s, a, b if b != a else (a + 1) % 1440, days) for s, (a, b, days) in d.items()}
)


prefs = st.builds(ChargingPreferences, st.sampled_from(spec.CHARGING_LEVELS), st.sampled_from(spec.CHARGING_TYPES))


configs = st.builds(
    VehicleConfig,
    preconditioning=st.none() | airs,
    charging_schedule=st.none() | charges,
    charging_preferences=st.none() | prefs,
    immobilized=st.none() | st.booleans(),
    stolen=st.none() | st.booleans(),
)


fleets = st.dictionaries(st.sampled_from((VIN, VIN2)), configs, min_size=1)


@given(fleets)
def test_planning_against_an_equal_state_changes_nothing(vehicles: dict[str, VehicleConfig]) -> None:
    d = desired(vehicles)
    assert plan(d, matching(d)).changes == ()


@settings(max_examples=300)
@given(fleets, fleets)
def test_applying_the_plan_yields_the_desired_state(
    wanted: dict[str, VehicleConfig], had: dict[str, VehicleConfig]
) -> None:
    d = desired(wanted)
    r = recorded(had, callbacks=())
    for change in plan(d, r).changes:
        r = record_success(r, change, d, callback_id="cb-new")
    assert plan(d, r).changes == ()


@settings(max_examples=300)
@given(fleets, fleets)
def test_no_change_carries_a_slot_whose_program_did_not_change(
    wanted: dict[str, VehicleConfig], had: dict[str, VehicleConfig]
) -> None:
    d = desired(wanted)
    r = recorded(had)
    for change in plan(d, r).changes:
        current = r.vehicles[change.vin].config if change.vin in r.vehicles else VehicleConfig()
        target = d.vehicles[change.vin].config if change.vin else None
        if change.address.endswith(".preconditioning"):
            for entry in programs_of(change):
                slot = entry["slot"]
                if entry["actionsType"] == "Set":
                    assert (current.preconditioning or {}).get(slot) != target.preconditioning[slot]  # type: ignore[union-attr]
                else:
                    assert slot in (current.preconditioning or {})
        if change.address.endswith(".charging.schedule"):
            for entry in change.request.body["charging"]["schedule"]["programs"]:
                slot = entry["slot"]
                wanted_program = (target.charging_schedule or {}).get(slot)  # type: ignore[union-attr]
                assert (current.charging_schedule or {}).get(slot) != wanted_program


def test_pending_action_of_the_same_type_holds_the_other_address_too() -> None:
    schedule = f"vehicle.{VIN}.charging.schedule"
    d = desired(
        {
            VIN: VehicleConfig(
                charging_schedule={1: charge(1)},
                charging_preferences=ChargingPreferences("Level2", "Full"),
                immobilized=True,
            )
        }
    )
    pending = PendingAction(schedule, "k1", "SentToVehicle", "rid-1", remote_type="ElectricBatteryChargingRequest")
    result = scheduled(d, recorded(pending={schedule: pending}))
    assert [c.address for c in result.going] == [f"vehicle.{VIN}.immobilization"]
    assert sorted(h.address for h in result.held) == [f"vehicle.{VIN}.charging.preferences", schedule]
