"""Loading fleet.yaml: what a valid file means, and a located error for every kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support.paths import MINIMAL

from reconciler.core.model import AirProgram, ChargeProgram, ChargingPreferences, Secret
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader

ENV = {"WEBHOOK_TOKEN": "s3cr3t-token"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loader.parse(textwrap.dedent(text), "fleet.yaml", env or {})
    return [str(p) for p in caught.value.problems]


def test_times_days_and_defaults_are_normalised() -> None:
    desired = loader.parse(
        MINIMAL
        + """\
    charging:
      schedule:
        - {slot: 2, start: PT22H, end: "6:00", days: [Sun, Mon]}
      preferences: {level: Level2}
""",
        "fleet.yaml",
        {},
    )
    config = desired.vehicles["VF3ABCDE0FG123456"].config
    assert config.preconditioning == {1: AirProgram(1, 450, ("Mon", "Tue", "Wed", "Thu", "Fri"))}
    assert config.charging_schedule == {2: ChargeProgram(2, 22 * 60, 360, ("Mon", "Sun"))}
    assert config.charging_preferences == ChargingPreferences("Level2", None)
    assert config.immobilized is None  # left out: not managed


def test_unquoted_time_is_read_as_the_time_meant() -> None:
    desired = loader.parse(MINIMAL.replace('"07:30"', "07:30"), "fleet.yaml", {})
    assert desired.vehicles["VF3ABCDE0FG123456"].config.preconditioning[1].start == 450  # type: ignore[index]


def test_octal_looking_fleet_id_is_kept_as_written() -> None:
    desired = loader.parse(MINIMAL.replace("0a123bc5d1e873066454b4d9", "01234567"), "fleet.yaml", {})
    assert desired.fleet == "01234567"


def test_numeric_fleet_id_is_read_as_text() -> None:
    desired = loader.parse(MINIMAL.replace("0a123bc5d1e873066454b4d9", "1234567"), "fleet.yaml", {})
    assert desired.fleet == "1234567"


def test_environment_variables_become_secrets() -> None:
    text = MINIMAL.replace(
        'webhook: {target: "https://hooks.example.com/x"}',
        'webhook: {target: "https://hooks.example.com/x", headers: {Authorization: "Bearer ${WEBHOOK_TOKEN}"}}',
    )
    desired = loader.parse(text, "fleet.yaml", ENV)
    [attribute] = desired.callbacks["ops"].attributes
    assert attribute.value == Secret("WEBHOOK_TOKEN", "Bearer s3cr3t-token")
    assert "s3cr3t" not in repr(attribute) and str(attribute.value) == "(sensitive)"


def test_environment_overrides_fleet_and_api_url() -> None:
    desired = loader.parse(MINIMAL, "fleet.yaml", {"RECONCILER_FLEET": "other", "RECONCILER_API_URL": "https://x"})
    assert (desired.fleet, desired.api_url) == ("other", "https://x")


def test_vehicle_callback_choice_wins_when_it_subscribes() -> None:
    text = (
        MINIMAL
        + """\
    callback: ops
  VF3ABCDE0FG123457:
    callback: spare
    preconditioning: []
    immobilized: false
"""
    )
    text = text.replace(
        "vehicles:",
        """\
  spare:
    webhook: {target: "https://hooks.example.com/spare"}
    remoteTypes: [ThermalPreconditioning]
vehicles:""",
    )
    desired = loader.parse(text, "fleet.yaml", {})
    assert dict(desired.vehicles["VF3ABCDE0FG123457"].routes) == {
        "ThermalPreconditioning": "spare",
        "Immobilization": "ops",
    }


BAD_CASES = [
    (
        "duplicate VIN",
        MINIMAL + "  VF3ABCDE0FG123456: {}\n",
        "fleet.yaml:12:3: duplicate key 'VF3ABCDE0FG123456' (first at line 9)",
    ),
    (
        "yes for a boolean",
        MINIMAL + "    immobilized: yes\n",
        "fleet.yaml:12:18: vehicles.VF3ABCDE0FG123456.immobilized: expected true or false, got 'yes'",
    ),
    (
        "off for a boolean",
        MINIMAL.replace("vehicles:", "prune: off\nvehicles:"),
        "fleet.yaml:8:8: prune: expected true or false, got 'off'",
    ),
    (
        "unknown key",
        MINIMAL + "    preconditionning: []\n",
        "fleet.yaml:12:5: vehicles.VF3ABCDE0FG123456: unknown key 'preconditionning'",
    ),
    ("unknown top-level key", MINIMAL + "vehicle: {}\n", "fleet.yaml:12:1: the file: unknown key 'vehicle'"),
    (
        "wrong apiVersion",
        MINIMAL.replace("reconciler/v1", "reconciler/v2"),
        "fleet.yaml:1:13: apiVersion: 'reconciler/v2' is not one of reconciler/v1",
    ),
    (
        "missing apiVersion",
        MINIMAL.replace("apiVersion: reconciler/v1\n", ""),
        "fleet.yaml:1:1: the file: missing required key 'apiVersion'",
    ),
    (
        "VIN too short",
        MINIMAL.replace("VF3ABCDE0FG123456", "VF3ABCDE0FG12345"),
        "fleet.yaml:9:3: vehicles.VF3ABCDE0FG12345: not a VIN: it has 16 characters, a VIN has 17",
    ),
    (
        "VIN with O",
        MINIMAL.replace("VF3ABCDE0FG123456", "VF3ABCDEOFG123456"),
        "fleet.yaml:9:3: vehicles.VF3ABCDEOFG123456: not a VIN: 'O' cannot appear in a VIN",
    ),
    (
        "slot twice",
        MINIMAL + '      - {slot: 1, start: "08:00", days: weekend}\n',
        "fleet.yaml:12:16: vehicles.VF3ABCDE0FG123456.preconditioning[1].slot: slot 1 is used twice (first at line 11)",
    ),
    (
        "slot out of range",
        MINIMAL.replace("slot: 1", "slot: 5"),
        "fleet.yaml:11:16: vehicles.VF3ABCDE0FG123456.preconditioning[0].slot: 5 is too large",
    ),
    (
        "five programs",
        MINIMAL + "".join(f'      - {{slot: {s}, start: "08:00", days: weekend}}\n' for s in (2, 3, 4, 4)),
        "fleet.yaml:11:7: vehicles.VF3ABCDE0FG123456.preconditioning: 5 entries, at most 4 allowed",
    ),
    (
        "bad time",
        MINIMAL.replace('"07:30"', '"7h30"'),
        "fleet.yaml:11:26: vehicles.VF3ABCDE0FG123456.preconditioning[0].start: '7h30' is not in the expected form",
    ),
    (
        "time past midnight",
        MINIMAL.replace('"07:30"', "PT24H5M"),
        "fleet.yaml:11:9: vehicles.VF3ABCDE0FG123456.preconditioning[0]: 'PT24H5M' is past the end of the day",
    ),
    (
        "bad day shortcut",
        MINIMAL.replace("weekdays", "workdays"),
        "fleet.yaml:11:41: vehicles.VF3ABCDE0FG123456.preconditioning[0].days: 'workdays' is not one of weekdays",
    ),
    (
        "day twice",
        MINIMAL.replace("weekdays", "[Mon, Mon]"),
        "fleet.yaml:11:41: vehicles.VF3ABCDE0FG123456.preconditioning[0].days: 'Mon' is listed twice",
    ),
    (
        "unknown profile",
        MINIMAL + "    profile: comuter\n",
        "fleet.yaml:12:14: vehicles.VF3ABCDE0FG123456.profile: profile 'comuter' is not declared",
    ),
    (
        "unknown callback",
        MINIMAL + "    callback: opps\n",
        "fleet.yaml:12:15: vehicles.VF3ABCDE0FG123456.callback: callback 'opps' is not declared",
    ),
    (
        "no callback for a remote type",
        MINIMAL.replace(", Immobilization, Stolen", "") + "    stolen: true\n",
        "fleet.yaml:9:3: vehicles.VF3ABCDE0FG123456: no callback subscribes to Stolen",
    ),
    (
        "two callbacks for a remote type",
        MINIMAL.replace(
            "vehicles:",
            """\
  other:
    webhook: {target: "https://hooks.example.com/y"}
    remoteTypes: [ThermalPreconditioning]
vehicles:""",
        ),
        "fleet.yaml:12:3: vehicles.VF3ABCDE0FG123456: callbacks ops, other all subscribe to ThermalPreconditioning",
    ),
    (
        "missing env var",
        MINIMAL.replace('"https://hooks.example.com/x"', '"${HOOK_URL}"'),
        "fleet.yaml:6:23: callbacks.ops.webhook.target: environment variable HOOK_URL is not set",
    ),
    (
        "unknown API variable",
        MINIMAL.replace('"https://hooks.example.com/x"}', '"https://h.example.com", query: {v: $VIN}}'),
        "fleet.yaml:6:59: callbacks.ops.webhook.query.v: unknown API variable '$VIN'",
    ),
    (
        "unknown remote type",
        MINIMAL.replace("Stolen]", "Stolen, Honk]"),
        "fleet.yaml:7:99: callbacks.ops.remoteTypes[4]: 'Honk' is not one of",
    ),
    (
        "contradictory retry policy",
        MINIMAL.replace("    remoteTypes", "    retryPolicy: {policy: None, retryNumber: 2}\n    remoteTypes"),
        "fleet.yaml:7:33: callbacks.ops.retryPolicy.retryNumber: retryNumber applies only to policy Bounded",
    ),
    (
        "integral float slot",
        MINIMAL.replace("slot: 1,", "slot: 1.0,"),
        "fleet.yaml:11:16: vehicles.VF3ABCDE0FG123456.preconditioning[0].slot: expected a whole number, got 1.0",
    ),
    (
        "float charging slot",
        MINIMAL + '    charging: {schedule: [{slot: 2.5, start: "22:00", end: "06:00", days: everyday}]}\n',
        "fleet.yaml:12:34: vehicles.VF3ABCDE0FG123456.charging.schedule[0].slot: expected a whole number, got 2.5",
    ),
    (
        "float retry number",
        MINIMAL.replace("    remoteTypes", "    retryPolicy: {policy: Bounded, retryNumber: 3.0}\n    remoteTypes"),
        "fleet.yaml:7:49: callbacks.ops.retryPolicy.retryNumber: expected a whole number, got 3.0",
    ),
    (
        "float batch size",
        MINIMAL.replace("    remoteTypes", "    batchNotify: {size: 10.0}\n    remoteTypes"),
        "fleet.yaml:7:25: callbacks.ops.batchNotify.size: expected a whole number, got 10.0",
    ),
    (
        "plain http API URL",
        MINIMAL.replace("api: {url: sandbox}", "api: {url: http://api.example.com/connectedcar/v3}"),
        "fleet.yaml:3:12: api.url: 'http://api.example.com/connectedcar/v3' is plain http://",
    ),
    (
        "plain http webhook target",
        MINIMAL.replace('"https://hooks.example.com/x"', '"http://hooks.example.com/x"'),
        "fleet.yaml:6:23: callbacks.ops.webhook.target: the target is plain http://",
    ),
    (
        "loopback http target with the real API",
        MINIMAL.replace("api: {url: sandbox}", "api: {url: https://api.example.com/v3}").replace(
            '"https://hooks.example.com/x"', '"http://127.0.0.1:8787/"'
        ),
        "fleet.yaml:6:23: callbacks.ops.webhook.target: the target is plain http://",
    ),
    (
        "target with a bad port",
        MINIMAL.replace('"https://hooks.example.com/x"', '"https://hooks.example.com:http/x"'),
        "fleet.yaml:6:23: callbacks.ops.webhook.target: the target is not a URL",
    ),
    (
        "charging ends when it starts",
        MINIMAL + '    charging: {schedule: [{slot: 1, start: "22:00", end: PT22H, days: everyday}]}\n',
        "fleet.yaml:12:27: vehicles.VF3ABCDE0FG123456.charging.schedule[0]: slot 1: the program ends when it starts",
    ),
    (
        "string where a list is meant",
        MINIMAL.replace(
            "remoteTypes: [ThermalPreconditioning, ElectricBatteryChargingRequest, Immobilization, Stolen]",
            "remoteTypes: ThermalPreconditioning",
        ),
        "fleet.yaml:7:18: callbacks.ops.remoteTypes: expected a list, got 'ThermalPreconditioning'",
    ),
    (
        "number where a label is meant",
        MINIMAL + "    profile: 12\n",
        "fleet.yaml:12:14: vehicles.VF3ABCDE0FG123456.profile: profile '12' is not declared",
    ),
    ("no fleet id", MINIMAL.replace("fleet: 0a123bc5d1e873066454b4d9\n", ""), "fleet.yaml:1:1: fleet: no fleet id"),
    (
        "target not a URL",
        MINIMAL.replace('"https://hooks.example.com/x"', "hooks.example.com"),
        "fleet.yaml:6:23: callbacks.ops.webhook.target: 'hooks.example.com' is not in the expected form",
    ),
    (
        "header repeated in another case",
        MINIMAL.replace('"https://hooks.example.com/x"}', '"https://h.example.com", headers: {X-A: a, x-a: b}}'),
        "fleet.yaml:6:66: callbacks.ops.webhook.headers.x-a: header 'x-a' repeats 'X-A'",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_file_gets_a_located_error(case: str, text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), "\n".join(found)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (MINIMAL + "    preconditionning: []\n", "did you mean 'preconditioning'?"),
        (MINIMAL + "    immobilized: yes\n", "write true or false"),
        (MINIMAL + "    profile: comuter\n", "declare it under profiles:"),
        (MINIMAL.replace("weekdays", "weekday"), "did you mean 'weekdays'?"),
        (MINIMAL.replace('"07:30"', '"7h30"'), 'write a time of day as "HH:MM"'),
    ],
)
def test_errors_say_what_to_write_instead(text: str, hint: str) -> None:
    assert any(hint in p for p in problems(text))


def test_vin_as_query_attribute_with_batch_notify_is_valid_with_a_warning() -> None:
    """The API documentation subscribes exactly this: valid, only batching stops."""
    desired = loader.parse(
        MINIMAL.replace(
            '"https://hooks.example.com/x"}',
            '"https://h.example.com", query: {vin: $vin}}\n    batchNotify: {size: 10}',
        ),
        "fleet.yaml",
        {},
    )
    assert desired.callbacks["ops"].batch_notify is not None
    [warning] = desired.warnings
    assert warning.startswith("fleet.yaml:6:61: callbacks.ops.webhook.query.vin: with $vin as a query attribute")


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_is_refused_naming_the_variable(value: str) -> None:
    text = MINIMAL.replace('"https://hooks.example.com/x"}', '"https://h.example.com", headers: {X-T: "${TOKEN}"}}')
    [problem] = problems(text, {"TOKEN": value})
    assert problem.startswith("fleet.yaml:6:63: callbacks.ops.webhook.headers.X-T: environment variable TOKEN is empty")


@pytest.mark.parametrize("value", ["http://hooks.example.com/x", "not a url", "ftp://h/x", "https:///no-host"])
def test_a_target_from_the_environment_is_checked_without_showing_it(value: str) -> None:
    text = MINIMAL.replace('"https://hooks.example.com/x"', '"${HOOK_URL}"')
    [problem] = problems(text, {"HOOK_URL": value})
    assert problem.startswith("fleet.yaml:6:23: callbacks.ops.webhook.target: the target ${HOOK_URL} reads")
    assert value not in problem


@pytest.mark.parametrize("url", ["http://api.example.com/v3", "https://", "https://x:y:z/"])
def test_a_plain_http_api_url_from_the_environment_is_refused(url: str) -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="RECONCILER_API_URL"):
        loader.parse(MINIMAL, "fleet.yaml", {"RECONCILER_API_URL": url})


def test_loopback_http_is_accepted_for_a_local_api() -> None:
    text = MINIMAL.replace('"https://hooks.example.com/x"', '"http://127.0.0.1:8787/hook"')
    desired = loader.parse(text, "fleet.yaml", {"RECONCILER_API_URL": "http://localhost:9443/connectedcar/v3"})
    assert desired.callbacks["ops"].target == "http://127.0.0.1:8787/hook"


def test_an_alias_bomb_is_refused_at_its_anchor_quickly() -> None:
    import time

    text = (
        MINIMAL
        + "profiles:\n  a: {preconditioning: &a [{slot: 1, start: '07:30', days: everyday, x: &x [1,1,1,1,1,1,1,1,1]}]}\n"
    )
    previous = "x"
    for name in "bcdefghij":
        text += f"x{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
        previous = name
    started = time.monotonic()
    [problem] = problems(text)
    assert time.monotonic() - started < 2
    assert "aliases repeat this anchor 9 times" in problem and problem.startswith("fleet.yaml:21:5:")


def test_a_file_larger_than_the_limit_is_refused_without_reading_it_all(tmp_path: object) -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="larger than 1,024 bytes"):
        loader.read("/dev/zero", {"RECONCILER_MAX_FILE_BYTES": "1024"})
    with pytest.raises(ReconcilerError, match="RECONCILER_MAX_FILE_BYTES='lots'"):
        loader.read("/dev/zero", {"RECONCILER_MAX_FILE_BYTES": "lots"})


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_bytes(MINIMAL.encode().replace(b"ops:", b"\xe9t\xe9:"))
    with pytest.raises(ConfigError) as caught:
        loader.read(path, {})
    assert str(caught.value.problems[0]).startswith(f"{path}:5:3: byte 0xe9 is not UTF-8 text")


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = MINIMAL.replace("reconciler/v1", "v1") + "    immobilized: yes\n    stolen: maybe\n  NOTAVIN: {}\n"
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["1", "12", "13", "14"]


def test_empty_file_and_non_mapping_are_refused() -> None:
    assert problems("")[0].startswith("fleet.yaml:1:1: the file is empty")
    assert problems("- a\n- b\n")[0].startswith("fleet.yaml:1:1: the file must be a mapping")


def test_missing_file_is_a_clear_error(tmp_path: object) -> None:
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError, match="no such file"):
        loader.read("nope.yaml", {})
