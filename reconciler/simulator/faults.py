"""Switches that make the simulator misbehave the way real APIs do, for tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Counts are consumed one per request; set them from a test, or from the CLI flags."""

    rate_limit_storm: int = 0  # the next N requests get 429 Retry-After: 1
    server_errors: int = 0  # the next N requests get ``server_error_status`` before anything is done
    server_error_status: int = 503
    slow: float = 0.0  # seconds added before every answer
    late_posts: int = 0  # the next N remote POSTs create the action, then answer after ``late_delay``
    late_delay: float = 30.0
    # (method, path suffix) -> HTTP status: every such request is refused with it, e.g.
    # {("GET", "/remote/callbacks"): 400} breaks the callback listing for good.
    refuse: dict[tuple[str, str], int] = field(default_factory=dict)
    relative_links: bool = False  # paging links as references (/connectedcar/v3/…?pageToken=…), as HAL allows
    posts_over_quota: bool = False  # remote POSTs answer 429 with a Retry-After of hours: the day's quota is spent
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refused(self, method: str, path: str) -> int | None:
        """The status a request is refused with, if one is set for it."""
        for (verb, suffix), status in self.refuse.items():
            if verb == method and path.endswith(suffix):
                return status
        return None

    def take(self, name: str) -> bool:
        """Consume one of counter ``name``; True if there was one."""
        with self._lock:
            left = getattr(self, name)
            if left <= 0:
                return False
            setattr(self, name, left - 1)
            return True
