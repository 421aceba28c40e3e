"""Seeing it run: Prometheus metrics from watch and webhook, notifications, explain."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.loopback import Dripper, Receiver
from support.runs import FLEET, VINS, apply

from reconciler.cli import main
from reconciler.commands import watch
from reconciler.commands.shell import Shell
from reconciler.run.session import Options
from reconciler.simulator.server import Simulator

NOTIFY_TOKEN = "notify-secret-41c9"


FAILING = VINS[2]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    h = Receiver()
    yield h
    h.close()


def with_notify(fleet: Path, url: str, on: str = "[failed, halted, drift, budget]") -> None:
    fleet.write_text(
        FLEET + f'notify:\n  - url: "{url}"\n    on: {on}\n    headers: {{Authorization: "Bearer ${{NOTIFY_TOKEN}}"}}\n'
    )


def families(url: str) -> dict[str, Any]:
    text = httpx.get(url, timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def labels_of(family: Any) -> set[tuple[str, ...]]:
    return {tuple(sorted(s.labels)) for s in family.samples}


def test_watch_serves_the_metrics_after_a_run_with_a_failed_action(
    sim: Simulator, fleet: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_TOKEN", NOTIFY_TOKEN)
    with_notify(fleet, hook.url)
    sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
    out, stop = _Lines(), threading.Event()
    options = Options(timeout=30)
    thread = threading.Thread(
        target=lambda: watch.run(
            Shell(os.environ, io.StringIO(), out, io.StringIO()),
            str(fleet),
            interval=3600,
            jitter=0,
            once=False,
            options=options,
            stop=stop,
            metrics_port=0,
        )
    )
    thread.start()
    try:
        url = out.wait_for("metrics")["url"]
        run = out.wait_for("run")
        assert run["code"] == 4 and run["failed"] >= 1
        found = families(url)
    finally:
        stop.set()
        thread.join(timeout=30)
    for name, labels in {
        "reconciler_runs": {("code",)},
        "reconciler_changes": {("action",)},
        "reconciler_actions": {("remote_type", "result")},
        "reconciler_drift_addresses": {()},
        "reconciler_pending_actions": {()},
        "reconciler_held_addresses": {("reason",)},
        "reconciler_api_requests": {("code", "method")},
        "reconciler_rollout_halted": {()},
        "reconciler_last_run_timestamp_seconds": {()},
        "reconciler_webhook_events": {("result",)},
    }.items():
        assert name in found, name
        assert labels_of(found[name]) == labels, name
    assert "process_resident_memory_bytes" in found and "python_info" in found
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in found.values() for s in f.samples}
    assert samples[("reconciler_runs_total", (("code", "4"),))] == 1
    failed = ("reconciler_actions_total", (("remote_type", "ThermalPreconditioning"), ("result", "failed")))
    assert samples[failed] == 1
    confirmed = ("reconciler_actions_total", (("remote_type", "ThermalPreconditioning"), ("result", "confirmed")))
    assert samples[confirmed] == 2
    assert samples[("reconciler_changes_total", (("action", "create"),))] == 1  # the callback
    assert samples[("reconciler_api_requests_total", (("code", "202"), ("method", "POST")))] >= 9
    assert samples[("reconciler_pending_actions", ())] == 0
    assert samples[("reconciler_last_run_timestamp_seconds", ())] > time.time() - 120
    assert not any(FAILING in str(s.labels) for f in found.values() for s in f.samples)  # no VIN labels
    # the run's notification: the failed vehicle named, the secret header carried
    headers, body = hook.requests[0]["headers"], hook.requests[0]["body"]
    assert headers["Authorization"] == f"Bearer {NOTIFY_TOKEN}"
    assert body["fleet"] == "0a123bc5d1e873066454b4d9" and body["code"] == 4 and body["run"]
    assert {e["kind"] for e in body["events"]} == {"failed"}
    assert any(FAILING in e["address"] and "VehicleConnectionTimeout" in e["detail"] for e in body["events"])
    assert out.wait_for("notify")["error"] is None
    assert NOTIFY_TOKEN not in out.text()


class _Lines(io.StringIO):
    """watch's JSON lines, waited for by event."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                item = json.loads(line)
                if item.get("event") == event:
                    return item  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"no {event} line in {self.text()}")


def service(*argv: str) -> subprocess.Popen[str]:
    """``reconciler ARGV…`` in its own process, its output read line by line."""
    command = [sys.executable, "-m", "reconciler", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)


def test_watch_as_a_service_serves_metrics_and_exits_0_on_sigterm(sim: Simulator, fleet: Path) -> None:
    process = service("watch", "-f", str(fleet), "--interval", "1h", "--metrics-port", "0")
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            item = json.loads(line)
            url = item.get("url", url)
            if item.get("event") == "run":
                break
        found = families(url)
        assert [s.value for s in found["reconciler_runs"].samples if s.name.endswith("_total")] == [1.0]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


def test_a_metrics_port_in_use_is_an_error_before_anything_runs(sim: Simulator, fleet: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mark = len(sim.served)
        code = main(["watch", "-f", str(fleet), "--once", "--metrics-port", str(port)])
    assert code == 1 and len(sim.served) == mark


def test_webhook_counts_events_by_result(sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", "wh-token-3a1")
    fleet.write_text(
        FLEET.replace('headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}')
    )
    assert apply(fleet, "--target", "callback.ops") == 0
    process = service("webhook", "-f", str(fleet), "--port", "0", "--metrics-port", "0")
    try:
        assert process.stdout is not None
        metrics_url = json.loads(process.stdout.readline())["url"]
        hook_url = json.loads(process.stdout.readline())["url"]
        assert httpx.post(hook_url, json={"callbackId": "x", "events": []}).status_code == 401
        found = families(metrics_url)
        values = {s.labels["result"]: s.value for s in found["reconciler_webhook_events"].samples if "_total" in s.name}
        assert values == {"recorded": 0, "duplicate": 0, "refused": 1, "error": 0}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


def test_apply_notifies_with_the_secret_header_and_never_prints_it(
    sim: Simulator, fleet: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFY_TOKEN", NOTIFY_TOKEN)
    with_notify(fleet, hook.url)
    assert apply(fleet) == 0
    assert hook.requests == []  # nothing of the kinds asked for: nothing posted
    sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
    with_notify(fleet, hook.url)
    fleet.write_text(fleet.read_text().replace('"07:30"', '"07:45"'))
    assert apply(fleet) == 4
    out = capsys.readouterr().out
    assert f"Notified {hook.url} of 1 event(s)." in out
    assert NOTIFY_TOKEN not in out
    headers, body = hook.requests[0]["headers"], hook.requests[0]["body"]
    assert headers["Authorization"] == f"Bearer {NOTIFY_TOKEN}" and headers["Content-Type"] == "application/json"
    assert [e["address"] for e in body["events"]] == [f"vehicle.{FAILING}.preconditioning"]
    assert apply(fleet, "--no-notify") == 4
    assert len(hook.requests) == 1


def test_a_notification_that_cannot_be_delivered_is_said_and_does_not_change_the_exit_code(
    sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFY_TOKEN", NOTIFY_TOKEN)
    refusing = Receiver(codes=[500, 500])
    try:
        with_notify(fleet, refusing.url + "?token=in-the-query")
        sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
        assert apply(fleet) == 4
        out = capsys.readouterr().out
        assert f"Notification to {refusing.url} failed: answered 500 (the run's result stands)." in out
        assert len(refusing.requests) == 2  # one retry
        assert "in-the-query" not in out
    finally:
        refusing.close()
    closed = Receiver()
    closed.close()
    with_notify(fleet, closed.url)
    assert apply(fleet) == 4
    assert f"Notification to {closed.url} failed: ConnectError" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["watch", "webhook"])
@pytest.mark.parametrize("port", ["-1", "65536", "abc", "1.5"])
def test_a_bad_metrics_port_is_a_usage_error(
    fleet: Path, command: str, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "-f", str(fleet), "--metrics-port", port]) == 1
    assert "--metrics-port" in capsys.readouterr().err


def test_a_metrics_host_that_does_not_resolve_is_an_error_before_anything_runs(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mark = len(sim.served)
    assert main(["watch", "-f", str(fleet), "--once", "--metrics-port", "0", "--metrics-host", "no such host"]) == 1
    assert "cannot serve metrics on no such host:0" in capsys.readouterr().err
    assert len(sim.served) == mark


def explain(fleet: Path, capsys: pytest.CaptureFixture[str], vin: str, *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["explain", vin, "-f", str(fleet), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def sections(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["address"].split(".", 2)[2]: s for s in document["sections"]}


def test_explain_a_converged_then_drifted_vehicle(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(fleet) == 0
    doc = explain(fleet, capsys, VINS[0])
    assert doc["summary"] == "converged" and doc["listed"] is True and doc["vid"]
    air = sections(doc)["preconditioning"]
    assert air["status"] == "converged" and air["source"] == {"vehicle": True, "profile": "commuter"}
    assert air["desired"] == air["recorded"] == air["observed"] and air["recorded_at"]
    assert doc["wakeups"]["used"] == 1  # counted conservatively: the first message to a vehicle never contacted
    assert doc["capabilities"]["motorization"] == "Electric"
    assert doc["refresh"] == {"requested": True, "ok": True, "error": None}
    sim.engine.drift(
        VINS[0], 1, {"enabled": True, "recurrence": "Daily", "start": "PT9H", "occurence": {"day": ["Mon"]}}
    )
    doc = explain(fleet, capsys, VINS[0])
    air = sections(doc)["preconditioning"]
    assert doc["summary"] == "drifted" and air["status"] == "drifted"
    assert air["drift"] and air["change"]["action"] == "send"
    assert sections(explain(fleet, capsys, VINS[0], "--no-refresh"))["preconditioning"]["status"] == "converged"


def test_explain_pending_failed_and_held(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(fleet, "--no-wait") == 0
    doc = explain(fleet, capsys, VINS[0], "--no-refresh")
    air = sections(doc)["preconditioning"]
    assert air["status"] == "pending" and air["pending"][0]["status"] == "Accepted"
    assert air["pending"][0]["age_seconds"] >= 0
    time.sleep(0.5)  # the actions end; a run looks once at what earlier runs left pending
    assert apply(fleet) == 0  # settles them
    sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
    fleet.write_text(FLEET.replace('"07:30"', '"07:45"'))
    assert apply(fleet) == 4
    doc = explain(fleet, capsys, FAILING, "--no-refresh")
    air = sections(doc)["preconditioning"]
    assert doc["summary"] == "failed" and air["status"] == "failed"
    assert air["last_failure"]["cause"] == "VehicleConnectionTimeout"
    assert [e["status"] for e in air["last_events"]][-1] == "Failed"
    sim.engine.configure_vehicle(VINS[0], asleep=True, wakeups_left=0)
    fleet.write_text(FLEET.replace('"07:30"', '"08:00"'))
    assert apply(fleet) == 4
    doc = explain(fleet, capsys, VINS[0], "--no-refresh")
    air = sections(doc)["preconditioning"]
    assert air["status"] == "held" and air["held"]["kind"] == "budget"
    assert doc["wakeups"]["spent"] is True


def test_explain_names_the_group_and_profile_and_refuses_a_stranger(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.write_text(
        FLEET.replace(
            "vehicles:\n  VF3ABCDE0FG123456: {profile: commuter}\n",
            "groups:\n  - {name: peugeots, match: {vinPrefix: VF3}, profile: commuter}\nvehicles:\n",
        ).replace("  VF3ABCDE0FG123457: {profile: commuter, immobilized: true}\n", "")
    )
    doc = explain(fleet, capsys, VINS[0], "--no-refresh")  # never refreshed: the fleet's listing is not known
    assert doc["listed"] is None and doc["summary"] == "not applied"
    assert sections(doc)["preconditioning"]["source"] == {"group": "peugeots", "profile": "commuter"}
    assert apply(fleet) == 0
    doc = explain(fleet, capsys, VINS[0])
    assert doc["fleet_file"] == {"entry": False, "group": "peugeots", "managed": True}
    assert sections(doc)["preconditioning"]["source"] == {"group": "peugeots", "profile": "commuter"}
    assert main(["explain", VINS[0], "-f", str(fleet), "--no-refresh"]) == 0
    assert "from:      group peugeots, profile commuter" in capsys.readouterr().out
    assert main(["explain", "VF7ZZZZZ0ZZ999999", "-f", str(fleet)]) == 1
    assert f"VF7ZZZZZ0ZZ999999 is not in {fleet}: no vehicles: entry names it" in capsys.readouterr().err
    assert main(["explain", "not-a-vin", "-f", str(fleet)]) == 1


def test_a_watch_run_that_ends_in_an_error_notifies_it(
    sim: Simulator, fleet: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFY_TOKEN", NOTIFY_TOKEN)
    with_notify(fleet, hook.url, on="[failed]")
    monkeypatch.setenv("RECONCILER_PASSWORD", "a-wrong-password")
    code = main(["watch", "-f", str(fleet), "--once"])
    assert code != 0
    [request] = hook.requests
    assert request["body"]["code"] == code
    [event] = request["body"]["events"]
    assert event["kind"] == "failed" and event["address"] == "run" and "401" in event["detail"]
    assert "a-wrong-password" not in json.dumps(request["body"])
    assert '"event": "notify"' in capsys.readouterr().out


def test_a_notify_endpoint_that_drips_its_answer_holds_apply_no_longer_than_its_deadline(
    sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFY_TOKEN", NOTIFY_TOKEN)
    dripping, hook = Dripper(), Receiver()
    try:
        fleet.write_text(
            FLEET
            + f'notify:\n  - {{url: "{dripping.url}", on: [failed], timeout: 2s}}\n'
            + f'  - {{url: "{hook.url}", on: [failed]}}\n'
        )
        sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
        started = time.monotonic()
        assert apply(fleet) == 4  # the run's code, whatever the notifications did
        took = time.monotonic() - started
        out = capsys.readouterr().out
        assert f"Notification to {dripping.url} failed: no answer within 2 s" in out
        assert f"Notified {hook.url} of 2 event(s)." in out  # posted at the same time, not after
        assert took < 12, took
    finally:
        dripping.close()
        hook.close()


def test_sigterm_during_a_dripping_notification_ends_watch_at_once(
    sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dripping = Dripper()
    try:
        fleet.write_text(FLEET + f'notify: [{{url: "{dripping.url}", on: [failed], timeout: 5m}}]\n')
        sim.engine.configure_vehicle(FAILING, fail_cause="VehicleConnectionTimeout")
        for once, code in ((["--once"], 4), ([], 0)):
            process = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "watch", "-f", str(fleet), "--timeout", "30", *once],
                env={**os.environ},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            seen = dripping.requests
            deadline = time.monotonic() + 30
            while dripping.requests == seen:
                assert time.monotonic() < deadline, "watch posted no notification"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            out, err = process.communicate(timeout=10)
            assert time.monotonic() - started < 3
            assert process.returncode == code, err
            assert "Traceback" not in err
            assert '"error": "interrupted before an answer came"' in out
    finally:
        dripping.close()


def test_a_vin_the_fleet_does_not_list_is_not_explained_from_a_group(
    sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.write_text(FLEET + "groups:\n  - {name: peugeots, match: {vinPrefix: [VF3]}, profile: commuter}\n")
    stranger = "VF3ZZZZZ0ZZ999999"  # a group's prefix, no entry, not in the fleet, not in the state
    for refresh in ("--refresh", "--no-refresh"):
        assert apply(fleet) == 0
        capsys.readouterr()
        assert main(["explain", stranger, "-f", str(fleet), refresh]) == 1
        err = capsys.readouterr().err
        assert f"{stranger} is not in fleet 0a123bc5d1e873066454b4d9: the API does not list it" in err
    assert main(["explain", VINS[0], "-f", str(fleet)]) == 0
