"""The shared state on a real PostgreSQL server: end to end, across processes, and migration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support.runs import VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.service.webhook_receiver import record_event
from reconciler.simulator.server import Simulator
from reconciler.state.backends import open_store
from reconciler.state.base import JournalEntry, fresh_recorded


@pytest.fixture
def on_postgres(fleet: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECONCILER_STATE", postgres_url)
    return fleet


def test_apply_converges_on_postgres_and_second_run_sends_nothing(sim: Simulator, on_postgres: Path) -> None:
    assert apply(on_postgres) == 0
    assert len(remote_posts(sim)) == 10
    mark = len(sim.served)
    assert apply(on_postgres) == 0
    assert mutations(sim, mark) == []
    assert main(["plan", "-f", str(on_postgres), "--detailed-exitcode"]) == 0


def test_lock_held_elsewhere_exits_3(
    sim: Simulator, on_postgres: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = open_store(postgres_url, fleet="0a123bc5d1e873066454b4d9")
    holder.initialize(fresh_recorded())
    lock_id = holder.acquire_lock("pipeline 7")
    try:
        assert apply(on_postgres) == 3
        assert "locked by pipeline 7" in capsys.readouterr().err
        assert main(["state", "unlock", lock_id, "-f", str(on_postgres)]) == 1  # its session is open
        assert "still open" in capsys.readouterr().err
        assert main(["state", "unlock", lock_id, "--force", "-f", str(on_postgres)]) == 0
        assert apply(on_postgres) == 0
    finally:
        holder.close()


def test_state_migrates_between_backends_both_ways(
    sim: Simulator,
    fleet: Path,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert apply(fleet) == 0
    assert main(["state", "migrate", "--to", postgres_url, "-f", str(fleet)]) == 0
    assert main(["state", "migrate", "--to", postgres_url, "-f", str(fleet)]) == 1  # not empty any more
    assert "pass --force" in capsys.readouterr().err
    monkeypatch.setenv("RECONCILER_STATE", postgres_url)
    mark = len(sim.served)
    assert apply(fleet) == 0
    assert mutations(sim, mark) == []  # the copied state knows everything
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert main(["state", "migrate", "--to", back, "-f", str(fleet)]) == 0
    original = open_store(postgres_url, readonly=True).read()
    copied = open_store(back, readonly=True).read()
    assert (copied.lineage, copied.serial, copied.callbacks, copied.vehicles) == (
        original.lineage,
        original.serial,
        original.callbacks,
        original.vehicles,
    )


def test_concurrent_webhook_receivers_record_each_event_once(postgres_url: str) -> None:
    setup = open_store(postgres_url)
    setup.initialize(fresh_recorded())
    address = f"vehicle.{VINS[0]}.immobilization"
    setup.journal_start(
        JournalEntry(
            "k1", address, VINS[0], "ops", "Immobilization", "POST", {"path": "/x", "body": {}}, {"immobilized": True}
        )
    )
    setup.journal_update("k1", "Accepted", remote_action_id="r1")
    event = {
        "remoteActionId": "r1",
        "vin": VINS[0],
        "eventDate": "2026-11-25T10:00:00Z",
        "remoteType": "Immobilization",
        "eventStatus": {"type": "Done", "status": "Success"},
    }
    stores = [open_store(postgres_url) for _ in range(4)]
    results: list[bool] = []
    start = threading.Barrier(len(stores))

    def receive(store: object) -> None:
        start.wait()
        entry = store.journal_by_action("r1")  # type: ignore[attr-defined]
        results.append(record_event(store, entry, event))  # type: ignore[arg-type]

    threads = [threading.Thread(target=receive, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert [s for s, _, _ in setup.events("k1")].count("Success") == 1
    assert [row[3] for row in setup.history(address)].count("Success") == 1
    for store in [setup, *stores]:
        store.close()


def test_password_never_printed(postgres_url: str, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_password = postgres_url.replace("postgresql://reconciler@", "postgresql://reconciler:hunter2@")
    assert main(["state", "migrate", "--to", with_password, "-f", str(fleet)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and ":***@" in out


PASSWORD = "Zq7@Kx9/Pw5"


def pieces(secret: str) -> set[str]:
    """Every part of three characters or more of ``secret``: none may be shown."""
    return {secret[i:j] for i in range(len(secret)) for j in range(i + 3, len(secret) + 1)}


def spellings(postgres_url: str) -> dict[str, str]:
    """The same database, its password written each way a user writes one (the server trusts any)."""
    socket_query = postgres_url.split("?", 1)[1]
    database = postgres_url.split("@", 1)[1].split("?", 1)[0]  # /name
    encoded = PASSWORD.replace("@", "%40").replace("/", "%2F")
    return {
        "userinfo, as typed": f"postgresql://reconciler:{PASSWORD}@{database}?{socket_query}",
        "userinfo, encoded": f"postgresql://reconciler:{encoded}@{database}?{socket_query}",
        "query": f"postgresql://reconciler@{database}?{socket_query}&password={encoded}",
        "query, as typed": f"postgresql://reconciler@{database}?{socket_query}&password={PASSWORD}",
        "unreachable host": f"postgresql://reconciler:{encoded}@no-such-host.invalid:5432/db",
        "userinfo, as typed, over TCP": f"postgresql://reconciler:{PASSWORD}@127.0.0.1:1/db",
        "conninfo": f"host=/tmp user=reconciler password={PASSWORD} dbname=x",
    }


@pytest.mark.parametrize(
    "spelling",
    [
        "userinfo, as typed",
        "userinfo, as typed, over TCP",
        "userinfo, encoded",
        "query",
        "query, as typed",
        "unreachable host",
        "conninfo",
    ],
)
def test_no_piece_of_a_postgresql_password_is_ever_printed(
    sim: Simulator,
    fleet: Path,
    postgres_url: str,
    spelling: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = spellings(postgres_url)[spelling]
    assert apply(fleet) == 0  # a SQLite state to migrate from
    said = []
    assert main(["state", "migrate", "-f", str(fleet), "--to", url]) in (0, 1)
    said.append(capsys.readouterr())
    monkeypatch.setenv("RECONCILER_STATE", url)
    for command in (["plan", "--no-refresh"], ["state", "list"], ["state", "show", "callback.ops"], ["apply"]):
        main([*command, "-f", str(fleet), *(["--auto-approve"] if command == ["apply"] else [])])
        said.append(capsys.readouterr())
    shown = "\n".join(c.out + c.err for c in said)
    assert "Traceback" not in shown
    leaked = {p for p in pieces(PASSWORD) if p in shown}
    assert not leaked, (leaked, shown[-2000:])


def test_a_connection_dropped_mid_apply_is_an_error_naming_the_state_and_nothing_is_sent_twice(
    sim: Simulator, on_postgres: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    import psycopg

    sim.engine.latency = 0.4
    database = postgres_url.split("@", 1)[1].split("?", 1)[0].lstrip("/")

    def cut() -> None:
        deadline = time.monotonic() + 20
        while not remote_posts(sim) and time.monotonic() < deadline:
            time.sleep(0.01)
        admin_url = postgres_url.replace(f"/{database}?", "/postgres?")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )

    cutter = threading.Thread(target=cut)
    cutter.start()
    code = apply(on_postgres)
    cutter.join()
    err = capsys.readouterr().err
    assert code == 1, err
    assert "lost the connection to the state postgresql://" in err and "Traceback" not in err
    assert apply(on_postgres) == 0  # the next run settles what the cut one left, and goes on
    bodies = [(s.path, str({k: v for k, v in s.body.items() if k != "label"})) for s in remote_posts(sim)]
    assert len(bodies) == len(set(bodies)) == 10
