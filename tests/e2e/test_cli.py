"""The command line, end to end in a temp dir: exit codes, formats, files written or not."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from support.paths import EXAMPLE, MINIMAL, files_under, write
from support.runs import SECRET

from reconciler.cli import main
from reconciler.commands.shell import Shell
from reconciler.core.sensitive import seal_callback
from reconciler.fleetfile import loader
from reconciler.simulator.server import Simulator
from reconciler.state.base import fresh_recorded
from reconciler.state.sqlite import open_sqlite


def test_usage_errors_exit_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--no-such-flag"]) == 1
    assert main(["plan", "--format", "yaml"]) == 1
    assert "Usage:" in capsys.readouterr().err


def test_missing_fleet_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 1
    assert "fleet.yaml: no such file" in capsys.readouterr().err


def test_plan_json_writes_only_json_to_stdout_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = write(tmp_path, EXAMPLE.read_text())
    assert main(["plan", "-f", str(fleet), "--format", "json", "--no-refresh"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["send"] == 20
    assert files_under(tmp_path) == {fleet}  # planning never creates the state


def test_detailed_exitcode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--detailed-exitcode"]) == 2
    record_everything(fleet)
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out


def record_everything(fleet: Path) -> None:
    desired = loader.read(fleet, os.environ)
    store = open_sqlite(f"sqlite:///{fleet.parent / '.reconciler' / 'state.db'}", fleet=desired.fleet)
    recorded = fresh_recorded()
    store.initialize(recorded)
    for label, cb in desired.callbacks.items():
        store.record_callback(label, f"cb-{label}", seal_callback(cb, recorded.fingerprint_key))
    store.record_vehicles([(vin, f"vid-{vin}", v.config) for vin, v in desired.vehicles.items()])
    store.close()


def test_plan_against_recorded_state_plans_only_the_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    record_everything(fleet)
    fleet.write_text(MINIMAL.replace('"07:30"', '"08:15"'))
    assert main(["plan", "-f", str(fleet), "--format", "json", "--no-refresh"]) == 0
    [change] = json.loads(capsys.readouterr().out)["changes"]
    assert change["address"] == "vehicle.VF3ABCDE0FG123456.preconditioning"
    assert (
        change["request"]["path"]
        == "/fleets/0a123bc5d1e873066454b4d9/vehicles/vid-VF3ABCDE0FG123456/callbacks/cb-ops/remotes"
    )
    assert change["request"]["body"]["preconditioning"]["airConditioning"]["programs"][0]["start"] == "PT8H15M"


def test_saved_plan_carries_lineage_serial_and_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    assert main(["plan", "-f", str(fleet), "--out", str(tmp_path / "plan.json"), "--no-refresh"]) == 0
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["kind"] == "reconciler-plan"
    assert saved["state"]["serial"] == 0 and saved["state"]["lineage"]
    assert saved["source"]["file"] == str(fleet)
    assert "reconciler apply" in capsys.readouterr().err


def test_secret_stays_out_of_every_output_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "hunter2-abcdef")
    fleet = write(
        tmp_path,
        MINIMAL.replace(
            '"https://hooks.example.com/x"}',
            '"https://hooks.example.com/x", headers: {Authorization: "${HOOK_TOKEN}"}}',
        ),
    )
    for fmt in ("text", "json", "markdown"):
        assert main(["plan", "-f", str(fleet), "--format", fmt, "--out", str(tmp_path / f"p.{fmt}")]) == 0
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    for path in files_under(tmp_path):
        assert b"hunter2" not in path.read_bytes(), path


def test_target_must_be_an_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    assert main(["plan", "-f", str(fleet), "--target", "VF3ABCDE0FG123456"]) == 1
    assert "is not an address" in capsys.readouterr().err
    for command in (["plan"], ["apply", "--auto-approve"]):
        for target in ("vehicle.VF3ABCDE0FG123457", "callback.nope", "vehicle.VF3ABCDE0FG123457.stolen"):
            assert main([*command, "-f", str(fleet), "--target", target, "--no-refresh"]) == 1
            assert f"--target {target} matches nothing" in capsys.readouterr().err
    assert main(["plan", "-f", str(fleet), "--target", "vehicle.VF3ABCDE0FG123456.stolen", "--no-refresh"]) == 0


def test_no_color_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    assert main(["plan", "-f", str(fleet)]) == 0
    assert "\033[" not in capsys.readouterr().out  # not a terminal


def test_no_color_turns_colour_off_for_the_command(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)  # the sandbox: a plan with changes, coloured on a colour shell
    outputs = []
    for flags in ([], ["--no-color"]):
        out = io.StringIO()
        shell = Shell({"FORCE_COLOR": "1"}, io.StringIO(), out, io.StringIO(), color=True)
        assert main([*flags, "plan"], shell=shell) == 0
        outputs.append(out.getvalue())
    coloured, plain = outputs
    assert "\x1b[32m" in coloured and "\x1b[" not in plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_verbose_traces_every_request_on_stderr_with_no_secret(
    fleet: Path, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = main(["plan", "-f", str(fleet)])
    plain = capsys.readouterr()
    assert main(["plan", "-f", str(fleet), "-v"]) == quiet  # the trace changes no exit code
    traced = capsys.readouterr()
    assert traced.out == plain.out and "http:" not in plain.err  # the plan is the same; the trace is stderr's
    lines = [line for line in traced.err.splitlines() if line.startswith("http: ")]
    assert any(
        re.fullmatch(
            r"http: GET https://127\.0\.0\.1:\d+/\S+/vehicles\?client_id=\*\*\*: 200 in \d+ ms, \d+ B received", line
        )
        for line in lines
    )
    credentials = sim.connection.credentials
    secrets = (credentials.client_id, credentials.password, SECRET)
    assert not any(secret in traced.err for secret in secrets)
    # apply: -v lists every address, -vv traces too; --debug before any command traces it.
    assert main(["apply", "-f", str(fleet), "--auto-approve", "-v"]) == 0
    assert "http:" not in capsys.readouterr().err
    assert main(["--debug", "refresh", "-f", str(fleet)]) == 0
    err = capsys.readouterr().err
    assert "http: GET" in err and not any(secret in err for secret in secrets)
    assert main(["apply", "-f", str(fleet), "--auto-approve", "-vv"]) == 0
    assert "http: GET" in capsys.readouterr().err
    assert main(["plan", "-f", str(fleet)]) == 0
    assert "http:" not in capsys.readouterr().err  # the trace ended with the command that asked for it


def test_help_teaches_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "validate" in out and "plan" in out
    assert main(["plan", "--help"]) == 0
    assert "--detailed-exitcode" in capsys.readouterr().out


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-f", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_plan_out_replaces_only_an_earlier_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link.json").symlink_to(notes)
    refused = {
        str(fleet): "is the fleet file itself",
        str(notes): "is not a saved plan",
        str(tmp_path / "folder"): "is not a regular file",
        str(tmp_path / "link.json"): "is not a regular file",
        "/dev/null": "is not a regular file",
    }
    for target, why in refused.items():
        assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", target]) == 1
        assert why in capsys.readouterr().err
    assert fleet.read_text() == MINIMAL and notes.read_text() == "keep me"
    plan = tmp_path / "plan.json"
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", str(plan)]) == 0
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", str(plan)]) == 0  # an earlier plan: replaced
    assert json.loads(plan.read_text())["kind"] == "reconciler-plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml", "folder", "link.json", "notes.txt", "plan.json"]


def test_apply_of_a_saved_plan_refuses_another_fleet_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL)
    plan = tmp_path / "plan.json"
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--out", str(plan)]) == 0
    assert main(["apply", str(plan), "-f", str(other)]) == 1
    assert "was made from" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "0", "abc", "inf"])
def test_a_bad_http_timeout_is_refused_naming_the_variable(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = write(tmp_path, MINIMAL)
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", value)
    assert main(["apply", "-f", str(fleet), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"RECONCILER_HTTP_TIMEOUT={value!r}" in err and "Traceback" not in err


def test_a_state_of_another_fleet_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = write(tmp_path, MINIMAL)
    record_everything(fleet)
    assert main(["plan", "-f", str(fleet), "--no-refresh"]) == 0
    fleet.write_text(MINIMAL.replace("0a123bc5d1e873066454b4d9", "ffffffffffffffffffffffff"))
    for argv in (["plan", "--no-refresh"], ["apply", "--auto-approve", "--no-refresh"]):
        assert main([*argv, "-f", str(fleet)]) == 1
        assert "was recorded for fleet 0a123bc5d1e873066454b4d9" in capsys.readouterr().err


@pytest.mark.parametrize("refresh", ["--refresh", "--no-refresh"])
@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf"])
def test_a_malformed_http_timeout_is_an_error_naming_it_not_a_failed_refresh(
    tmp_path: Path, value: str, refresh: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fleet.yaml").write_text(MINIMAL)
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", value)
    assert main(["plan", refresh]) == 1
    captured = capsys.readouterr()
    assert f"RECONCILER_HTTP_TIMEOUT={value!r}" in captured.err
    assert "planned against the recorded state" not in captured.err + captured.out
