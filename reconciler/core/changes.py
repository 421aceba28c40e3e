"""What a plan is made of: changes to send, drift found, work held back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .model import Source

FORMAT_VERSION = 1
ACTIONS = ("create", "update", "delete", "pause", "resume", "send")


@dataclass(frozen=True)
class Request:
    """One API call. ``{vid}``/``{cbid}`` stand in the path where apply resolves them."""

    method: str
    path: str
    body: Any = None


@dataclass(frozen=True)
class SensitiveField:
    """A secret inside a change: where, and whether its fingerprint changed."""

    path: str
    changed: bool


@dataclass(frozen=True)
class Change:
    """One API call that closes part of the gap between desired and current."""

    address: str
    action: str
    before: Any
    after: Any
    request: Request
    summary: str
    key: str = ""
    vin: str | None = None
    remote_type: str | None = None
    callback: str | None = None
    sensitive: tuple[SensitiveField, ...] = ()
    source: Source | None = None  # where the desired value comes from (group, profile, vehicle entry)


@dataclass(frozen=True)
class CannotApply:
    """What the vehicle cannot take (or a vehicle the fleet does not list): never sent, not a failure."""

    address: str
    reason: str


@dataclass(frozen=True)
class Drift:
    """A difference between what was recorded and what the API reports now."""

    address: str
    field: str
    recorded: Any
    observed: Any


@dataclass(frozen=True)
class Held:
    """An address left alone this time: an action is pending, or a failure is backed off."""

    address: str
    reason: str


@dataclass(frozen=True)
class Adoption:
    """Something already as desired that the state does not record yet: recorded, nothing sent.

    ``identity`` is the callback id or the vehicle's vid; ``after`` what is recorded
    for a vehicle address (a callback is recorded from the fleet file).
    """

    address: str
    identity: str
    after: Any = None


@dataclass(frozen=True)
class Plan:
    fleet: str
    lineage: str
    serial: int
    changes: tuple[Change, ...] = ()
    drift: tuple[Drift, ...] = ()
    held: tuple[Held, ...] = ()
    adoptions: tuple[Adoption, ...] = ()
    cannot_apply: tuple[CannotApply, ...] = ()
    refreshed: bool = False  # made against what the API reported, not only the state
    refresh_error: str = ""  # refresh was asked for and failed: planned against the recorded state only
    lookups: int = 0
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, int]:
        """How many changes of each action, every action listed."""
        counts = Counter(c.action for c in self.changes)
        return {action: counts.get(action, 0) for action in ACTIONS}

    @property
    def api_calls(self) -> int:
        """Calls apply makes: one per change plus VIN look-ups (status polls come on top)."""
        return len(self.changes) + self.lookups

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)
