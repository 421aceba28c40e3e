"""Client-side pacing: stay under the API's rate limits instead of bouncing off them.

A token bucket refilled at the per-second limit the API announces in
``X-RateLimit-Limit-Second``; every answer's ``X-RateLimit-Remaining-Second``
caps the tokens, so the client and the server agree on what is left. A 429's
``Retry-After`` empties the bucket until then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

DEFAULT_RATE = 20.0  # requests per second until the API says otherwise
_EPSILON = 1e-9
HEADROOM = 0.97
_WINDOWS = (("second", 1.0), ("minute", 60.0))


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._cancelled = cancelled
        self._lock = threading.Lock()
        self.rate = DEFAULT_RATE
        self._tokens = DEFAULT_RATE  # full, as the server's bucket starts
        self._last = clock()
        self._blocked_until = 0.0

    def acquire(self) -> None:
        """Wait until one request may be sent (or the run is cancelled: the caller decides then)."""
        while not self._cancelled():
            with self._lock:
                now = self._clock()
                self._refill(now)
                wait = max(self._blocked_until - now, 0.0)
                if wait == 0.0 and self._tokens >= 1 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                if wait == 0.0:
                    wait = (1 - self._tokens) / self.rate
            # At least a millisecond: a wait rounded to nothing would spin forever.
            self._sleep(max(wait, 0.001))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the limit and what is left of it from an answer's headers."""
        with self._lock:
            # The tightest of the per-second and per-minute limits sets the pace, a
            # little under it: the server's bucket and ours refill on different
            # clocks, and a 429 costs a whole Retry-After.
            rates = [
                limit / seconds
                for window, seconds in _WINDOWS
                if (limit := _number(headers.get(f"x-ratelimit-limit-{window}")))
            ]
            if rates:
                self.rate = min(rates) * HEADROOM
            remaining = _number(headers.get("x-ratelimit-remaining-second"))
            if remaining is not None:
                self._refill(self._clock())
                self._tokens = min(self._tokens, remaining)

    def block(self, seconds: float) -> None:
        """The API said 429: send nothing for ``seconds``."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + seconds)
            self._tokens = 0.0
            self._last = max(self._last, self._blocked_until)

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
