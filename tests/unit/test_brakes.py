"""Brakes: rollout waves with a failure budget, change windows, a cap on sends per minute."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import chain

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.planning import VIN, VIN2, air, desired, recorded

from reconciler.core import rollout, waves, windows
from reconciler.core.durations import FormatError, Share, seconds
from reconciler.core.model import Rollout, RolloutPolicy, VehicleConfig, Window, Windows
from reconciler.core.planner import plan
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader
from reconciler.render import text
from reconciler.run.sendrate import SendRate


@pytest.mark.parametrize(
    ("shares", "count", "expected"),
    [
        (["5%", "25%", "100%"], 40, (2, 10, 40)),
        (["5%", "25%", "100%"], 100, (5, 25, 100)),
        (["5%", "25%", "100%"], 3, (1, 3)),  # a wave that adds no vehicle is no wave
        (["5%", "25%", "100%"], 1, (1,)),
        (["10%", "100%"], 11, (2, 11)),  # rounded up
        ([20, 200, "100%"], 1000, (20, 200, 1000)),
        ([20, 200, "100%"], 50, (20, 50)),  # counts capped at the fleet
        ([1, "100%"], 7, (1, 7)),
        (["100%"], 5, (5,)),
        (["5%", "25%", "100%"], 0, ()),
    ],
)
def test_waves_cover_rounded_up_shares_of_the_vehicles_with_changes(
    shares: list[str | int], count: int, expected: tuple[int, ...]
) -> None:
    assert waves.ends([Share.parse(s) for s in shares], count) == expected


@pytest.mark.parametrize(
    ("max_failures", "size", "allowed"),
    [("10%", 2, 1), ("10%", 40, 4), ("10%", 25, 2), ("0%", 10, 1), (0, 10, 0), (3, 10, 3), (None, 7, 7)],
)
def test_the_failure_budget_is_a_share_of_the_wave_and_at_least_one_vehicle(
    max_failures: str | int | None, size: int, allowed: int
) -> None:
    share = Share.parse(max_failures) if max_failures is not None else None
    assert waves.budget(share, size) == allowed


@given(st.lists(st.text("ABCDEFGH0123456789", min_size=17, max_size=17), max_size=60, unique=True), st.randoms())
def test_waves_are_prefixes_of_one_order_every_vehicle_in_exactly_one(vins: list[str], rng: object) -> None:
    ordered = waves.order(vins)
    shuffled = list(vins)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert waves.order(shuffled) == ordered  # the file's order does not matter
    cut = waves.ends([Share.parse("5%"), Share.parse("25%"), Share.parse("100%")], len(ordered))
    members = [waves.members(ordered, cut, k) for k in range(len(cut))]
    assert list(chain.from_iterable(members)) == ordered
    assert all(ordered[: cut[k]] == list(chain.from_iterable(members[: k + 1])) for k in range(len(cut)))


def test_durations_and_shares_are_read_or_refused() -> None:
    assert [seconds(t) for t in ("30s", "10m", "1h", "2d", 90)] == [30, 600, 3600, 172800, 90]
    with pytest.raises(FormatError):
        seconds("10 minutes")
    with pytest.raises(FormatError):
        Share.parse("120%")


PARIS = "Europe/Paris"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "open", "edge"),
    [
        ("2026-11-25T10:00:00+01:00", True, "2026-11-25T12:00:00+01:00"),  # Wed, until lunch is denied
        ("2026-11-25T12:30:00+01:00", False, "2026-11-25T13:00:00+01:00"),  # in the deny window
        ("2026-11-25T18:00:00+01:00", False, "2026-11-26T09:00:00+01:00"),  # after hours: tomorrow
        ("2026-11-27T18:00:00+01:00", False, "2026-11-30T09:00:00+01:00"),  # Friday evening: Monday
    ],
)
def test_window_open_or_when_it_opens(now: str, open: bool, edge: str) -> None:
    office = Windows(
        PARIS,
        allow=(Window(("Mon", "Tue", "Wed", "Thu", "Fri"), 540, 1020),),
        deny=(Window(tuple(windows._DAY_NAMES), 720, 780),),
    )
    state = windows.state(office, at(now))
    assert state.open is open
    assert (state.closes_at if open else state.opens_at) == at(edge)


def test_a_window_ending_before_it_starts_crosses_midnight() -> None:
    night = Windows(PARIS, allow=(Window(("Fri",), 22 * 60, 6 * 60),))
    assert windows.state(night, at("2026-11-28T03:00:00+01:00")).open  # Saturday 03:00: Friday's night
    assert not windows.state(night, at("2026-11-28T07:00:00+01:00")).open
    assert windows.state(night, at("2026-11-28T07:00:00+01:00")).opens_at == at("2026-12-04T22:00:00+01:00")


def test_windows_keep_wall_clock_times_across_dst_changes() -> None:
    early = Windows(PARIS, allow=(Window(("Sun",), 1 * 60, 4 * 60),))
    # 2026-03-29: clocks go 02:00 -> 03:00 in Paris; the window is 01:00-04:00 local, three hours of wall clock
    assert windows.state(early, at("2026-03-29T00:59:00+01:00")).opens_at == at("2026-03-29T01:00:00+01:00")
    assert windows.state(early, at("2026-03-29T03:30:00+02:00")).open
    assert windows.state(early, at("2026-03-29T03:30:00+02:00")).closes_at == at("2026-03-29T04:00:00+02:00")
    # 2026-10-25: 03:00 -> 02:00; the window closes at 04:00 winter time
    assert windows.state(early, at("2026-10-25T03:30:00+01:00")).closes_at == at("2026-10-25T04:00:00+01:00")
    gap = Windows(PARIS, allow=(Window(("Sun",), 2 * 60 + 30, 5 * 60),))  # 02:30 does not exist on 2026-03-29
    assert windows.state(gap, at("2026-03-29T01:00:00+01:00")).opens_at == at("2026-03-29T03:30:00+02:00")


POLICY = RolloutPolicy((Share.parse("50%"), Share.parse("100%")), bake=0, max_failures=Share.parse(0))


VINS4 = ["VF3ABCDE0FG100001", "VF3ABCDE0FG100002", "VF3ABCDE0FG100003", "VF3ABCDE0FG100004"]


def fleet_with_rollout(**extra: object) -> object:
    config = {vin: VehicleConfig(preconditioning={1: air(1)}) for vin in VINS4}
    return replace(desired(config), rollout=POLICY, config_hash="H1", **extra)


def test_a_rollout_sends_its_first_wave_and_holds_the_rest() -> None:
    d = fleet_with_rollout()
    state = recorded(callbacks=())
    staged = rollout.stage(plan(d, state), d, state, [], datetime.now(UTC))  # type: ignore[arg-type]
    first = set(waves.order(VINS4)[:2])
    assert {c.vin for c in staged.plan.going if c.vin} == first
    assert [c.address for c in staged.plan.going if not c.vin] == ["callback.ops"]  # callbacks before any wave
    assert {h.kind for h in staged.plan.held} == {"wave"} and len(staged.plan.held) == 2
    # Every change is in the plan, with its schedule: the second wave's too.
    assert len(staged.plan.changes) == 5
    later = [c for c in staged.plan.changes if not c.schedule.now]
    assert {c.vin for c in later} == set(VINS4) - first and {c.schedule.wave for c in later} == {2}
    assert {c.schedule.wave for c in staged.plan.going if c.vin} == {1}
    assert staged.rollout is not None and staged.rollout.wave_started_at
    assert staged.plan.rollout is not None and (staged.plan.rollout.wave, staged.plan.rollout.waves) == (1, 2)


def test_a_wave_over_budget_halts_and_a_halted_rollout_sends_only_urgent_changes() -> None:
    d = fleet_with_rollout()
    now = datetime.now(UTC)
    started = Rollout("r1", "H1", tuple(waves.order(VINS4)), (2, 4), wave_started_at=now.isoformat())
    canary = started.vins[0]
    halted = rollout.progress(
        started, waves.Judgement({canary: "VehicleError"}, frozenset()), POLICY, now, advance=True
    )
    assert halted.state == "halted" and canary in halted.halt and "1 of 2 vehicles failed" in halted.halt
    with_flag = replace(
        d,
        vehicles={
            **d.vehicles,
            VIN: replace(
                d.vehicles[VINS4[0]],
                vin=VIN,
                config=replace(d.vehicles[VINS4[0]].config, preconditioning=None, immobilized=True),
            ),
        },
    )
    state = replace(recorded(), rollout=halted)
    staged = rollout.stage(plan(with_flag, state), with_flag, state, [], now)  # type: ignore[arg-type]
    assert staged.halted and [c.address for c in staged.plan.going] == [f"vehicle.{VIN}.immobilization"]
    assert {c.schedule.kind for c in staged.plan.changes if not c.schedule.now} == {"halted"}
    resumed = rollout.stage(plan(d, state), d, state, [], now, continue_rollout=True)  # type: ignore[arg-type]
    assert not resumed.halted and {c.vin for c in resumed.plan.going} == set(started.vins[:2])


def test_a_done_wave_waits_for_its_bake_then_the_next_goes() -> None:
    policy = RolloutPolicy(POLICY.waves, bake=600, max_failures=None)
    now = datetime.now(UTC)
    started = Rollout("r1", "H1", tuple(waves.order(VINS4)), (2, 4), wave_started_at=now.isoformat())
    done = rollout.progress(started, waves.Judgement({}, frozenset()), policy, now, advance=True)
    assert (done.wave, done.wave_done_at) == (0, now.isoformat(timespec="seconds"))
    assert (
        rollout.progress(done, waves.Judgement({}, frozenset()), policy, now + timedelta(minutes=9), advance=True).wave
        == 0
    )
    assert (
        rollout.progress(done, waves.Judgement({}, frozenset()), policy, now + timedelta(minutes=10), advance=True).wave
        == 1
    )
    unknown = rollout.progress(started, waves.Judgement({}, frozenset({started.vins[0]})), policy, now, advance=True)
    assert unknown == started  # pending is not success: the wave is not done


def test_a_closed_window_lets_only_urgent_changes_through() -> None:
    shut = Windows("UTC", deny=(Window(tuple(windows._DAY_NAMES), 0, 23 * 60 + 59),))
    d = replace(
        desired({VIN: VehicleConfig(preconditioning={1: air(1)}), VIN2: VehicleConfig(immobilized=True)}), windows=shut
    )
    state = recorded()
    staged = rollout.stage(plan(d, state), d, state, [], datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert [c.address for c in staged.plan.going] == [f"vehicle.{VIN2}.immobilization"]
    assert staged.window_closed and staged.plan.window is not None and not staged.plan.window.open
    assert {h.kind for h in staged.plan.held} == {"window"}
    [waiting] = [c for c in staged.plan.changes if not c.schedule.now]
    assert waiting.schedule.kind == "window" and waiting.schedule.at  # when it opens
    ignored = rollout.stage(plan(d, state), d, state, [], datetime(2026, 11, 26, 12, tzinfo=UTC), ignore_windows=True)
    assert len(ignored.plan.going) == 2


def test_send_rate_spaces_the_actions() -> None:
    clock = [0.0]

    def pause(seconds: float) -> bool:
        clock[0] += seconds
        return False

    rate = SendRate(120, pause, clock=lambda: clock[0])  # two a second
    for _ in range(6):
        rate(None)  # type: ignore[arg-type]
    assert clock[0] == pytest.approx(2.0)  # a second's worth at once, then one every half second


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rollout: {waves: [25%, 5%, 100%]}\n", "rollout.waves[1]: wave 2 (5%) adds no vehicle"),
        ("rollout: {waves: [5%, 25%]}\n", "rollout.waves[1]: the last wave must be 100%"),
        ("rollout: {waves: [5%, 100%], bake: soon}\n", "rollout.bake: 'soon' is not in the expected form"),
        ("rollout: {waves: [5 %, 100%]}\n", "rollout.waves[0]"),
        ("rollout: {waves: [5%, 100%], maxPerMinute: 2.5}\n", "rollout.maxPerMinute: expected a whole number"),
        ("rollout: {waves: [5%, 100%], maxPerMinute: 10000000000}\n", "rollout.maxPerMinute: 10000000000 is too large"),
        ("rollout: {waves: [" + "9" * 400 + ", 100%]}\n", "rollout.waves[0]: 999"),
        ("rollout: {waves: [5%, 100%], maxFailures: " + "9" * 400 + "}\n", "(the most is 10000000)"),
        ("rollout: {waves: [5%, 100%], bake: 400d}\n", "rollout.bake: '400d' is longer than a year"),
        ("rollout: {waves: [5%, 150%, 100%]}\n", "fleet.yaml:12:23: rollout.waves[1]: '150%' is more than 100%"),
        ("rollout: {waves: [5%, 100.00000000001%]}\n", "rollout.waves[1]: '100.00000000001%' is more than 100%"),
        ("rollout: {waves: [5%, 100%], maxFailures: 150%}\n", "rollout.maxFailures: '150%' is more than 100%"),
        ("rollout: {waves: [5%, 100%], maxFailures: 100.1%}\n", "fleet.yaml:12:43: rollout.maxFailures: '100.1%'"),
        ("rollout: {waves: [5%, 100%], bake: " + "9" * 30 + "}\n", "(the most is 31622400)"),
        (
            "windows: {timezone: Europe/Pariss, allow: [{days: weekdays, start: '09:00', end: '17:00'}]}\n",
            "windows.timezone: 'Europe/Pariss' is not an IANA time zone",
        ),
        ("windows: {timezone: UTC}\n", "windows: no allow and no deny window"),
        (
            "windows: {timezone: UTC, allow: [{days: weekdays, start: '09:00', end: '09:00'}]}\n",
            "windows.allow[0]: the window ends when it starts",
        ),
    ],
)
def test_brake_mistakes_are_located(text: str, expected: str) -> None:
    from support.paths import MINIMAL

    with pytest.raises(ConfigError) as caught:
        loader.parse(MINIMAL + text, "fleet.yaml", {})
    found = [str(p) for p in caught.value.problems]
    assert any(expected in p for p in found), found


def test_brakes_do_not_change_the_configuration_hash() -> None:
    from support.paths import MINIMAL

    rolled = MINIMAL + "rollout: {waves: [5%, 100%]}\n"
    plain = loader.parse(rolled, "f", {})
    braked = loader.parse(rolled.replace("[5%, 100%]}", "[1, 100%], bake: 1h}") + "wakeups: {perMonth: 9}\n", "f", {})
    edited = loader.parse(rolled.replace('"07:30"', '"08:00"'), "f", {})
    assert plain.config_hash == braked.config_hash != edited.config_hash
    assert loader.parse(MINIMAL, "f", {}).config_hash == ""  # no rollout: nothing hashes the file


def test_a_closed_window_holds_the_wave_under_way_and_later_waves_wait_for_theirs() -> None:
    shut = Windows("UTC", deny=(Window(tuple(windows._DAY_NAMES), 0, 23 * 60 + 59),))
    d = replace(fleet_with_rollout(), windows=shut)  # type: ignore[type-var]
    state = recorded(callbacks=())
    staged = rollout.stage(plan(d, state), d, state, [], datetime(2026, 11, 26, 12, tzinfo=UTC))  # type: ignore[arg-type]
    kinds = {(c.schedule.kind, c.schedule.wave) for c in staged.plan.changes if c.vin}
    assert kinds == {("window", 1), ("wave", 2)}  # nothing lost: the wave under way waits for the window
    assert not staged.plan.going
    text_out = io.StringIO()
    text.write(staged.plan, text_out)
    shown = text_out.getvalue()
    assert "— wave 1 of 2:" in shown and "Wave 2 of 2" in shown
    assert shown.index("— wave 1 of 2:") < shown.index("Wave 2 of 2")
    assert "Apply sends nothing now" in shown and "No changes" not in shown


def test_time_zones_come_from_tzdata_where_the_system_has_none() -> None:
    import zoneinfo

    from support.paths import MINIMAL

    office = 'windows: {timezone: Europe/Paris, allow: [{days: weekdays, start: "09:00", end: "17:00"}]}\n'
    zoneinfo.reset_tzpath(to=[])  # as in a slim container: no /usr/share/zoneinfo
    zoneinfo.ZoneInfo.clear_cache()
    try:
        desired = loader.parse(MINIMAL + office, "fleet.yaml", {})
        assert desired.windows is not None
        state = windows.state(desired.windows, datetime(2026, 7, 1, 8, tzinfo=UTC))  # 10:00 in Paris (CEST)
        assert state.open
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
