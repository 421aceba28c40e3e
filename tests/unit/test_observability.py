"""Seeing it run: Prometheus metrics from watch and webhook, notifications, explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.runs import FLEET, SECRET, VINS

from reconciler.core.changes import Drift
from reconciler.core.outcomes import Outcome
from reconciler.core.vocabulary import Result, When
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader
from reconciler.run import notify


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{url: "http://hooks.example.com/x", on: [failed]}', "plain http://"),
        ('{url: "https://hooks.example.com/x", on: [fail]}', "did you mean"),
        ('{url: "https://hooks.example.com/x", on: []}', "too small"),
        ('{url: "https://hooks.example.com/x"}', "missing required key 'on'"),
        ('{url: "https://hooks.example.com/x", on: [failed], headers: {X-Token: "${EMPTY}"}}', "EMPTY is empty"),
        ('{url: "${NOTIFY_URL}", on: [failed]}', "NOTIFY_URL is not set"),
        ('{url: "not a url", on: [failed]}', "expected form"),
        ("{url: 5, on: [failed]}", "expected a string"),
        ('{url: "https://hooks.example.com/' + "a" * 3000 + '", on: [failed]}', "too large"),
        ('{url: "https://hooks.example.com/x", on: [failed, failed]}', "listed twice"),
        ('{url: "https://hooks.example.com/x", on: [failed], headers: {"X Token": "t"}}', "header name"),
        ('{url: "https://hooks.example.com/x", on: [failed], headers: {X-Token: "a\\r\\nX-Evil: 1"}}', "one line"),
        ('{url: "https://hooks.example.com/x", on: [failed], headers: {X-Token: "${TWO_LINES}"}}', "line break"),
        ('{url: "https://hooks.example.com/x", on: [failed], headers: {X-Token: 7}}', "expected a string"),
    ],
)
def test_a_bad_notify_entry_is_refused_with_its_place(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + f"notify:\n  - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {"HOOK_TOKEN": SECRET, "EMPTY": "", "TWO_LINES": "t\nX-Evil: 1"})
    assert f"{path}:{FLEET.count(chr(10)) + 2}:" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(
    ("notify", "message", "line"),
    [
        ("notify: {url: x}\n", "expected a list", 1),
        ("notify: null\n", "expected a list", 1),
        (
            "notify:\n" + "".join(f'  - {{url: "https://h.example.com/{n}", on: [failed]}}\n' for n in range(21)),
            "at most 20",
            2,  # where the list starts
        ),
    ],
)
def test_a_notify_that_is_not_a_short_list_is_refused(tmp_path: Path, notify: str, message: str, line: int) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + notify)
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {"HOOK_TOKEN": SECRET})
    assert f"{path}:{FLEET.count(chr(10)) + line}:" in str(caught.value) and message in str(caught.value)


def test_a_secret_notify_url_is_shown_by_its_variable_and_changes_no_rollout(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    before = loader.read(path, {"HOOK_TOKEN": SECRET})
    path.write_text(FLEET + 'notify: [{url: "${SLACK_URL}", on: [failed, halted]}]\n')
    after = loader.read(path, {"HOOK_TOKEN": SECRET, "SLACK_URL": "https://hooks.slack.test/T0/B0/abcdef"})
    assert after.notify[0].shown == "${SLACK_URL}" and after.notify[0].on == ("failed", "halted")
    assert before.config_hash == after.config_hash
    assert "abcdef" not in repr(after.notify)


def test_events_name_each_kind_and_a_long_list_is_counted() -> None:
    outcomes = [
        Outcome(f"vehicle.{VINS[0]}.preconditioning", Result.FAILED, "VehicleConnectionTimeout (r1)"),
        Outcome(f"vehicle.{VINS[1]}.preconditioning", Result.HELD, "wake-up budget spent (15/15 …)", kind=When.BUDGET),
        *(Outcome(f"vehicle.V{n:016d}.preconditioning", Result.WAITS, "wave 2", kind=When.WAVE) for n in range(150)),
    ]
    drift = [Drift(f"vehicle.{VINS[2]}.preconditioning", "slot 1.start", "07:30", "09:00")]
    found = notify.events(outcomes, drift, "wave 1 of 3: 2 of 5 vehicles failed")
    assert [e.kind for e in found[:4]] == ["halted", "drift", "failed", "budget"]
    body = notify.document("F", "r", 5, found)
    assert sum(1 for e in body["events"] if e["kind"] == "held") == notify.MAX_EVENTS
    assert body["omitted"] == {"held": 50}
    assert body["events"][1]["detail"] == "slot 1.start: recorded 07:30, now 09:00"


def test_the_default_notification_deadline_is_ten_seconds(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + 'notify: [{url: "https://hooks.example.com/n", on: [failed]}]\n')
    assert loader.read(path, {"HOOK_TOKEN": SECRET}).notify[0].timeout == 10.0


@pytest.mark.parametrize(
    ("timeout", "message"),
    [("0s", "not from 1s to 5m"), ("1h", "not from 1s to 5m"), ("soon", "expected form"), ("-5", "expected form")],
)
def test_a_bad_notification_deadline_is_refused_with_its_place(tmp_path: Path, timeout: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + f'notify: [{{url: "https://hooks.example.com/n", on: [failed], timeout: "{timeout}"}}]\n')
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {"HOOK_TOKEN": SECRET})
    assert f"{path}:{FLEET.count(chr(10)) + 1}:" in str(caught.value) and message in str(caught.value)
