"""Rate limits as the API applies them: a burst per second and a quota per day."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .clock import Clock


@dataclass
class Verdict:
    allowed: bool
    retry_after: int
    headers: dict[str, str]


class RateLimiter:
    """A token bucket of ``per_second`` (refilled continuously) and a daily count."""

    def __init__(self, clock: Clock, per_second: float = 50.0, per_day: int = 1_000_000) -> None:
        self.clock = clock
        self.per_second = per_second
        self.per_day = per_day
        self._tokens = per_second
        self._last = clock.now()
        self._day = int(clock.now() // 86400)
        self._used_today = 0
        self._lock = threading.Lock()

    def check(self) -> Verdict:
        with self._lock:
            now = self.clock.now()
            self._tokens = min(self.per_second, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            day = int(now // 86400)
            if day != self._day:
                self._day, self._used_today = day, 0
            if self._used_today >= self.per_day:
                retry = math.ceil((day + 1) * 86400 - now)
                return Verdict(False, retry, self._headers())
            if self._tokens < 1:
                retry = max(1, math.ceil((1 - self._tokens) / self.per_second))
                return Verdict(False, retry, self._headers())
            self._tokens -= 1
            self._used_today += 1
            return Verdict(True, 0, self._headers())

    def _headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit-Second": str(int(self.per_second)),
            "X-RateLimit-Remaining-Second": str(max(0, int(self._tokens))),
            "X-RateLimit-Limit-Day": str(self.per_day),
            "X-RateLimit-Remaining-Day": str(max(0, self.per_day - self._used_today)),
        }
