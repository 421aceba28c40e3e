"""The webhook receiver: the simulator's deliveries resolve pending actions; duplicates and strangers."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.receiver import TOKEN, Receiver
from support.runs import FLEET, VINS, apply

from reconciler.cli import main
from reconciler.simulator.server import Simulator
from reconciler.state.sql import SQLStore
from reconciler.state.sqlite import open_sqlite


@pytest.fixture
def receiver(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
    r = Receiver()
    fleet.write_text(
        FLEET.replace("https://hooks.example.com/ops", r.url).replace(
            'headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}'
        )
    )
    yield r
    r.stop()


def pending(store: SQLStore) -> list[str]:
    return [e.address for e in store.journal(pending_only=True)]


def test_deliveries_resolve_pending_actions_without_polling(sim: Simulator, fleet: Path, receiver: Receiver) -> None:
    receiver.start(fleet)
    assert apply(fleet, "--no-wait") == 0
    store = open_sqlite(os.environ["RECONCILER_STATE"], readonly=True)
    try:
        deadline = time.monotonic() + 15
        while pending(store) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pending(store) == []
        entry = store.journal(address=f"vehicle.{VINS[0]}.preconditioning")[0]
        assert entry.status == "Success"
        assert [s for s, _, _ in store.events(entry.key)][-1] == "Success"
        assert store.read().vehicles[VINS[0]].config.preconditioning
    finally:
        store.close()
    delivered = [d for d in sim.deliverer.log if d.outcome == "delivered"]
    assert delivered and all(d.answers[-1] == "200" for d in delivered)
    assert main(["plan", "-f", str(fleet), "--no-refresh", "--detailed-exitcode"]) == 0


def post(receiver: Receiver, body: object, token: str = TOKEN) -> httpx.Response:
    return httpx.post(receiver.url, json=body, headers={"X-Webhook-Token": token})


def test_duplicates_are_recorded_once_and_strangers_refused(sim: Simulator, fleet: Path, receiver: Receiver) -> None:
    # The events are posted by hand here: the callback points off this machine, so the
    # simulator delivers nothing that could race them.
    fleet.write_text(
        FLEET.replace('headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}')
    )
    assert apply(fleet, "--no-wait", "--target", f"vehicle.{VINS[0]}.preconditioning") == 0
    receiver.start(fleet)
    store = receiver.store
    entry = store.journal(address=f"vehicle.{VINS[0]}.preconditioning")[0]
    cbid = store.read().callbacks["ops"].id
    event = {
        "remoteActionId": entry.remote_action_id,
        "vin": VINS[0],
        "eventDate": "2026-11-25T10:00:00Z",
        "remoteType": "ThermalPreconditioning",
        "eventStatus": {"type": "Done", "status": "Success"},
    }
    body = {"callbackId": cbid, "attributes": [], "events": [event]}
    assert post(receiver, body, token="wrong").status_code == 401
    assert post(receiver, {**body, "callbackId": "someone-else"}).status_code == 401
    first, second = post(receiver, body), post(receiver, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "1 new" in first.json()["message"] and "0 new" in second.json()["message"]
    assert [s for s, _, _ in store.events(entry.key)].count("Success") == 1
    assert post(receiver, {"callbackId": cbid, "events": [{"vin": "x"}]}).status_code == 400
    assert post(receiver, {"callbackId": cbid, "events": [event] * 50}).status_code == 413
    assert httpx.post(receiver.url, content=b"not json", headers={"X-Webhook-Token": TOKEN}).status_code == 400


def test_receiver_refuses_to_start_without_a_secret_header(fleet: Path) -> None:
    fleet.write_text(FLEET.replace('headers: {Authorization: "${HOOK_TOKEN}"}', "headers: {X-Plain: abc}"))
    assert main(["webhook", "-f", str(fleet)]) == 1


def test_strangers_are_refused_before_their_body_is_read(
    sim: Simulator, fleet: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.start(fleet)
    deep = b"[" * 100_000 + b"]" * 100_000
    for content in (b"not json", deep, b'{"callbackId": 1}'):
        answer = httpx.post(receiver.url, content=content, headers={"X-Webhook-Token": "wrong"})
        assert answer.status_code == 401  # never 400 or 500: nothing is said of the body to a stranger
    assert httpx.post(receiver.url, content=deep, headers={"X-Webhook-Token": TOKEN}).status_code == 413
    nested = b"[" * 2000 + b"]" * 2000
    answer = httpx.post(receiver.url, content=nested, headers={"X-Webhook-Token": TOKEN})
    assert answer.status_code == 400  # too deep for the parser: refused, not a RecursionError
    assert sum("refused a request" in r.getMessage() for r in caplog.records) >= 5
    assert not any(r.exc_info for r in caplog.records)


def test_statuses_outside_the_webhook_template_are_refused(sim: Simulator, fleet: Path, receiver: Receiver) -> None:
    assert apply(fleet, "--no-wait", "--target", f"vehicle.{VINS[0]}.preconditioning") == 0
    receiver.start(fleet)
    entry = receiver.store.journal(address=f"vehicle.{VINS[0]}.preconditioning")[0]
    cbid = receiver.store.read().callbacks["ops"].id

    def event(**status: str) -> dict[str, object]:
        return {"remoteActionId": entry.remote_action_id, "vin": VINS[0], "eventStatus": status}

    for wrong in (
        event(type="Done", status="Exploded"),
        event(type="Pending", status="Success"),
        event(type="Finished", status="Success"),
        event(type="Done", status="Failed", failureCause="Gremlins"),
    ):
        answer = post(receiver, {"callbackId": cbid, "events": [wrong]})
        assert answer.status_code == 400, wrong
    assert receiver.store.events(entry.key)[-1][0] != "Exploded"


def test_a_slow_or_cut_off_body_is_refused_in_one_log_line(
    sim: Simulator, fleet: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.start(fleet)
    host, port = receiver.url.split("//")[1].split("/")[0].split(":")
    head = (
        f"POST /hook HTTP/1.1\r\nHost: {host}\r\nX-Webhook-Token: {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    ).encode()
    with socket.create_connection((host, int(port))) as slow:
        slow.sendall(head)  # then nothing: the receiver gives up after its read timeout
        slow.settimeout(5)
        assert b" 408 " in slow.recv(1024).split(b"\r\n")[0]
    with socket.create_connection((host, int(port))) as cut:
        cut.sendall(head)
    deadline = time.monotonic() + 5
    while not any("cut off" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("cut off" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


def test_a_port_in_use_is_an_error_before_listening_is_announced(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
    fleet.write_text(
        FLEET.replace('headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}')
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["webhook", "-f", str(fleet), "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert "listening" not in captured.out and f"cannot listen on 127.0.0.1:{port}" in captured.err


DESK = """\
  desk:
    webhook:
      target: https://hooks.example.com/desk
      headers: {X-Webhook-Token: "${DESK_TOKEN}"}
    remoteTypes: [Horn]
"""


def test_an_event_counts_only_for_the_callback_that_carried_the_action(
    sim: Simulator, fleet: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A low-trust desk callback's secret must not record the ops callback's immobilization.
    monkeypatch.setenv("DESK_TOKEN", "desk-secret-0b2c")
    fleet.write_text(
        FLEET.replace(
            'headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}'
        ).replace("profiles:\n", DESK + "profiles:\n")
    )
    address = f"vehicle.{VINS[1]}.immobilization"
    assert apply(fleet, "--no-wait", "--target", address, "--target", "callback.desk") == 0
    receiver.start(fleet)
    store = receiver.store
    entry = store.journal(address=address)[0]
    ids = {label: cb.id for label, cb in store.read().callbacks.items()}
    event = {
        "remoteActionId": entry.remote_action_id,
        "vin": VINS[1],
        "remoteType": "Immobilization",
        "eventStatus": {"type": "Done", "status": "Success"},
    }
    forged = [
        ({"callbackId": ids["desk"], "events": [event]}, "desk-secret-0b2c", 401),  # the desk's own id and secret
        ({"callbackId": ids["ops"], "events": [event]}, "desk-secret-0b2c", 401),  # the ops id, the desk's secret
        ({"callbackId": ids["ops"], "events": [{**event, "vin": VINS[0]}]}, TOKEN, 400),  # another vehicle
        ({"callbackId": ids["ops"], "events": [{**event, "remoteType": "Stolen"}]}, TOKEN, 400),
        ({"callbackId": ids["ops"], "events": [{k: v for k, v in event.items() if k != "vin"}]}, TOKEN, 400),
    ]
    for body, token, status in forged:
        assert post(receiver, body, token=token).status_code == status, body
    assert [e.status for e in store.journal(address=address)] == ["Accepted"]  # nothing changed
    assert store.read().vehicles[VINS[1]].config.immobilized is None
    assert post(receiver, {"callbackId": ids["ops"], "events": [event]}).status_code == 200
    assert [e.status for e in store.journal(address=address)] == ["Success"]


@pytest.mark.parametrize(
    "status",
    [
        {"type": ["Done"], "status": "Success"},
        {"type": {"Done": 1}, "status": "Success"},
        {"type": "Done", "status": ["Success"]},
        {"type": "Done", "status": "Failed", "failureCause": {"x": 1}},
        {"type": None, "status": None},
    ],
)
def test_a_field_of_the_wrong_type_is_a_400_in_one_log_line(
    sim: Simulator, fleet: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture, status: dict[str, object]
) -> None:
    receiver.start(fleet)
    body = {"callbackId": "any", "events": [{"remoteActionId": "r", "vin": VINS[0], "eventStatus": status}]}
    answer = post(receiver, body)
    assert answer.status_code == 400
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refusals) == 1 and not any(r.exc_info for r in caplog.records)
    for extra in ({"vin": 17}, {"remoteType": ["Horn"]}):
        event = {"remoteActionId": "r", "eventStatus": {"type": "Done", "status": "Success"}, **extra}
        assert post(receiver, {"callbackId": "any", "events": [event]}).status_code == 400
