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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        """Consume one of counter ``name``; True if there was one."""
        with self._lock:
            left = getattr(self, name)
            if left <= 0:
                return False
            setattr(self, name, left - 1)
            return True
