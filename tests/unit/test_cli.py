"""The command line, end to end in a temp dir: exit codes, formats, files written or not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.paths import EXAMPLE, MINIMAL, files_under, write

from reconciler.cli import main


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(EXAMPLE)]) == 0
    assert "is valid: 3 callbacks, 6 vehicles" in capsys.readouterr().out


def test_bad_file_exits_1_with_located_errors_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, MINIMAL + "    immobilized: yes\n  VF3ABCDE0FG123456: {}\n")
    before = files_under(tmp_path)
    for argv in (["validate"], ["plan", "--out", "p.json"], ["plan", "--format", "json"]):
        assert main([*argv, "-f", str(fleet)]) == 1
        err = capsys.readouterr().err
        assert "fleet.yaml:12:18: vehicles.VF3ABCDE0FG123456.immobilized" in err
        assert "fleet.yaml:13:3: duplicate key" in err
        assert "Traceback" not in err
    assert files_under(tmp_path) == before


@pytest.mark.parametrize(("value", "coloured"), [(None, True), ("", True), ("1", False)])
def test_no_color_set_to_something_turns_colour_off_and_empty_does_not(value: str | None, coloured: bool) -> None:
    from reconciler.commands.shell import _wants_color as _color

    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w") as terminal:
            env = {} if value is None else {"NO_COLOR": value}
            assert _color(terminal, env) is coloured
    finally:
        os.close(leader)


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({"FORCE_COLOR": "1"}, True),  # a CI log that renders colour, from a pipe
        ({"FORCE_COLOR": "0"}, False),
        ({"FORCE_COLOR": "false"}, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # NO_COLOR wins
        ({"FORCE_COLOR": "", "TERM": "dumb"}, True),  # set, even empty, forces (force-color.org)
        ({}, False),  # a pipe: no colour
    ],
)
def test_force_color_colours_a_pipe_unless_no_color_says_otherwise(env: dict[str, str], coloured: bool) -> None:
    from reconciler.commands.shell import _wants_color as _color

    read, write_end = os.pipe()
    os.close(read)
    with os.fdopen(write_end, "w") as pipe:
        assert _color(pipe, env) is coloured


@pytest.mark.parametrize(
    "arguments",
    [
        ["watch", "--jitter", "nan"],
        ["watch", "--timeout", "inf"],
        ["apply", "--timeout", "nan"],
        ["apply", "--lock-timeout", "inf"],
        ["send", "VF3ABCDE0FG123456", "horn", "--timeout", "nan"],
        ["simulator", "--latency", "nan"],
        ["simulator", "--fail-rate", "nan"],
        ["simulator", "--rate-per-second", "inf"],
        ["simulator", "--awake-for", "nan"],
        ["simulator", "--report-lag", "inf"],
    ],
)
def test_a_number_that_is_not_finite_is_a_usage_error(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(arguments) == 1
    assert "is not a finite number" in capsys.readouterr().err


def test_a_vehicle_the_fleet_does_not_list_is_not_counted_as_a_callback_action() -> None:
    from reconciler.core.outcomes import Outcome
    from reconciler.core.vocabulary import Result
    from reconciler.service.metrics import Metrics

    metrics = Metrics()
    outcome = Outcome("vehicle.VF3ABCDE0FG123456", Result.CANNOT, "not in fleet F: the API does not list it")
    metrics.run_ended(code=0, at=0.0, outcomes=[outcome])
    counted = {
        (s.labels["remote_type"], s.labels["result"]): s.value
        for family in metrics.registry.collect()
        if family.name == "reconciler_actions"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert counted[("callback", "skipped")] == 0
    assert sum(counted.values()) == 0


def test_show_renders_a_saved_plan_as_plan_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    braked = (
        MINIMAL.replace("vehicles:\n", "vehicles:\n  VF3ABCDE0FG123457: {immobilized: true}\n")
        + "rollout: {waves: [1, 100%], bake: 10m}\n"
        + 'windows: {timezone: Europe/Paris, allow: [{days: everyday, start: "00:00", end: "23:59"}]}\n'
    )
    fleet, saved = write(tmp_path, braked), tmp_path / "plan.json"
    for fmt in ("text", "markdown"):
        assert main(["plan", "-f", str(fleet), "--no-refresh", "--format", fmt, "--out", str(saved)]) == 0
        planned = capsys.readouterr().out
        assert main(["show", str(saved), "--format", fmt]) == 0
        shown = capsys.readouterr().out
        assert shown.endswith(planned), (shown, planned)
        assert "wave" in shown and "VF3ABCDE0FG123457" in shown
    assert main(["show", str(saved), "--format", "json"]) == 0
    assert capsys.readouterr().out == saved.read_text()


def test_a_fleet_file_given_as_a_plan_says_what_was_meant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    for argv in (["apply", str(fleet)], ["show", str(fleet)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "is a fleet file, not a saved plan; did you mean `reconciler apply -f" in err, err
        assert "Traceback" not in err and "JSON" not in err


def test_validate_offline_checks_secrets_by_name_and_json_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    secret = MINIMAL.replace(
        '"https://hooks.example.com/x"}',
        '"https://hooks.example.com/${HOOK_PATH}", headers: {X-Token: "${HOOK_TOKEN}"}}',
    )
    fleet = write(tmp_path, secret)
    assert main(["validate", "-f", str(fleet)]) == 1
    assert "environment variable HOOK_PATH is not set" in capsys.readouterr().err
    assert main(["validate", "-f", str(fleet), "--offline"]) == 0
    assert "${HOOK_PATH}, ${HOOK_TOKEN} checked by name only" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(secret.replace("https://hooks", "ftp://hooks"))
    assert main(["validate", "-f", str(bad), "--offline"]) == 1  # the text around a ${VAR} is still checked
    assert "https://" in capsys.readouterr().err
    assert main(["validate", "-f", str(bad), "--offline", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["offline"] is True
    [problem] = report["problems"]
    assert (problem["file"], problem["line"], problem["column"]) == (str(bad), 6, 23)
    assert problem["message"] and problem["hint"]
    assert main(["validate", "-f", str(fleet), "--offline", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["variables"] == ["HOOK_PATH", "HOOK_TOKEN"]


def test_the_same_mistake_two_thousand_times_is_said_ten_times_then_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vehicles = "".join(f"  VF3ABCDE0FG{n:06d}: {{immobilized: yes}}\n" for n in range(2000))
    fleet = write(tmp_path, MINIMAL.split("vehicles:\n")[0] + "vehicles:\n" + vehicles)
    assert main(["validate", "-f", str(fleet)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) < 40, lines[:50]
    assert any("… and 1,990 more like" in line for line in lines)
    assert lines[-1].endswith("2,000 problems in " + str(fleet))


@pytest.mark.parametrize("value", ["2.5", "0", "-1", "10001", "1e9", '"50"', "true", "null", ".nan", "[]"])
def test_a_bad_sandbox_fleet_size_is_a_located_refusal(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, MINIMAL.replace("api: {url: sandbox}", f"api: {{url: sandbox, vehicles: {value}}}"))
    before = files_under(tmp_path)
    assert main(["validate", "--offline", str(fleet)]) == 1
    err = capsys.readouterr().err
    assert "fleet.yaml:3:" in err and "api.vehicles" in err and "Traceback" not in err
    assert files_under(tmp_path) == before
