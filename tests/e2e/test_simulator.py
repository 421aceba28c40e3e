"""The simulator driven by a plain httpx client over HTTPS with mutual TLS."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.loopback import Receiver
from support.paths import REFERENCE
from support.simclient import air_set, callback_body, client
from support.spec_check import SpecChecker

from reconciler.simulator import tls
from reconciler.simulator.clock import FakeClock
from reconciler.simulator.server import Connection, Settings, Simulator

VINS = ["VF3ABCDE0FG123456", "VF3ABCDE0FG123457", "VR3KLMNP2RS345678", "W0VZZZ8ZZ12345678", "VF7XYZAB1CD234567"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = Simulator(Settings(tmp_path / "sim", vins=VINS, latency=1.0, per_second=10_000), FakeClock())
    with simulator:
        yield simulator


SPEC = REFERENCE / "stellantis-fleet-api-b2b.yaml"


@pytest.fixture(scope="session")
def checker() -> SpecChecker | None:
    return SpecChecker(SPEC) if SPEC.exists() else None


@pytest.fixture
def api(sim: Simulator, checker: SpecChecker | None) -> Iterator[httpx.Client]:
    """A client whose every response is validated against the reference, where it is present."""
    hooks = {"response": [checker.check]} if checker else {}
    with client(sim.connection, event_hooks=hooks) as http:
        yield http


@pytest.mark.skipif(not SPEC.exists(), reason="the reference OpenAPI file is not beside the project")
def test_responses_are_checked_against_the_reference(api: httpx.Client, checker: SpecChecker) -> None:
    before = checker.checked
    api.get("/vehicles")
    api.get("/vehicles/nope/status")
    assert checker.checked == before + 2


def vid(sim: Simulator, vin: str = VINS[0]) -> str:
    return sim.engine.by_vin(vin).vid


def make_callback(api: httpx.Client, **kwargs: Any) -> str:
    answer = api.post("/remote/callbacks", json=callback_body(**kwargs))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["callbackId"])


def step(sim: Simulator, seconds: float = 1.0) -> None:
    assert isinstance(sim.clock, FakeClock)
    sim.clock.advance(seconds)
    sim.engine.tick()


def test_vehicles_are_paged_through_next_links(api: httpx.Client) -> None:
    seen, url, pages = [], "/vehicles?pageSize=2", 0
    while url:
        page = api.get(url).json()
        seen += [v["vin"] for v in page["_embedded"]["vehicles"]]
        assert page["total"] == 5 and page["totalPage"] == 3
        url = page["_links"].get("next", {}).get("href")
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(VINS)


def test_vin_prefix_filters_vehicles(api: httpx.Client) -> None:
    page = api.get("/vehicles", params={"vinPrefix": "VF3ABCDE0FG12345"}).json()
    assert [v["vin"] for v in page["_embedded"]["vehicles"]] == VINS[:2]


@pytest.mark.parametrize("query", ["pageSize=61", "pageSize=0", "pageToken=bogus", "indexRange=x"])
def test_bad_paging_is_a_400_with_the_error_body(api: httpx.Client, query: str) -> None:
    answer = api.get(f"/vehicles?{query}")
    assert answer.status_code == 400
    assert set(answer.json()) == {"code", "uuid", "message", "timestamp"}


def test_index_range_limits_the_collection(api: httpx.Client) -> None:
    assert api.get("/vehicles?indexRange=1-2").json()["total"] == 2


def test_wrong_password_client_id_or_fleet_are_refused(sim: Simulator) -> None:
    with client(sim.connection) as http:
        assert http.get("/vehicles", auth=("sandbox", "wrong")).status_code == 401
        assert http.get("/vehicles?client_id=nope").status_code == 401
        headers = {"Authorization": "Bearer x"}
        assert http.get("/vehicles", headers=headers, auth=None).status_code == 401
        other = http.get(f"{sim.connection.url}/fleets/other/vehicles")
        assert other.status_code == 403 and "other" in other.json()["message"]
        assert http.get("/vehicles/nope/status").status_code == 404


def test_missing_client_id_is_refused(sim: Simulator) -> None:
    credentials = sim.connection.credentials
    with client(sim.connection, auth=httpx.BasicAuth(credentials.username, credentials.password)) as http:
        answer = http.get("/vehicles")
    assert answer.status_code == 401 and "client_id" in answer.json()["message"]


def test_no_client_certificate_no_connection(sim: Simulator) -> None:
    with client(sim.connection, cert=False) as http, pytest.raises(httpx.TransportError):
        http.get("/vehicles")


def test_certificate_from_another_ca_is_refused(sim: Simulator, tmp_path: Path) -> None:
    stranger = tls.ensure(tmp_path / "stranger")
    connection = sim.connection
    import ssl

    context = ssl.create_default_context(cafile=str(connection.material.ca_cert))
    context.load_cert_chain(str(stranger.client_cert), str(stranger.client_key))
    with httpx.Client(verify=context) as http, pytest.raises(httpx.TransportError):
        http.get(f"{connection.url}/fleets/{connection.fleet}/vehicles")


def test_callback_lifecycle(api: httpx.Client) -> None:
    cbid = make_callback(api, types=("Horn", "Doors"))
    got = api.get(f"/remote/callbacks/{cbid}").json()
    assert got["status"] == "Running" and got["subscribe"]["label"] == "t"
    listed = api.get("/remote/callbacks", params={"remoteType": "Doors"}).json()["_embedded"]["callbacks"]
    assert [c["id"] for c in listed] == [cbid]
    assert api.get("/remote/callbacks", params={"remoteType": "Lights"}).json()["_embedded"]["callbacks"] == []
    put = api.put(f"/remote/callbacks/{cbid}", json=callback_body(types=("Lights",)))
    assert put.status_code == 202
    assert api.get(f"/remote/callbacks/{cbid}").json()["subscribe"]["remoteTypes"] == ["Lights"]
    paused = api.put(f"/remote/callbacks/{cbid}/status", json={"status": "Paused"})
    assert (paused.status_code, paused.json()["status"]) == (202, "Paused")
    assert api.delete(f"/remote/callbacks/{cbid}").status_code == 204
    assert api.get(f"/remote/callbacks/{cbid}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"callback": {"webhook": {"target": "https://x.example.com", "name": "n"}}},  # no remoteTypes
        callback_body(types=("Honk",)),
        callback_body(target="http://hooks.example.com/x"),  # plain http off loopback
        callback_body(retryPolicy={"policy": "Sometimes"}),
        callback_body(batchNotify={"timeWindow": 10}),
    ],
)
def test_invalid_callback_is_a_400(api: httpx.Client, body: dict[str, Any]) -> None:
    answer = api.post("/remote/callbacks", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 40000


def test_callback_with_pending_actions_cannot_be_deleted(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api)
    remote = {"preconditioning": {"airConditioning": {"programs": [air_set(1)]}}}
    assert api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json=remote).status_code == 202
    refused = api.delete(f"/remote/callbacks/{cbid}")
    assert refused.status_code == 400 and "pending" in refused.json()["message"]
    step(sim, 5)
    assert api.delete(f"/remote/callbacks/{cbid}").status_code == 204


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ({"horn": {"state": "Activated"}, "lights": {"on": True}}, "exactly one action"),
        ({"lights": {"on": True}}, "does not subscribe to Lights"),
        ({"preconditioning": {"airConditioning": {"programs": [{"slot": 1, "enabled": True}]}}}, "required"),
        ({"preconditioning": {"airConditioning": {"programs": [air_set(1), air_set(1)]}}}, "used twice"),
        ({"preconditioning": {"airConditioning": {"programs": [air_set(5)]}}}, "from 1 to 4"),
        ({"preconditioning": {"airConditioning": {"programs": [air_set(1, "PT25H")]}}}, "not within a day"),
        ({"preconditioning": {"airConditioning": {}}}, "immediate or programs"),
        ({"charging": {"preferences": {"level": "Level1"}, "immediate": True}}, "cannot be combined"),
        ({"navigation": {"positions": [{"type": "Point", "coordinates": [2.3, 48.8]}] * 11}}, "1 to 10"),
        ({"navigation": {"positions": [{"type": "Point", "coordinates": [2.3, 91]}]}}, "longitude, latitude"),
        ({"stolen": {"stolen": True, "trackingPeriod": {"running": 5}}}, "exactly one"),
        ({"stolen": {"trackingPeriod": {"running": 4}}}, "at least 5"),
        ({"bogus": {}}, "unknown remote action"),
    ],
)
def test_invalid_remote_is_a_400(sim: Simulator, api: httpx.Client, remote: dict[str, Any], message: str) -> None:
    cbid = make_callback(
        api, types=("ThermalPreconditioning", "ElectricBatteryChargingRequest", "Horn", "Navigation", "Stolen")
    )
    answer = api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json=remote)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]


def test_action_lifecycle_and_effect_on_status(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api)
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    remote = {"label": "key-1", "preconditioning": {"airConditioning": {"programs": [air_set(1), air_set(2)]}}}
    posted = api.post(base, json=remote)
    assert posted.status_code == 202
    rid = posted.json()["remoteActionId"]
    assert posted.json()["type"] == "ThermalPreconditioning"
    seen = [api.get(f"{base}/{rid}").json()["status"]]
    for _ in range(3):
        step(sim)
        seen.append(api.get(f"{base}/{rid}").json()["status"])
    assert seen == ["Accepted", "SentToVehicle", "Success", "Success"]
    action = api.get(f"{base}/{rid}").json()
    assert action["remote"]["label"] == "key-1"
    listed = api.get(base).json()["_embedded"]["remoteActions"]
    assert [a["remoteActionId"] for a in listed] == [rid]
    programs = api.get(f"/vehicles/{vid(sim)}/status").json()["preconditioning"]["airConditioning"]["programs"]
    assert [p["slot"] for p in programs] == [1, 2]
    # Delete one slot, leave the other: slot by slot
    delete = {"preconditioning": {"airConditioning": {"programs": [{"actionsType": "Delete", "slot": 1}]}}}
    api.post(base, json=delete)
    step(sim, 3)
    programs = api.get(f"/vehicles/{vid(sim)}/status").json()["preconditioning"]["airConditioning"]["programs"]
    assert [p["slot"] for p in programs] == [2]


def test_same_change_again_is_already_done(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api, types=("Immobilization",))
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    outcomes = []
    for _ in range(2):
        rid = api.post(base, json={"immobilization": {"activate": True}}).json()["remoteActionId"]
        step(sim, 3)
        outcomes.append(api.get(f"{base}/{rid}").json()["status"])
    assert outcomes == ["Success", "AlreadyDone"]


def test_sleeping_vehicle_is_woken_up_within_its_budget(sim: Simulator, api: httpx.Client) -> None:
    sim.engine.configure_vehicle(VINS[0], asleep=True, wakeups_left=1)
    cbid = make_callback(api, types=("Horn",))
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    rid = api.post(base, json={"horn": {"state": "Activated"}}).json()["remoteActionId"]
    step(sim)
    assert api.get(f"{base}/{rid}").json()["status"] == "WakingUpVehicle"
    step(sim, 2)
    assert api.get(f"{base}/{rid}").json()["status"] == "Success"
    sim.engine.configure_vehicle(VINS[0], asleep=True)
    rid = api.post(base, json={"horn": {"state": "Activated"}}).json()["remoteActionId"]
    step(sim)
    failed = api.get(f"{base}/{rid}").json()
    assert (failed["status"], failed["failureCause"]) == ("Failed", "TooManyWakeUpsOverMonth")


def test_second_action_of_a_type_in_flight_fails(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api, types=("Doors",))
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    first = api.post(base, json={"door": {"state": "Locked"}}).json()["remoteActionId"]
    second = api.post(base, json={"door": {"state": "Unlocked"}}).json()["remoteActionId"]
    step(sim, 3)
    assert api.get(f"{base}/{first}").json()["status"] in ("Success", "AlreadyDone")
    assert api.get(f"{base}/{second}").json()["failureCause"] == "SameActionInProgress"


def test_vehicle_failure_cause_is_reported(sim: Simulator, api: httpx.Client) -> None:
    sim.engine.configure_vehicle(VINS[0], fail_cause="NotPossibleDueToVehiclePrivacyLevel")
    cbid = make_callback(api, types=("Lights",))
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    rid = api.post(base, json={"lights": {"on": True}}).json()["remoteActionId"]
    step(sim, 3)
    assert api.get(f"{base}/{rid}").json()["failureCause"] == "NotPossibleDueToVehiclePrivacyLevel"


def test_status_reflects_charging_preferences_and_stolen(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api, types=("ElectricBatteryChargingRequest", "Stolen"))
    base = f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes"
    program = {"slot": 1, "enabled": True, "start": "PT22H", "end": "PT6H", "occurence": {"day": ["Mon"]}}
    for remote in (
        {"charging": {"schedule": {"programs": [program]}}},
        {"charging": {"preferences": {"level": "Level4", "type": "Full"}}},
        {"stolen": {"stolen": True}},
    ):
        api.post(base, json=remote)
        step(sim, 3)
    status = api.get(f"/vehicles/{vid(sim)}/status").json()
    charging = status["energies"][0]["extension"]["electric"]["charging"]
    assert charging["schedule"]["programs"] == [program]
    assert (charging["chargingPowerLevel"], charging["type"]) == ("Level4", "Full")
    assert status["stolen"]["state"] is True


def test_fleet_status_is_paged(api: httpx.Client) -> None:
    page = api.get("/status", params={"pageSize": 3}).json()
    assert len(page["_embedded"]["status"]) == 3 and "next" in page["_links"]


def test_quirks_show_in_status(sim: Simulator) -> None:
    sim.engine.drift(
        VINS[0], 1, {"enabled": True, "recurrence": "Daily", "start": "PT7H30M", "occurence": {"day": ["Mon"]}}
    )
    sim.engine.configure_vehicle(VINS[0], quirks=["null_programs", "missing_occurence", "legacy_key", "padded_times"])
    with client(sim.connection) as raw:  # the quirks break the schema on purpose
        status = raw.get(f"/vehicles/{vid(sim)}/status").json()
    assert "preconditioning" not in status
    programs = status["preconditionning"]["airConditioning"]["programs"]
    assert programs[0] is None
    assert programs[1]["start"] == "PT07H30M00S" and "occurence" not in programs[1]


def test_drift_changes_a_program_behind_the_api(sim: Simulator, api: httpx.Client) -> None:
    sim.engine.drift(
        VINS[1], 3, {"enabled": True, "recurrence": "Daily", "start": "PT6H", "occurence": {"day": ["Sat"]}}
    )
    programs = api.get(f"/vehicles/{vid(sim, VINS[1])}/status").json()["preconditioning"]["airConditioning"]["programs"]
    assert programs == [
        {"slot": 3, "enabled": True, "recurrence": "Daily", "start": "PT6H", "occurence": {"day": ["Sat"]}}
    ]


def test_rate_limit_storm_answers_429_with_retry_after(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.rate_limit_storm = 2
    answers = [api.get("/vehicles") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "1"


def test_every_response_carries_rate_limit_headers(sim: Simulator, api: httpx.Client) -> None:
    with client(sim.connection) as raw:  # routes the API does not have are not in the reference
        unrouted = [raw.get("/no/such/thing"), raw.delete("/vehicles")]
    assert [a.status_code for a in unrouted] == [404, 405]
    for answer in (api.get("/vehicles"), api.get("/vehicles/nope/status"), *unrouted):
        assert {"x-ratelimit-remaining-second", "x-ratelimit-remaining-day"} <= set(answer.headers)


def test_burst_limit_gives_429_until_time_passes(tmp_path: Path) -> None:
    clock = FakeClock()
    with Simulator(Settings(tmp_path / "s", vins=VINS, per_second=3), clock) as sim, client(sim.connection) as api:
        codes = [api.get("/vehicles").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        clock.advance(1)
        assert api.get("/vehicles").status_code == 200


def test_daily_quota(tmp_path: Path) -> None:
    with Simulator(Settings(tmp_path / "s", vins=VINS, per_day=2), FakeClock()) as sim, client(sim.connection) as api:
        codes = [api.get("/vehicles") for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert codes[2].headers["X-RateLimit-Remaining-Day"] == "0"


def test_server_errors_happen_before_anything_is_done(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.server_errors = 1
    assert api.post("/remote/callbacks", json=callback_body()).status_code == 503
    assert sim.engine.list_callbacks() == []


def test_late_post_creates_the_action_but_answers_too_late(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api, types=("Horn",))
    sim.faults.late_posts, sim.faults.late_delay = 1, 2.0
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes",
            json={"label": "k", "horn": {"state": "Activated"}},
            timeout=0.5,
        )
    listed = api.get(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes").json()["_embedded"]["remoteActions"]
    assert [a["remote"]["label"] for a in listed] == ["k"]


def test_slow_responses(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.slow = 0.3
    started = time.monotonic()
    api.get("/vehicles")
    assert time.monotonic() - started >= 0.3


def test_state_ca_and_credentials_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "s", vins=VINS)
    with Simulator(settings) as sim, client(sim.connection) as api:
        cbid = make_callback(api)
        first = sim.connection
    with Simulator(Settings(tmp_path / "s")) as sim, client(sim.connection) as api:
        assert api.get(f"/remote/callbacks/{cbid}").status_code == 200
        assert sim.connection.credentials == first.credentials and sim.connection.fleet == first.fleet
        assert api.get("/vehicles").json()["total"] == len(VINS)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_events_are_posted_in_the_template_shape_with_attributes(
    sim: Simulator, api: httpx.Client, receiver: Receiver
) -> None:
    body = callback_body(target=receiver.url, types=("Horn",))
    body["callback"]["webhook"]["attributes"] = [
        {"type": "Header", "key": "X-Token", "value": "secret-1"},
        {"type": "Query", "key": "fleet", "value": "$fleetID"},
        {"type": "Body", "key": "kind", "value": "$remoteType"},
    ]
    cbid = api.post("/remote/callbacks", json=body).json()["callbackId"]
    rid = api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json={"horn": {"state": "Activated"}}).json()[
        "remoteActionId"
    ]
    step(sim, 3)
    sim.deliverer.deliver_due()
    assert len(receiver.requests) == 3  # Accepted, SentToVehicle, Success: one request each
    first, last = receiver.requests[0], receiver.requests[-1]
    assert first["headers"]["X-Token"] == "secret-1"
    assert first["path"] == f"/hook?fleet={sim.connection.fleet}"
    assert first["body"]["callbackId"] == cbid
    assert first["body"]["attributes"] == [{"key": "kind", "value": "Horn"}]
    event = last["body"]["events"][0]
    assert event["remoteActionId"] == rid and event["vin"] == VINS[0] and event["remoteType"] == "Horn"
    assert event["eventStatus"] == {"type": "Done", "status": "Success"}


def test_events_are_batched_by_size_and_time_window(sim: Simulator, api: httpx.Client, receiver: Receiver) -> None:
    cbid = make_callback(api, target=receiver.url, types=("Horn",), batchNotify={"size": 2, "timeWindow": 30})
    api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json={"horn": {"state": "Activated"}})
    step(sim, 1)  # Accepted + SentToVehicle: a full batch
    sim.deliverer.deliver_due()
    assert [len(r["body"]["events"]) for r in receiver.requests] == [2]
    step(sim, 1)  # Success waits for the window
    sim.deliverer.deliver_due()
    assert len(receiver.requests) == 1
    step(sim, 30)
    sim.deliverer.deliver_due()
    assert [len(r["body"]["events"]) for r in receiver.requests] == [2, 1]


@pytest.mark.parametrize(
    ("policy", "attempts"), [({"policy": "None"}, 2), ({"policy": "Bounded", "retryNumber": 3, "retryDelay": 5}, 4)]
)
def test_failed_delivery_is_retried_by_policy(
    sim: Simulator, api: httpx.Client, policy: dict[str, Any], attempts: int
) -> None:
    receiver = Receiver(codes=[500] * 10)
    try:
        cbid = make_callback(api, target=receiver.url, types=("Horn",), retryPolicy=policy)
        sim.engine.post_remote(vid(sim), cbid, {"horn": {"state": "Activated"}})
        for _ in range(10):
            sim.deliverer.deliver_due()
            sim.clock.advance(10)  # type: ignore[attr-defined]
        accepted = [r for r in receiver.requests if r["body"]["events"][0]["eventStatus"]["status"] == "Accepted"]
        assert len(accepted) == attempts
    finally:
        receiver.close()


def test_always_policy_retries_until_it_succeeds(tmp_path: Path) -> None:
    # Actions never move on here (latency of a million seconds): the only event is Accepted.
    settings = Settings(tmp_path / "s", vins=VINS, latency=1e6, per_second=10_000)
    receiver = Receiver(codes=[503] * 6)
    try:
        with Simulator(settings, FakeClock()) as sim, client(sim.connection) as api:
            cbid = make_callback(
                api, target=receiver.url, types=("Horn",), retryPolicy={"policy": "Always", "retryDelay": 60}
            )
            sim.engine.post_remote(vid(sim), cbid, {"horn": {"state": "Activated"}})
            for _ in range(10):
                sim.deliverer.deliver_due()
                sim.clock.advance(60)  # type: ignore[attr-defined]
            assert len(receiver.requests) == 7
            assert [d.outcome for d in sim.deliverer.log] == ["delivered"]
    finally:
        receiver.close()


def test_paused_callback_posts_nothing(sim: Simulator, api: httpx.Client, receiver: Receiver) -> None:
    cbid = make_callback(api, target=receiver.url, types=("Horn",))
    api.put(f"/remote/callbacks/{cbid}/status", json={"status": "Paused"})
    api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json={"horn": {"state": "Activated"}})
    step(sim, 3)
    sim.deliverer.deliver_due()
    assert receiver.requests == []


def test_targets_off_this_machine_are_never_contacted(sim: Simulator, api: httpx.Client) -> None:
    cbid = make_callback(api, target="https://hooks.example.com/x", types=("Horn",))
    api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json={"horn": {"state": "Activated"}})
    sim.deliverer.deliver_due()
    assert sim.deliverer.log and all(d.outcome == "undeliverable" for d in sim.deliverer.log)


def test_basic_auth_header_is_required_format(sim: Simulator) -> None:
    token = base64.b64encode(b"sandbox").decode()  # no colon, no password
    with client(sim.connection) as http:
        assert http.get("/vehicles", headers={"Authorization": f"Basic {token}"}, auth=None).status_code == 401


def test_simulator_command_prints_exports_and_stops_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "simulator", "--dir", str(tmp_path / "d"), "--vehicles", "3"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        names = [line.split("=", 1)[0] for line in lines]
        assert names == [
            f"export RECONCILER_{n}"
            for n in ("API_URL", "CLIENT_ID", "USERNAME", "PASSWORD", "CLIENT_CERT", "CLIENT_KEY", "CA_BUNDLE", "FLEET")
        ]
        env = {name.removeprefix("export "): value.strip() for name, value in (line.split("=", 1) for line in lines)}
        connection = Connection.from_environment(env)
        with client(connection) as http:
            assert http.get("/vehicles").json()["total"] == 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_vehicle_by_id(sim: Simulator, api: httpx.Client) -> None:
    vehicle = api.get(f"/vehicles/{vid(sim)}").json()
    assert (vehicle["id"], vehicle["vin"]) == (vid(sim), VINS[0])


def test_capabilities_say_what_each_kind_of_vehicle_takes(sim: Simulator, api: httpx.Client) -> None:
    sim.engine.configure_vehicle(VINS[1], motorization="Thermic")
    sim.engine.configure_vehicle(VINS[2], motorization="Hybrid", charge_slots=2, charge_type=False)
    base = sim.connection.url

    def remote(vin: str) -> dict[str, Any]:
        answer = api.get(f"{base}/vehicles/{vin}", params={"extension": "onboardCapabilities"})
        assert answer.status_code == 200, answer.text
        return answer.json()["_embedded"]["extension"]["onboardCapabilities"]["remote"]  # type: ignore[no-any-return]

    electric, thermal, hybrid = remote(VINS[0]), remote(VINS[1]), remote(VINS[2])
    assert (
        electric["charging"]["supported"] is True and electric["preconditioning"]["parameters"]["programs"]["size"] == 4
    )
    assert thermal["charging"]["supported"] is False
    assert hybrid["charging"]["parameters"]["schedule"]["programs"]["size"] == 2
    assert hybrid["charging"]["parameters"]["preferences"]["type"] is False
    plain = api.get(f"{base}/vehicles/{VINS[0]}").json()
    assert plain["motorization"] == "Electric" and "_embedded" not in plain
    assert api.get(f"{base}/vehicles/VF3ZZZZZZZZ999999").status_code == 404


def test_a_vehicle_refuses_what_it_cannot_take(sim: Simulator, api: httpx.Client) -> None:
    sim.engine.configure_vehicle(VINS[1], motorization="Thermic")
    cbid = make_callback(api, types=("ElectricBatteryChargingRequest", "ThermalPreconditioning"))
    charge = {"label": "x", "charging": {"preferences": {"level": "Level2"}}}
    answer = api.post(f"/vehicles/{vid(sim, VINS[1])}/callbacks/{cbid}/remotes", json=charge)
    assert answer.status_code == 400 and "no remote charging" in answer.json()["message"]
    sim.engine.configure_vehicle(VINS[0], air_slots=2)
    air = {"label": "y", "preconditioning": {"airConditioning": {"programs": [air_set(3)]}}}
    answer = api.post(f"/vehicles/{vid(sim)}/callbacks/{cbid}/remotes", json=air)
    assert answer.status_code == 400 and "holds 2 preconditioning programs" in answer.json()["message"]


def test_a_made_up_fleet_is_mixed(tmp_path: Path) -> None:
    with Simulator(Settings(tmp_path / "mixed", vehicles=10)) as mixed:
        kinds = sorted(v.motorization for v in mixed.engine.vehicles.values())
    assert kinds == ["Electric"] * 6 + ["Hybrid"] * 2 + ["Thermic"] * 2
