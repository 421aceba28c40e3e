"""What ``watch`` and ``webhook`` log: one line an event, JSON by default, text for people (DESIGN §10.5).

A JSON line is ``{"ts", "level", "event", "fleet", ["run",] …fields}``; a text
line is ``TS LEVEL event key=value …``. Everything the daemons say goes through
here — their own events, the standard ``logging`` records of their libraries
(uvicorn, the HTTP trace) and the human lines a run writes (``Lines``) — so a
log collector never meets a line it cannot parse.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from ..errors import ReconcilerError

FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")


class EventLog:
    """Log lines to ``out``, each flushed at once; safe from any thread."""

    def __init__(self, out: TextIO, fmt: str = "json", **context: Any) -> None:
        self.out = out
        self.fmt = fmt
        self.context = dict(context)  # fleet, run: on every line (null until known, the key always there)
        # Re-entrant: a signal handler (apply's interrupts) may log while the main thread is in log().
        self._lock = threading.RLock()

    def bind(self, **context: Any) -> None:
        """Set fields every later line carries (``run``: the run in progress, or the one just ended)."""
        with self._lock:
            self.context.update(context)

    def log(self, event: str, level: str = "info", **fields: Any) -> None:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            line = {"ts": ts, "level": level, "event": event, **self.context, **fields}
            self.out.write((_json(line) if self.fmt == "json" else _text(line)) + "\n")  # one write: one line
            self.out.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.log(event, "info", **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log(event, "warning", **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log(event, "error", **fields)


def refused_to_start(stream: TextIO, fmt: str, fleet: str | None, exc: ReconcilerError) -> int:
    """What kept a daemon from starting, as one ``error`` line on ``stream`` (stderr); its exit code."""
    EventLog(stream, fmt, fleet=fleet).error("error", message=str(exc), code=exc.exit_code)
    return exc.exit_code


def _json(line: dict[str, Any]) -> str:
    return json.dumps(line, default=str, ensure_ascii=False)


def _text(line: dict[str, Any]) -> str:
    head = f"{line.pop('ts')} {str(line.pop('level')).upper():7} {line.pop('event')}"
    rest = " ".join(f"{k}={_shown(v)}" for k, v in line.items() if v is not None)
    return f"{head} {rest}" if rest else head


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c in text for c in ' "=')) else text


class Lines:
    """A text stream whose every line becomes an event (``event``, ``message``): what a run tells a person."""

    def __init__(self, log: EventLog, event: str = "note", level: str = "info") -> None:
        self.log = log
        self.event = event
        self.level = level
        self._buffer = ""
        self._lock = threading.RLock()  # re-entrant, as EventLog's

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *done, self._buffer = self._buffer.split("\n")
        for line in done:
            if line.strip():
                self.log.log(self.event, self.level, message=line.strip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest.strip():
            self.log.log(self.event, self.level, message=rest.strip())

    def isatty(self) -> bool:
        return False


class _Records(logging.Handler):
    """Standard ``logging`` records as events: the record's ``event`` (``extra=``) or its logger's name."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(logging.DEBUG)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower() if record.levelname.lower() in LEVELS else "error"
            event = getattr(record, "event", None) or record.name.removeprefix("reconciler.")
            fields = dict(getattr(record, "fields", None) or {})
            self.log.log(event, level, message=record.getMessage(), **fields)
        except Exception:  # a log line must never end the daemon
            self.handleError(record)


# The loggers a daemon's libraries write to: all of them become events, none prints on its own.
_CAPTURED = ("reconciler", "reconciler.http", "uvicorn", "uvicorn.error", "uvicorn.access", "starlette", "httpx")


@contextmanager
def capturing(log: EventLog, level: int = logging.INFO) -> Iterator[None]:
    """While the block runs, every standard log record of the daemon's loggers is an event of ``log``.

    A logger set lower than ``level`` keeps its level: the HTTP trace (``reconciler.http`` at DEBUG
    with ``--debug``) goes on, as ``http`` events.
    """
    handler = _Records(log)
    saved = []
    for name in _CAPTURED:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
        if name == "httpx":
            logger.setLevel(logging.WARNING)  # its INFO lines carry URLs with the client_id
        elif logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, handlers, old_level, propagate in saved:
            logger.handlers, logger.level, logger.propagate = handlers, old_level, propagate
