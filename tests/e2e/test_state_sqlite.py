"""The SQLite state store and state URLs: read-only opening, file modes, passwords kept out of messages."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.paths import MINIMAL

from reconciler.cli import main
from reconciler.state.backends import open_store
from reconciler.state.base import fresh_recorded


def test_state_in_a_read_only_directory_can_still_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rw"
    store = open_store(f"sqlite:///{folder / 'state.db'}", fleet="F1")
    store.initialize(fresh_recorded())
    store.record_vids({"VF3ABCDE0FG123456": "vid-1"})
    store.close()
    with read_only(folder) as view:
        again = open_store(f"sqlite:///{view / 'state.db'}", readonly=True, fleet="F1")
        assert again.read().vehicles["VF3ABCDE0FG123456"].vid == "vid-1"
        again.close()
        monkeypatch.setenv("RECONCILER_STATE", f"sqlite:///{view / 'state.db'}")
        assert main(["state", "list"]) == 0
        assert "serial 0" in capsys.readouterr().out


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` seen through a read-only directory: a chmod, or for root (who ignores modes) a bind mount."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield folder
        finally:
            folder.chmod(0o700)
        return
    view = folder.parent / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True).returncode == 0
    if not mounted or subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True).returncode:
        if mounted:
            subprocess.run(["umount", str(view)], check=False)
        pytest.skip("root, and no bind mount to make a read-only directory with")
    try:
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_state_migrate_quotes_the_line_to_paste_and_hides_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fleet.yaml").write_text(MINIMAL)
    target = tmp_path / "other dir" / "state.db"
    assert main(["state", "migrate", "--to", f"sqlite:///{target}"]) == 0
    out = capsys.readouterr().out
    assert f"export RECONCILER_STATE='sqlite:///{target}'" in out


def test_a_state_locked_past_its_busy_timeout_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from reconciler.state import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT", 0.3)
    (tmp_path / "fleet.yaml").write_text(MINIMAL)
    url = f"sqlite:///{tmp_path / '.reconciler' / 'state.db'}"
    open_store(url).close()  # created and migrated
    other = sqlite3.connect(tmp_path / ".reconciler" / "state.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writes, and takes its time
    try:
        assert main(["apply", "--auto-approve", "--no-refresh"]) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    err = capsys.readouterr().err
    assert "stayed locked by another process for more than 0.3 s" in err and str(tmp_path) in err
    assert "Traceback" not in err
