"""The plan is the whole truth: every change with its schedule, and apply never beyond what it listed."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import ALL_IN_ONE_GROUP
from support.runs import FLEET, SECRET, VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.commands.shell import Shell
from reconciler.core import waves
from reconciler.simulator.server import Settings, Simulator
from reconciler.state.backends import open_store

TEN = [f"VF3TRUTH{n:09d}" for n in range(10)]
WAVES = "rollout: {waves: [WAVE1, 100%], bake: BAKE, maxFailures: 0}\n"


@pytest.fixture
def ten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    settings = Settings(
        tmp_path / "sim10", fleet_id="0a123bc5d1e873066454b4d9", vins=TEN, latency=0.05, per_second=5000
    )
    with Simulator(settings) as simulator:
        for name, value in simulator.connection.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{tmp_path / 'state' / 'state.db'}")
        yield simulator


def fleet_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def rolled(tmp_path: Path, first: str = "1", bake: str = "0s") -> Path:
    return fleet_file(tmp_path, ALL_IN_ONE_GROUP + WAVES.replace("WAVE1", first).replace("BAKE", bake))


def plan_json(fleet: Path, capsys: pytest.CaptureFixture[str], *extra: str, shell: Shell | None = None) -> Any:
    capsys.readouterr()
    code = main(["plan", "-f", str(fleet), "--format", "json", "--detailed-exitcode", *extra], shell=shell)
    return code, json.loads(capsys.readouterr().out)


def sent_vins(sim: Simulator, since: int = 0) -> list[str]:
    vins = {v.vid: v.vin for v in sim.engine.vehicles.values()}
    return [vins[s.path.split("/vehicles/")[1].split("/")[0]] for s in remote_posts(sim, since)]


def canary() -> str:
    return waves.order(TEN)[0]


def test_a_saved_plan_lists_every_wave_and_apply_sends_those_and_nothing_else(
    ten: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, saved = rolled(tmp_path), tmp_path / "saved.json"
    code, doc = plan_json(fleet, capsys, "--out", str(saved))
    assert code == 2 and doc["format_version"] == 2
    schedules = Counter((c["schedule"]["kind"], c["schedule"].get("wave")) for c in doc["changes"] if c.get("vin"))
    assert schedules == {("now", 1): 1, ("wave", 2): 9}  # the reviewer sees all ten, and when each goes
    assert [c["vin"] for c in doc["changes"] if c["schedule"]["kind"] == "now" and c.get("vin")] == [canary()]
    assert doc["summary"]["now"] == 2 and doc["summary"]["later"] == 9  # the callback and the canary now
    assert main(["apply", str(saved)]) == 0
    listed = sorted(c["vin"] for c in doc["changes"] if c.get("vin"))
    assert sorted(sent_vins(ten)) == listed  # wave 1, then wave 2 after its bake: each change once
    assert sent_vins(ten)[0] == canary()
    mark = len(ten.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    assert mutations(ten, mark) == []


def test_a_later_wave_that_changed_since_it_was_approved_is_not_sent(
    ten: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, saved = rolled(tmp_path, bake="3s"), tmp_path / "saved.json"
    assert plan_json(fleet, capsys, "--out", str(saved))[0] == 2
    other = next(vin for vin in TEN if vin != canary())

    def drift_during_the_bake() -> None:
        deadline = time.monotonic() + 20
        while not any(a.final for a in ten.engine.actions.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        ten.engine.drift(other, 2, {"enabled": True, "start": "PT9H", "occurence": {"day": ["Sat"]}})
        ten.engine.drift(other, 1, {"enabled": True, "start": "PT6H", "occurence": {"day": ["Sat"]}})

    thread = threading.Thread(target=drift_during_the_bake)
    thread.start()
    code = main(["apply", str(saved)])
    thread.join()
    out = capsys.readouterr().out
    assert code == 3, out
    assert "is not what the approved plan listed" in out and "Run reconciler plan again" in out
    assert sent_vins(ten) == [canary()]  # wave 1 went; nothing of wave 2, which the reviewer did not see so


def test_the_prompt_shows_every_wave_and_yes_approves_what_it_showed(ten: Simulator, tmp_path: Path) -> None:
    fleet = rolled(tmp_path)
    out = io.StringIO()
    shell = Shell(os.environ, io.StringIO("yes\n"), out, io.StringIO(), interactive=True)
    assert main(["apply", "-f", str(fleet)], shell=shell) == 0
    shown = out.getvalue()
    assert "Now — wave 1 of 2:" in shown and "Wave 2 of 2, if wave 1 passes:" in shown
    assert shown.index("Apply these changes?") > shown.index("Wave 2 of 2")
    assert len(sent_vins(ten)) == 10


def test_a_closed_window_never_says_no_changes(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shut = 'windows: {timezone: UTC, deny: [{days: everyday, start: "00:00", end: "23:59"}]}\n'
    fleet.write_text(FLEET + shut)
    assert main(["plan", "-f", str(fleet)]) == 0
    text = capsys.readouterr().out
    assert "No changes" not in text and "When the change window opens" in text
    code, doc = plan_json(fleet, capsys)
    assert code == 2
    held = [c for c in doc["changes"] if c["schedule"]["kind"] == "window"]
    assert held and all(c["schedule"]["at"] for c in held)
    assert {c["address"] for c in doc["changes"] if c["schedule"]["kind"] == "now"} == {
        "callback.ops",  # the creation an urgent change needs
        f"vehicle.{VINS[1]}.immobilization",
    }
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 3
    assert [p.body.get("immobilization") for p in remote_posts(sim)] == [{"activate": True}]


def test_a_saved_plan_applied_after_its_window_closed_is_refused_saying_so(
    sim: Simulator, fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    office = 'windows: {timezone: Europe/Paris, allow: [{days: weekdays, start: "09:00", end: "17:00"}]}\n'
    fleet.write_text(FLEET.replace("immobilized: true", "stolen: false") + office)
    inside = Shell(
        os.environ, io.StringIO(), io.StringIO(), io.StringIO(), clock=lambda: at("2026-11-25T10:00:00+01:00")
    )
    after = Shell(
        os.environ, io.StringIO(), io.StringIO(), err := io.StringIO(), clock=lambda: at("2026-11-25T18:00+01:00")
    )
    saved = tmp_path / "saved.json"
    assert main(["plan", "-f", str(fleet), "--out", str(saved)], shell=inside) == 0
    assert main(["apply", str(saved)], shell=after) == 3
    message = err.getvalue()
    assert "the change window closed at 2026-11-25T16:00:00+00:00" in message
    assert "opens again 2026-11-26 09:00 Europe/Paris" in message
    assert remote_posts(sim) == []


def test_a_targeted_apply_sends_only_open_waves_and_never_moves_the_rollout(
    ten: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = rolled(tmp_path)
    later = waves.order(TEN)[5]  # in wave 2 of the whole fleet's rollout
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--target", f"vehicle.{later}"]) == 0
    out = capsys.readouterr().out
    assert sent_vins(ten) == [] and "wave 2 of 2" in out
    assert main(["apply", "-f", str(fleet), "--auto-approve", "--target", f"vehicle.{canary()}"]) == 0
    assert sent_vins(ten) == [canary()]  # wave 1 is open: its targeted change goes
    store = open_store(os.environ["RECONCILER_STATE"])
    try:
        assert store.read().rollout is None  # neither targeted run began, advanced or completed it
    finally:
        store.close()
    # The next full apply cuts its waves from the whole fleet's changes: its canary fails, the rollout halts.
    remaining = [vin for vin in waves.order(TEN) if vin != canary()]
    ten.engine.configure_vehicle(remaining[0], fail_cause="VehicleError")
    mark = len(ten.served)
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 5
    assert sent_vins(ten, mark) == [remaining[0]]


def test_a_change_that_failed_in_one_wave_is_not_sent_again_by_the_next(
    ten: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An immobilization is urgent: it goes with the first wave, fails, and the second wave must not retry it.
    stubborn = waves.order(TEN)[3]
    text = ALL_IN_ONE_GROUP + WAVES.replace("WAVE1", "1").replace("BAKE", "0s").replace(
        "maxFailures: 0", "maxFailures: 1"
    )
    fleet = fleet_file(tmp_path, text + f"vehicles:\n  {stubborn}: {{immobilized: true}}\n")
    ten.engine.configure_vehicle(stubborn, fail_cause="VehicleError")
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 4
    posted = Counter(sent_vins(ten))
    assert posted[stubborn] == 2 and set(posted.values()) <= {1, 2}  # its air programs and immobilization, once each
    assert "VehicleError" in capsys.readouterr().out


def test_a_spent_quota_in_the_canary_wave_keeps_it_open_and_sends_nothing_more(
    ten: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = rolled(tmp_path, first="2")
    ten.faults.posts_over_quota = True
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 4
    out = capsys.readouterr().out
    assert "the API's quota is spent" in out
    assert sent_vins(ten) == []
    posted = [s for s in ten.served if s.method == "POST" and s.path.endswith("/remotes")]
    assert 1 <= len(posted) <= 2  # the first refusal stops all sending at once: wave 2 is never tried
    store = open_store(os.environ["RECONCILER_STATE"])
    try:
        rollout = store.read().rollout
        assert rollout is not None and rollout.wave == 0 and not rollout.wave_done_at  # not judged: open
    finally:
        store.close()
    ten.faults.posts_over_quota = False
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 0
    assert sorted(sent_vins(ten)) == sorted(TEN)


def test_the_summary_counts_what_a_reviewer_must_not_miss(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    extra = '  desk:\n    webhook: {target: "https://hooks.example.com/desk"}\n    remoteTypes: [Horn]\n'
    fleet.write_text(FLEET.replace("profiles:\n", extra + "profiles:\n"))
    assert apply(fleet) == 0
    edited = (
        FLEET.replace('      - {slot: 2, start: "17:00", days: weekdays}\n', "")
        .replace("VF3ABCDE0FG123456: {profile: commuter}", "VF3ABCDE0FG123456: {profile: commuter, stolen: true}")
        .replace("immobilized: true", "immobilized: false")
    )
    fleet.write_text(edited)
    code, doc = plan_json(fleet, capsys)
    assert code == 2
    summary = doc["summary"]
    assert (summary["slots_deleted"], summary["callbacks_deleted"]) == (3, 1)
    assert (summary["release"], summary["stolen_set"], summary["immobilize"], summary["stolen_cleared"]) == (1, 1, 0, 0)
    assert main(["plan", "-f", str(fleet)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-3:]
    assert any(
        "Of note: it deletes 3 program slots, releases 1 immobilized vehicle, declares 1 vehicle stolen, "
        "deletes 1 callback." in line
        for line in last
    ), last


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# For any fleet and brakes: what apply sends is a subset of what the plan listed to go.

PARTS_OF_BODY = {
    "preconditioning": "preconditioning",
    "immobilization": "immobilization",
    "stolen": "stolen",
}
_examples = iter(range(1, 10**6))


def sent_addresses(sim: Simulator, since: int) -> list[str]:
    """Each remote action posted since ``since``, as the address it changes (vehicle.VIN.part)."""
    vins = {v.vid: v.vin for v in sim.engine.vehicles.values()}
    sent = []
    for served in remote_posts(sim, since):
        vin = vins[served.path.split("/vehicles/")[1].split("/")[0]]
        [part] = [PARTS_OF_BODY[key] for key in served.body if key in PARTS_OF_BODY]
        sent.append(f"vehicle.{vin}.{part}")
    return sent


def may_go(document: dict[str, Any]) -> set[str]:
    """The addresses a plan lets apply send: the ones going now and the later waves' (held ones wait)."""
    return {c["address"] for c in document["changes"] if c["schedule"]["kind"] in ("now", "wave")}


FLEETS = st.fixed_dictionaries(
    {
        "vehicles": st.lists(
            st.tuples(st.integers(0, 23), st.sampled_from(["", "immobilized: true", "stolen: true"])),
            min_size=1,
            max_size=6,
        ),
        "waves": st.sampled_from(["", "[1, 100%]", "[50%, 100%]", "[1, 2, 100%]"]),
        "max_failures": st.sampled_from([0, 1, "50%"]),
        "window": st.sampled_from(["", "open", "closed"]),
        "ignore_windows": st.booleans(),
        "failing": st.sets(st.integers(0, 5), max_size=2),
        "targets": st.sets(st.integers(0, 5), max_size=2),
        "saved": st.booleans(),
    }
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=FLEETS)
def test_for_any_fleet_and_brakes_apply_sends_only_what_the_plan_listed(
    ten: Simulator, tmp_path: Path, example: dict[str, Any]
) -> None:
    number = next(_examples)
    folder = tmp_path / f"example{number}"
    folder.mkdir()
    vins = [f"VF3PRP{number:05d}{n:06d}" for n in range(len(example["vehicles"]))]
    for n, vin in enumerate(vins):
        ten.engine.add_vehicle(vin)
        if n in example["failing"]:
            ten.engine.configure_vehicle(vin, fail_cause="VehicleError")
    text = (
        ALL_IN_ONE_GROUP.split("profiles:")[0]
        .replace("ops:", f"ops{number}:")
        .replace("Immobilization]", "Immobilization, Stolen]")
    )
    text += "vehicles:\n"
    for vin, (hour, flag) in zip(vins, example["vehicles"], strict=True):
        text += f'  {vin}:\n    preconditioning: [{{slot: 1, start: "{hour:02d}:15", days: weekdays}}]\n'
        text += f"    {flag}\n" if flag else ""
    if example["waves"]:
        text += f"rollout: {{waves: {example['waves']}, bake: 0s, maxFailures: {example['max_failures']!r}}}\n"
    if example["window"]:
        days = "weekdays" if example["window"] == "open" else "weekend"
        text += f'windows: {{timezone: UTC, allow: [{{days: {days}, start: "09:00", end: "17:00"}}]}}\n'
    fleet = fleet_file(folder, text)
    env = {**os.environ, "RECONCILER_STATE": f"sqlite:///{folder / 'state.db'}"}
    targets = [arg for n in sorted(example["targets"]) if n < len(vins) for arg in ("--target", f"vehicle.{vins[n]}")]
    brakes = ["--ignore-windows"] if example["ignore_windows"] else []

    def run(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        shell = Shell(env, io.StringIO(), out, err, clock=lambda: at("2026-11-25T12:00Z"))
        code = main(list(argv), shell=shell)
        return code, out.getvalue() if code in (0, 2) else err.getvalue() + out.getvalue()

    for _ in range(2):  # a first apply, then one that finds what the first left (halts, failures, waves)
        saved = folder / "saved.json"
        code, out = run("plan", "-f", str(fleet), "--format", "json", "--out", str(saved), *targets, *brakes)
        assert code == 0, out  # without --detailed-exitcode
        document = json.loads(out)
        mark = len(ten.served)
        if example["saved"]:
            code, out = run("apply", str(saved), *brakes)
        else:
            code, out = run("apply", "-f", str(fleet), "--auto-approve", "--timeout", "30", *targets, *brakes)
        sent = sent_addresses(ten, mark)
        assert code in (0, 3, 4, 5), out
        assert len(sent) == len(set(sent)), sent  # never twice
        assert set(sent) <= may_go(document), (sent, document["changes"])
