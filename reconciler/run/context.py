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
class Polls:
    """How the run learnt its actions' outcomes: status polls made, outcomes the receiver recorded."""

    polls: int = 0  # GETs of an action's status
    heard: int = 0  # outcomes found in the state, recorded by the webhook receiver
    followed: int = 0  # actions followed to an outcome or to their timeout
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, polls: int = 0, heard: int = 0, followed: int = 0) -> None:
        with self.lock:
            self.polls += polls
            self.heard += heard
            self.followed += followed


@dataclass
class RunContext:
    api: FleetApi
    store: StateStore
    desired: Desired
    fingerprint_key: bytes
    progress: Progress = field(default_factory=Progress)
    wait: bool = True
    timeout: float = 300.0  # seconds each action's outcome is waited for, from when it was sent
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None  # None: wait on ``stop``, waking up at once when it is set
    deadline: float | None = None  # on ``clock``: nothing is sent, nor waited for, after it (--deadline)
    listening: bool = False  # a webhook receiver records outcomes into the state: read them there
    poll_after: float = 60.0  # listening: poll an action only after this long without news of it
    polls: Polls = field(default_factory=Polls)

    @property
    def fleet_api(self) -> str:
        return f"/fleets/{self.desired.fleet}"

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def until(self, at: float) -> float:
        """``at``, or the run's deadline when that comes first."""
        return at if self.deadline is None else min(at, self.deadline)

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
