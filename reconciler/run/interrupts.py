"""Ctrl-C and SIGTERM while apply runs: stop sending at once, keep track of what is in flight.

Before anything is sent, the first signal ends the run where it is (nothing to
record). Once apply sends, it sets ``stop`` instead: no new call leaves, waits
for outcomes end, what is in flight stays journaled as pending, and the report
is printed. A second signal quits at once: the journal already holds what the
next run needs to settle, so nothing is ever sent twice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal ended the run before anything was sent."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """The signal handlers of one run; ``stop`` is what the executor and the API client watch."""

    def __init__(
        self,
        stderr: TextIO,
        *,
        stop: threading.Event | None = None,
        quit_when_idle: bool = True,
        announce: str = "no new call will be sent; recording what is in flight",
    ) -> None:
        """``announce``: what the first signal is told (after the signal's name)."""
        self.stop = stop or threading.Event()
        self.signum = 0
        self.sending = False
        self._stderr = stderr
        self._quit_when_idle = quit_when_idle
        self._announce = announce

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as shells report a process a signal ended."""
        return 128 + self.signum if self.signum else 0

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM in this block (only the main thread may install handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in _SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop.is_set() and self.signum:
            self._say("Interrupted again: quitting now; the next run settles what was in flight.")
            os._exit(128 + signum)
        self.signum = signum
        self.stop.set()
        if self._quit_when_idle and not self.sending:
            raise Interrupted(signum)
        self._say(f"{signal.Signals(signum).name}: {self._announce} (interrupt again to quit at once).")

    def _say(self, text: str) -> None:
        try:
            self._stderr.write(f"\n{text}\n")
            self._stderr.flush()
        except (OSError, ValueError):
            pass
