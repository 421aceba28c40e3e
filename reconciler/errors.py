"""The reconciler's exceptions.

Every error a user can cause or meet derives from ``ReconcilerError``; the CLI's
error handler (``reconciler.cli``) turns each into ``Error: …`` on stderr and
the exit code the contract gives it. The tree::

    ReconcilerError                 exit 1
    ├── ConfigError                 fleet.yaml is unreadable, malformed or contradictory
    ├── SettingsError               a RECONCILER_* environment variable is malformed
    ├── StateError                  the state store is unreadable or of another version
    ├── PlanFileError               a saved plan cannot be read
    ├── ApiError                    the API answered with an error (its code and uuid)
    │   ├── AuthError               401/403: credentials, client_id, certificate or fleet refused
    │   ├── NotFoundError           404
    │   └── RateLimitedError        429 past what the run can wait for
    ├── UnreachableError            no answer: DNS, TLS, connection, timeout (on a retriable call)
    ├── UnknownOutcome              a POST may or may not have been carried out
    ├── Cancelled                   interrupted (Ctrl-C, SIGTERM) before a call was sent
    └── RetryableError              exit 3: try again later
        ├── StalePlanError          the saved plan's lineage or serial changed
        └── LockHeldError           another process holds the state lock
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file, 1-based as editors show it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a fleet file: where, what, and what to write instead."""

    location: Location
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        return f"{text}\n    {self.hint}" if self.hint else text


class ReconcilerError(Exception):
    """Base of every error the reconciler reports to its user."""

    exit_code = 1


class ConfigError(ReconcilerError):
    """fleet.yaml cannot be used; carries every problem found, not only the first.

    Its message says each problem once; the same mistake made many times (the
    same message but for the VIN or index it is at) is said MAX_ALIKE times,
    then counted with the lines where it is.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.location)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        body = "\n".join(_summarised(self.problems))
        super().__init__(f"{body}\n{count:,} {noun} in {self.problems[0].location.file}")


MAX_ALIKE = 10
_VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")
_INDEX = re.compile(r"\[\d+\]")


def alike(problem: Problem) -> tuple[str, str]:
    """What a problem says, but for the VIN or the list index it is at: the same mistake elsewhere."""
    return _INDEX.sub("[…]", _VIN.sub("…", problem.message)), problem.hint


def _summarised(problems: list[Problem]) -> list[str]:
    counts: dict[tuple[str, str], list[Problem]] = {}
    lines: list[str] = []
    for problem in problems:
        same = counts.setdefault(alike(problem), [])
        same.append(problem)
        if len(same) <= MAX_ALIKE:
            lines.append(str(problem))
    for (message, _), same in counts.items():
        if len(same) > MAX_ALIKE:
            rest = same[MAX_ALIKE:]
            where = ", ".join(str(p.location.line) for p in rest[:20]) + (" …" if len(rest) > 20 else "")
            lines.append(f"{rest[0].location.file}: … and {len(rest):,} more like “{message}” (lines {where})")
    return lines


class SettingsError(ReconcilerError):
    """A ``RECONCILER_*`` variable cannot be used (a number that is not one): an error, never a fallback."""


class StateError(ReconcilerError):
    """The state store cannot be read or written as expected."""


class LockLostError(StateError):
    """The run no longer holds the state lock (its session ended, another run took it): nothing more is sent."""


class PlanFileError(ReconcilerError):
    """A saved plan file cannot be read."""


class RetryableError(ReconcilerError):
    """Refused now, may succeed later (exit 3)."""

    exit_code = 3


class StalePlanError(RetryableError):
    """The state changed since the saved plan was made."""


class LockHeldError(RetryableError):
    """Another process holds the state lock."""


class ApiError(ReconcilerError):
    """The API refused a call; the message carries the API's code and uuid."""

    def __init__(self, status: int, message: str, *, code: int | None = None, uuid: str = "", call: str = "") -> None:
        self.status = status
        self.code = code
        self.uuid = uuid
        self.call = call
        detail = f"HTTP {status}" + (f", code {code}" if code is not None else "") + (f", uuid {uuid}" if uuid else "")
        super().__init__(f"{call}: {message} ({detail})" if call else f"{message} ({detail})")


class AuthError(ApiError):
    """401 or 403."""


class NotFoundError(ApiError):
    """404."""


class RateLimitedError(ApiError):
    """429 with a Retry-After longer than the run may wait."""


class UnreachableError(ReconcilerError):
    """The API did not answer (network, TLS or timeout), after retries where they are safe."""


class TLSError(UnreachableError):
    """The API's certificate (or ours) was refused: retrying changes nothing, the message says what to check."""


class Cancelled(ReconcilerError):
    """The run was interrupted before this call left: it was not sent."""


class UnknownOutcome(ReconcilerError):
    """A non-idempotent call was sent but its answer was lost: it may have been carried out."""
