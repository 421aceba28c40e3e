"""The shared state on a real PostgreSQL server: end to end, across processes, and migration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from e2e import VINS, apply, mutations, remote_posts

from reconciler.cli import main
from reconciler.service.webhook_receiver import record_event
from reconciler.simulator.server import Simulator
from reconciler.state.base import JournalEntry, fresh_recorded, open_store


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
