"""Unit tests stay unit tests: starting the simulator from here fails at once (the e2e folder is for that)."""

from __future__ import annotations

import pytest

from reconciler.simulator.server import Simulator


@pytest.fixture(autouse=True)
def no_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object, **__: object) -> None:
        raise AssertionError("a unit test started the simulator: it belongs in tests/e2e")

    monkeypatch.setattr(Simulator, "start", refused)
    monkeypatch.setattr(Simulator, "serve_forever", refused)
