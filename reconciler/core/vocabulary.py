"""The words the product compares and shows, defined once: mypy catches a misspelt one.

Each is a ``StrEnum``: a member is its own string, so plans, reports, the
state and metrics write the same text they always did.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a change does (DESIGN §4: a plan's ``changes[].action``)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PAUSE = "pause"
    RESUME = "resume"
    SEND = "send"


class When(StrEnum):
    """When a change goes: a plan's ``changes[].schedule.kind`` (DESIGN §10.1); every kind but NOW holds it."""

    NOW = "now"  # this run (the rollout's wave under way, when there is one)
    WAVE = "wave"  # a later rollout wave
    WINDOW = "window"  # when the change window opens
    BUDGET = "budget"  # when the vehicle's wake-up budget comes back (next month)
    HALTED = "halted"  # the rollout halted on its failure budget: after --continue-rollout
    BACKOFF = "backoff"  # it failed in a way that retrying cannot fix soon: after the backoff
    PENDING = "pending"  # an action of the address (or of its type on the vehicle) is under way


class RolloutState(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    HALTED = "halted"
    DONE = "done"


class NotifyKind(StrEnum):
    """What a notification tells of a run (``notify[].on``, ``events[].kind``)."""

    FAILED = "failed"  # an action or callback change failed (for watch, also a run ended in an error)
    HALTED = "halted"  # the rollout halted on its failure budget
    DRIFT = "drift"  # refresh found a difference made outside reconciler
    BUDGET = "budget"  # a change held by a spent wake-up budget
    HELD = "held"  # any other change left alone


class Result(StrEnum):
    """What became of one change of a run (the apply report, metrics, notifications)."""

    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"  # --no-wait: the API took it, its outcome is not known yet
    PENDING = "pending"
    FAILED = "failed"
    SKIPPED = "skipped"
    HELD = "held"  # not sent: the wake-up budget is spent, or the rollout halted (exit 4 or 5)
    WAITS = "waits"  # not sent yet, as planned: a later rollout wave, a closed change window
    CANNOT = "cannot apply"  # the vehicle cannot take it: never sent, not a failure
