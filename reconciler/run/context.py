"""What every part of an apply shares: the API, the state, the fleet file, the clock and the stop switch."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api.client import FleetApi
from ..core.model import Desired
from ..core.outcomes import Outcome, Progress
from ..core.sensitive import json_default
from ..state.base import StateStore


@dataclass
class RunContext:
    api: FleetApi
    store: StateStore
    desired: Desired
    fingerprint_key: bytes
    progress: Progress = field(default_factory=Progress)
    wait: bool = True
    timeout: float = 300.0
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None  # None: wait on ``stop``, waking up at once when it is set

    @property
    def fleet_api(self) -> str:
        return f"/fleets/{self.desired.fleet}"

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True when the run was interrupted (then it returns at once)."""
        if self.stop.is_set():
            return True
        if self.sleep is None:
            return self.stop.wait(max(0.0, seconds))
        self.sleep(seconds)
        return self.stop.is_set()

    def report(self, outcome: Outcome) -> Outcome:
        self.progress.done(outcome)
        return outcome


def sealed(body: Any) -> Any:
    """``body`` as the journal keeps it: secrets shown as ``(sensitive)``."""
    return json.loads(json.dumps(body, default=json_default))
