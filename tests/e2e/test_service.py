"""Running as a service (DESIGN §10.5): probes, JSON logs, graceful stop, several watchers and receivers.

The daemons run as real processes against the simulator over mutual TLS; the
shared state is a real PostgreSQL server (``postgres_url``), whose connections
are cut with ``pg_terminate_backend`` and whose lock holder is SIGKILLed.
"""

from __future__ import annotations

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
from support.runs import FLEET, VINS, apply, remote_posts

from reconciler.cli import main
from reconciler.errors import LockLostError
from reconciler.simulator.server import Simulator
from reconciler.state.backends import open_store
from reconciler.state.base import JournalEntry, fresh_recorded

TOKEN = "wh-token-5d2e"
HOOKED = FLEET.replace('headers: {Authorization: "${HOOK_TOKEN}"}', 'headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}')


class Daemon:
    """``reconciler ARGV…`` in its own process; its stdout read as JSON lines by a thread."""

    def __init__(self, *argv: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "reconciler", *argv]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw.append(line)
            self.lines.append(json.loads(line))  # a line that is not JSON fails the test, in the end

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                seen += 1
                if predicate(line):
                    return line
            if self.process.poll() is not None and seen == len(self.lines):
                break
            time.sleep(0.02)
        raise AssertionError(f"no such line; had {self.raw[-5:]!r}")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def every_line_is_an_event(daemon: Daemon, fleet: str = "0a123bc5d1e873066454b4d9") -> None:
    assert daemon.raw, "nothing logged"
    for line in daemon.lines:
        assert {"ts", "level", "event"} <= set(line) and line["level"] in ("debug", "info", "warning", "error")
        assert line.get("fleet") == fleet, line


# probes and logs


def test_webhook_answers_its_probes_and_logs_only_json(
    sim: Simulator, fleet: Path, monkeypatch: pytest.MonkeyPatch, daemons: list[Daemon]
) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
    fleet.write_text(HOOKED)
    assert apply(fleet, "--target", "callback.ops") == 0
    receiver = Daemon("webhook", "-f", str(fleet), "--port", "0", "--metrics-port", "0")
    daemons.append(receiver)
    url = receiver.wait_for(lambda line: line["event"] == "listening")["url"]
    metrics = receiver.events("metrics")[0]["url"]
    assert httpx.get(url + "healthz").json() == {"status": "ok"}
    assert httpx.get(url + "readyz").json() == {"status": "ready"}
    assert httpx.post(url, json={"callbackId": "x", "events": []}).status_code == 401
    base = metrics.removesuffix("/metrics")
    assert httpx.get(base + "/healthz").status_code == 200 and httpx.get(base + "/readyz").status_code == 200
    assert httpx.get(base + "/nowhere").status_code == 404
    text = httpx.get(metrics).text
    assert "reconciler_build_info{" in text and "_created" not in text
    refused = receiver.wait_for(lambda line: line["event"] == "refused")
    assert refused["level"] == "warning" and refused["status"] == 401
    code, err = receiver.stop()
    assert code == 0 and err == ""  # nothing on stderr: every line is an event on stdout
    assert receiver.lines[-1]["event"] == "stop"
    every_line_is_an_event(receiver)


def test_watch_serves_probes_beside_its_metrics_and_logs_every_run_as_json(
    sim: Simulator, fleet: Path, daemons: list[Daemon]
) -> None:
    watcher = Daemon("watch", "-f", str(fleet), "--interval", "1s", "--jitter", "0", "--metrics-port", "0")
    daemons.append(watcher)
    metrics = watcher.wait_for(lambda line: line["event"] == "metrics")["url"]
    first = watcher.wait_for(lambda line: line["event"] == "run")
    assert first["code"] == 0 and first["confirmed"] == 11 and first["level"] == "info" and first["run"]
    base = metrics.removesuffix("/metrics")
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/readyz").json() == {"status": "ready"}
    text = httpx.get(metrics).text
    assert 'reconciler_build_info{python="' in text
    assert "reconciler_run_duration_seconds_bucket{" in text and "_created" not in text
    # A broken fleet file: not ready (and said why), the runs logged as errors; fixed, ready again.
    good = fleet.read_text()
    fleet.write_text(good.replace("Level3", "Level9"))
    broken = httpx.get(base + "/readyz")
    assert broken.status_code == 503 and "fleet.yaml:18:28:" in broken.json()["reason"]
    failed = watcher.wait_for(lambda line: line["event"] == "run" and line["level"] == "error")
    assert "Level9" in failed["error"]
    fleet.write_text(good)
    assert httpx.get(base + "/readyz").status_code == 200
    code, err = watcher.stop()
    assert code == 0 and err == ""
    runs = {line["run"] for line in watcher.lines if line["event"] == "action"}
    assert len(runs) == 1 and runs == {first["run"]}  # the first run's actions carry its run id
    assert all(line["run"] for line in watcher.lines)  # every line: the run it belongs to, or follows
    every_line_is_an_event(watcher)


def test_text_logs_for_people(sim: Simulator, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "-f", str(fleet), "--once", "--log-format", "text"]) == 0
    lines = capsys.readouterr().out.splitlines()
    run = next(line for line in lines if " run " in line)
    assert run.split()[1] == "INFO" and "code=0" in run and "fleet=0a123bc5d1e873066454b4d9" in run


# graceful stop


def test_sigterm_mid_apply_stops_sending_records_what_is_in_flight_and_exits_0_within_10_s(
    sim: Simulator, fleet: Path, daemons: list[Daemon]
) -> None:
    sim.faults.slow = 0.3  # every answer takes 0.3 s: a run of 11 changes, one at a time, takes seconds
    watcher = Daemon("watch", "-f", str(fleet), "--interval", "1h", "--parallelism", "1", "--timeout", "120")
    daemons.append(watcher)
    deadline = time.monotonic() + 60
    while not remote_posts(sim) and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    code, err = watcher.stop()
    assert code == 0 and err == "" and time.monotonic() - started < 10
    run = watcher.events("run")[0]
    assert run["confirmed"] + run["pending"] + run["skipped"] == 11 and run["skipped"] > 0
    sent = len(remote_posts(sim))
    sim.faults.slow = 0.0
    assert apply(fleet) == 0  # the next run settles what was in flight and sends the rest, once
    bodies = [
        (s.path, json.dumps(s.body["preconditioning"] if "preconditioning" in s.body else s.body.get("charging")))
        for s in remote_posts(sim)
    ]
    assert len(bodies) == len(set(bodies)) and sent < len(bodies)


# several watchers, one PostgreSQL state


def _admin(postgres_url: str) -> tuple[str, str]:
    database = postgres_url.split("@", 1)[1].split("?", 1)[0].split("/", 1)[1]
    return postgres_url.replace(f"/{database}?", "/postgres?", 1), database


def test_a_run_that_lost_its_lock_session_journals_and_so_sends_nothing_more(postgres_url: str) -> None:
    import psycopg

    holder, other = open_store(postgres_url, fleet="F"), open_store(postgres_url, fleet="F")
    holder.initialize(fresh_recorded())
    lock_id = holder.acquire_lock("first")
    entry = JournalEntry("k1", "vehicle.V.immobilization", "V", "ops", "Immobilization", "POST", {}, None)
    holder.journal_start(entry)  # while the lock is held: journaled
    with psycopg.connect(postgres_url, autocommit=True) as db:  # only the lock's own session ends
        (backend,) = db.execute("SELECT backend FROM lock").fetchone()  # type: ignore[misc]
        db.execute("SELECT pg_terminate_backend(%s)", (backend,))
    second = other.acquire_lock("second")  # the advisory lock went with the session
    with pytest.raises(LockLostError, match="no longer holds the lock"):
        holder.journal_start(
            JournalEntry("k2", "vehicle.W.immobilization", "W", "ops", "Immobilization", "POST", {}, None)
        )
    assert [e.key for e in other.journal()] == ["k1"]  # what it journaled before is there for the next holder
    other.release_lock(second)
    holder.release_lock(lock_id)
    holder.close()
    other.close()


def test_an_apply_whose_lock_session_is_cut_stops_sending_at_once_and_the_next_run_sends_nothing_twice(
    sim: Simulator, fleet: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    monkeypatch.setenv("RECONCILER_STATE", postgres_url)
    sim.faults.slow = 0.2  # one call at a time, 0.2 s each: the run sends for seconds
    cut_at: list[int] = []

    def cut() -> None:
        deadline = time.monotonic() + 60
        while not remote_posts(sim) and time.monotonic() < deadline:
            time.sleep(0.01)
        with psycopg.connect(postgres_url, autocommit=True) as db:  # only the lock's session, not the store's
            db.execute("SELECT pg_terminate_backend(backend) FROM lock")
        cut_at.append(len(remote_posts(sim)))

    cutter = threading.Thread(target=cut)
    cutter.start()
    started = time.monotonic()
    code = apply(fleet, "--parallelism", "1")
    cutter.join()
    err = capsys.readouterr().err
    assert code == 1 and "no longer holds the lock" in err, err
    assert len(remote_posts(sim)) <= cut_at[0] + 1  # at most the call journaled before the cut
    assert time.monotonic() - started < 30  # no wait went on for the actions in flight
    sim.faults.slow = 0.0
    assert apply(fleet) == 0  # the next run settles what the cut one sent, and sends the rest
    assert _distinct_posts(sim, 0) == (10, 10)


def _distinct_posts(sim: Simulator, since: int) -> tuple[int, int]:
    """How many remote POSTs since ``since``, and how many distinct ones (path and body, the label aside)."""
    posts = [
        (s.path, json.dumps({k: v for k, v in s.body.items() if k != "label"}, sort_keys=True))
        for s in remote_posts(sim, since)
    ]
    return len(posts), len(set(posts))


def _converged(sim: Simulator, since: int, expected: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent, distinct = _distinct_posts(sim, since)
        assert sent == distinct, "an action was sent twice"
        if distinct >= expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{_distinct_posts(sim, since)} of {expected} changes sent")


def _first_post_after(sim: Simulator, since: int) -> None:
    deadline = time.monotonic() + 60
    while not remote_posts(sim, since) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert remote_posts(sim, since), "nothing was sent"


def test_two_watchers_on_one_postgresql_state_converge_through_a_cut_and_a_kill_sending_nothing_twice(
    sim: Simulator, fleet: Path, postgres_url: str, daemons: list[Daemon]
) -> None:
    import psycopg

    env = {"RECONCILER_STATE": postgres_url}
    argv = ("watch", "-f", str(fleet), "--interval", "2s", "--jitter", "0", "--parallelism", "1", "--timeout", "60")
    first, second = Daemon(*argv, env=env), Daemon(*argv, env=env)
    daemons += [first, second]
    _converged(sim, 0, 10)  # the whole fleet (10 remote actions), once, by whichever took the lock first

    def edit(old: str, new: str) -> int:
        fleet.write_text(fleet.read_text().replace(old, new))
        return len(sim.served)

    # Every database connection cut while a run sends: that run stops, both watchers live on, the rest is sent once.
    sim.faults.slow = 0.2
    mark = edit('"07:30"', '"07:45"')
    _first_post_after(sim, mark)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    _converged(sim, mark, 3)
    lost = [line for d in (first, second) for line in d.events("run") if line["level"] == "error"]
    assert lost and all("state" in line["error"] for line in lost)  # said, not a traceback
    assert first.process.poll() is None and second.process.poll() is None

    # The sending watcher SIGKILLed mid-run: the other takes over on its next interval and finishes, once.
    mark = edit('"07:45"', '"08:00"')
    _first_post_after(sim, mark)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        (pid,) = db.execute("SELECT pid FROM lock").fetchone()  # type: ignore[misc]
    holder, survivor = (first, second) if first.process.pid == pid else (second, first)
    assert holder.process.pid == pid
    holder.process.kill()
    _converged(sim, mark, 3)
    sim.faults.slow = 0.0
    time.sleep(3)  # another interval: nothing more to send
    assert _distinct_posts(sim, mark) == (3, 3)
    code, err = survivor.stop()
    assert code == 0 and err == ""
    every_line_is_an_event(survivor)


def test_three_receivers_on_one_postgresql_state_record_every_event_once_given_it_three_times(
    sim: Simulator, fleet: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, daemons: list[Daemon]
) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("RECONCILER_STATE", postgres_url)
    fleet.write_text(HOOKED)
    assert apply(fleet, "--target", "callback.ops") == 0
    store = open_store(postgres_url)
    callback_id = store.callbacks()["ops"].id
    actions = 300
    for n in range(actions):
        vin = VINS[n % len(VINS)]
        key = f"k{n}"
        store.journal_start(
            JournalEntry(key, f"vehicle.{vin}.immobilization", vin, "ops", "Immobilization", "POST", {}, None)
        )
        store.journal_update(key, "Accepted", remote_action_id=f"r{n}")
    receivers = [Daemon("webhook", "-f", str(fleet), "--port", "0") for _ in range(3)]
    daemons += receivers
    urls = [r.wait_for(lambda line: line["event"] == "listening")["url"] for r in receivers]

    def event(n: int) -> dict[str, Any]:
        status = {"type": "Done", "status": "Success"}
        return {
            "remoteActionId": f"r{n}",
            "vin": VINS[n % len(VINS)],
            "remoteType": "Immobilization",
            "eventStatus": status,
        }

    batches = [[event(n) for n in range(start, start + 10)] for start in range(0, actions, 10)]
    new = []
    lock = threading.Lock()

    def sender(mine: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(headers={"X-Webhook-Token": TOKEN}, timeout=30) as client:
            for batch in mine:
                for url in urls:  # every event to every receiver: three times
                    answer = client.post(url, json={"callbackId": callback_id, "events": batch})
                    assert answer.status_code == 200, answer.text
                    with lock:
                        new.append(int(answer.json()["message"].split()[0]))

    threads = [threading.Thread(target=sender, args=(batches[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(new) == actions and len(new) == 3 * len(batches)  # each event new once, whichever receiver got it
    assert store.count_pending() == 0
    for n in range(actions):
        assert [s for s, _, _ in store.events(f"k{n}")].count("Success") == 1
    store.close()
    for receiver in receivers:
        code, err = receiver.stop()
        assert code == 0 and err == ""
        every_line_is_an_event(receiver)
