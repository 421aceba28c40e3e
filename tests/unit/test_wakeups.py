"""The wake-up budget: counting, batching per vehicle, holding, the reserve, the simulator's sleep model."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.planning import VIN, air, desired, recorded
from support.runs import FLEET, SECRET

from reconciler.core import rollout
from reconciler.core.model import VehicleConfig
from reconciler.core.wakeups import WakeupPolicy, WakeupUse, asleep, month_of, next_month, spent_reason
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader

NOV = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


POLICY = WakeupPolicy(per_month=20, reserve=5, awake_for=180)


def test_the_budget_is_the_allowance_less_the_reserve_and_resumes_next_month() -> None:
    assert POLICY.budget == 15
    assert spent_reason(POLICY, WakeupUse("2026-11", 14), NOV) == ""
    assert spent_reason(POLICY, WakeupUse("2026-11", 15), NOV) == (
        "wake-up budget spent (15/15 in 2026-11; resumes 2026-12-01)"
    )
    assert spent_reason(POLICY, WakeupUse("2026-10", 15), NOV) == ""  # last month's count is over
    assert next_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)).isoformat() == "2027-01-01"
    assert month_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-11"  # months are UTC


def test_the_apis_refusal_spends_the_month_whatever_the_count_and_without_a_policy() -> None:
    spent = WakeupUse("2026-11", 2, spent=True)
    assert "the API refuses more wake-ups in 2026-11; resumes 2026-12-01" in spent_reason(POLICY, spent, NOV)
    assert spent_reason(None, spent, NOV)
    assert spent_reason(None, WakeupUse("2026-11", 99), NOV) == ""  # no wakeups: nothing held on a count


def test_a_vehicle_is_asleep_when_not_contacted_within_awake_for() -> None:
    assert asleep(None, NOV, 180)
    assert asleep(WakeupUse("2026-11"), NOV, 180)  # never contacted
    assert not asleep(WakeupUse("2026-11", last_contact="2026-11-26T08:58:00+00:00"), NOV, 180)
    assert asleep(WakeupUse("2026-11", last_contact="2026-11-26T08:56:59+00:00"), NOV, 180)


@pytest.mark.parametrize(
    ("wakeups", "message"),
    [
        ("{perMonth: 20, reserve: 20}", "reserve"),
        ("{perMonth: 20.5}", "whole number"),
        ("{perMonth: 0}", "perMonth"),
        ("{perMonth: 20, reserve: -1}", "reserve"),
        ("{perMonth: 20, awakeFor: soon}", "such as 30s"),
        ("{perMonth: 20, awakeFor: 100000000000000000000}", "(the most is 31622400)"),
        ("{perMonth: 20, awakeFor: 400d}", "longer than a year"),
        ("{perMonth: 20, awakeFor: ''}", "expected form"),
        ("{perMonth: null}", "expected a whole number"),
        ("{perMonth: 20, burst: 3}", "burst"),
        ("{reserve: 5}", "perMonth"),
    ],
)
def test_a_bad_wakeups_block_is_refused_with_its_place(tmp_path: Path, wakeups: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + f"wakeups: {wakeups}\n")
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {"HOOK_TOKEN": SECRET})
    text = str(caught.value)
    assert f"{path.name}:{FLEET.count(chr(10)) + 1}:" in text and message in text


def test_the_wakeups_block_is_read_and_does_not_change_the_config_hash(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    before = loader.read(path, {"HOOK_TOKEN": SECRET})
    path.write_text(FLEET + "wakeups: {perMonth: 20, reserve: 5, awakeFor: 3m}\n")
    after = loader.read(path, {"HOOK_TOKEN": SECRET})
    assert after.wakeups == WakeupPolicy(20, 5, 180.0)
    assert before.wakeups is None and before.config_hash == after.config_hash


def test_a_spent_vehicle_keeps_its_non_urgent_changes_and_sends_urgent_ones() -> None:
    want = desired({VIN: VehicleConfig(preconditioning={1: air(1)}, immobilized=True)})
    want = replace(want, wakeups=POLICY)
    spent = recorded({VIN: VehicleConfig()}, wakeups={VIN: WakeupUse("2026-11", 15)})
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    result = rollout.schedule(want, spent, None, [], now).plan
    assert [c.address for c in result.going] == [f"vehicle.{VIN}.immobilization"]
    assert [(h.address, h.reason, h.kind) for h in result.held] == [
        (
            f"vehicle.{VIN}.preconditioning",
            "wake-up budget spent (15/15 in 2026-11; resumes 2026-12-01)",
            "budget",
        )
    ]
    [waiting] = [c for c in result.changes if not c.schedule.now]  # still a change, with when it can go
    assert waiting.schedule.at == "2026-12-01T00:00:00+00:00"
    fresh = recorded({VIN: VehicleConfig()}, wakeups={VIN: WakeupUse("2026-11", 14)})
    assert len(rollout.schedule(want, fresh, None, [], now).plan.going) == 2
