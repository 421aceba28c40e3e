"""``rollout.maxPerMinute``: a cap on the remote actions sent, on top of what the API's limits allow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..core.changes import Change
from ..core.outcomes import Outcome


class SendRate:
    """A token bucket of ``per_minute`` actions a minute, a second's worth of them at most at once.

    Asked before each action is sent (a ``Gate``): it waits for a token and
    lets the action go. ``pause`` waits and says whether the run was
    interrupted meanwhile; then the action goes no further (its send stops it).
    """

    def __init__(
        self,
        per_minute: int,
        pause: Callable[[float], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self._tokens = self.capacity
        self._pause = pause
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def __call__(self, change: Change) -> Outcome | None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return None
                wait = (1 - self._tokens) / self.rate
            if self._pause(wait):
                return None
