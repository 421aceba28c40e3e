"""What a command gets from the process that runs it: one frozen value the CLI builds, and hands on.

The environment, the three streams, what they are (a person at a terminal,
a pipeline), and the clock, decided once: a command never reaches for
``os.environ``, ``sys.stdout`` or ``datetime.now`` itself, so tests hand it
any of them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Shell:
    env: Mapping[str, str]
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    interactive: bool = False  # a person can answer on stdin (apply's approval)
    terminal: bool = False  # stderr is a terminal: a progress bar, not a line per action
    color: bool = False  # stdout is a terminal and colour is wanted
    clock: Callable[[], datetime] = _now  # what time it is (tests hand in another: windows, bakes, months)

    @classmethod
    def of_process(cls) -> Shell:
        """The shell of this process: ``os.environ`` and the standard streams."""
        env = os.environ
        return cls(
            env,
            sys.stdin,
            sys.stdout,
            sys.stderr,
            interactive=_is_terminal(sys.stdin),
            terminal=_is_terminal(sys.stderr),
            color=_wants_color(sys.stdout, env),
        )


def trace_http(stream: TextIO) -> Callable[[], None]:
    """Write the HTTP trace (logger ``reconciler.http``, one line a request) to ``stream``; return the undo."""
    trace = logging.getLogger("reconciler.http")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("http: %(message)s"))
    trace.addHandler(handler)
    trace.setLevel(logging.DEBUG)
    trace.propagate = False

    def undo() -> None:
        trace.removeHandler(handler)
        if not trace.handlers:
            trace.setLevel(logging.NOTSET)

    return undo


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _wants_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour on a terminal; never when NO_COLOR is set to something (no-color.org); always with FORCE_COLOR.

    ``FORCE_COLOR`` set to anything but ``0``/``false`` (force-color.org) colours a pipe too, for CI logs that
    render it; ``NO_COLOR`` wins over it, and ``--no-color`` over both.
    """
    if env.get("NO_COLOR"):  # set and not empty, as no-color.org says
        return False
    force = env.get("FORCE_COLOR")
    if force is not None and force.strip().lower() not in ("0", "false", "no"):
        return True
    if env.get("TERM") == "dumb":
        return False
    return _is_terminal(stream)
