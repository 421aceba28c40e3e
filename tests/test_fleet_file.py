"""Loading fleet.yaml: what a valid file means, and a located error for every kind of mistake."""

from __future__ import annotations

import textwrap

import pytest
from conftest import EXAMPLE, MINIMAL

from reconciler.core.model import AirProgram, ChargeProgram, ChargingPreferences, Secret
from reconciler.errors import ConfigError
from reconciler.fleetfile import loader

ENV = {"WEBHOOK_TOKEN": "s3cr3t-token"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loader.parse(textwrap.dedent(text), "fleet.yaml", env or {})
    return [str(p) for p in caught.value.problems]


def test_example_is_valid_and_fully_resolved() -> None:
    desired = loader.read(EXAMPLE, {})
    assert desired.fleet == "0a123bc5d1e873066454b4d9"
    assert desired.api_url == "sandbox"
    assert set(desired.callbacks) == {"ops", "security", "driver-desk"}
    assert len(desired.vehicles) == 6
    override = desired.vehicles["VF7XYZAB1CD234567"].config
    assert set(override.preconditioning or {}) == {1, 3}
    assert override.charging_schedule == desired.vehicles["VF3ABCDE0FG123456"].config.charging_schedule
    immobilized = desired.vehicles["VR3KLMNP2RS345679"]
    assert immobilized.config.immobilized is True
    assert immobilized.routes["Immobilization"] == "security"


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


# Every class of bad input: located, explained, and all reported at once.

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
        "$vin query with batch",
        MINIMAL.replace(
            '"https://hooks.example.com/x"}', '"https://h.example.com", query: {v: $vin}}\n    batchNotify: {size: 5}'
        ),
        "fleet.yaml:6:59: callbacks.ops.webhook.query.v: $vin as a query attribute disables batchNotify",
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
