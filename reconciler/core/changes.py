"""What a plan is made of: changes to send, drift found, work held back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from .model import Source
from .parts import PARTS, Kind
from .vocabulary import Action, RolloutState, When

FORMAT_VERSION = 2  # 2: every change carries its schedule; held changes are changes too (DESIGN §10.1)
ACTIONS = tuple(Action)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a change goes, and why not now: a brake's answer (``core.brakes``).

    ``wave`` is the rollout wave it belongs to (from 1), ``at`` when it can go
    where that is known (ISO-8601 UTC: a window's opening, the month's end, a
    backoff's end, a wave's bake).
    """

    kind: When
    reason: str = ""
    wave: int | None = None
    at: str = ""

    @property
    def now(self) -> bool:
        return self.kind == When.NOW


NOW = Schedule(When.NOW)


@dataclass(frozen=True, slots=True)
class Request:
    """One API call. ``{vid}``/``{cbid}`` stand in the path where apply resolves them.

    A remote action's body starts with its ``label`` (the action's key); the
    rest of it (``content``) is shared by every vehicle that gets the same
    programs, so that a 100,000-vehicle plan holds a few dozen bodies, not 300,000.
    """

    method: str
    path: str
    content: Any = None
    label: str = ""

    @property
    def body(self) -> Any:
        """The body as sent."""
        if not self.label:
            return self.content
        return {"label": self.label, **self.content}


@dataclass(frozen=True)
class SensitiveField:
    """A secret inside a change: where, and whether its fingerprint changed."""

    path: str
    changed: bool


class Change(NamedTuple):
    """One API call that closes part of the gap between desired and current.

    An immutable record like the others, but a named tuple: a 100,000-vehicle
    plan makes 300,000 of them, three times faster and smaller than frozen
    dataclass instances (derive one with ``change._replace``).
    """

    address: str
    action: Action
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
    schedule: Schedule = NOW  # when it goes (the brakes' verdict); NOW unless one holds it
    removed: int = 0  # program slots it deletes (or, for charging, sends disabled): a reviewer must see them


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
class Unobserved:
    """An address whose report predates reconciler's last confirmed action on it: it says nothing of it.

    Planned against the recorded state, never shown as drift (DESIGN §10.2).
    """

    address: str
    reported_at: str  # the vehicle's report of the part
    confirmed_at: str  # reconciler's last action on it was confirmed then

    @property
    def reason(self) -> str:
        return (
            f"not reported since {self.confirmed_at}: the vehicle's last report ({self.reported_at}) "
            "predates the change confirmed then"
        )


@dataclass(frozen=True)
class Held:
    """An address left alone this time, and why (``kind``, a ``When`` but NOW): the plan's summary list.

    Every change a brake holds is one (its diff is in ``changes``, with its
    schedule); so is an address whose own action is still under way.
    """

    address: str
    reason: str
    kind: When = When.PENDING


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
class RolloutView:
    """Where a rollout stands, for the plan's reader (waves counted from 1)."""

    state: RolloutState
    wave: int
    waves: int
    vehicles: int  # in the wave under way
    held: int  # addresses held for later waves (or by the halt)
    next_wave_at: str = ""  # ISO-8601 UTC: when the wave under way has baked
    halt: str = ""
    bake: float = 0.0  # seconds between waves


@dataclass(frozen=True)
class WindowView:
    """Whether the change window is open now, and until or from when (ISO-8601 UTC, and as the zone reads it)."""

    open: bool
    opens_at: str = ""
    closes_at: str = ""
    described: str = ""
    ignored: bool = False  # --ignore-windows: closed or not, nothing waits for it


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
    unobserved: tuple[Unobserved, ...] = ()
    refreshed: bool = False  # made against what the API reported, not only the state
    refresh_error: str = ""  # refresh was asked for and failed: planned against the recorded state only
    lookups: int = 0
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    rollout: RolloutView | None = None
    window: WindowView | None = None

    def summary(self) -> dict[Action, int]:
        """How many changes of each action, every action listed."""
        counts = Counter(c.action for c in self.changes)
        return {action: counts.get(action, 0) for action in ACTIONS}

    def notable(self) -> dict[str, int]:
        """What a reviewer must not miss (DESIGN §10.1), counted over every change, whatever its schedule."""
        counts = dict.fromkeys(NOTABLE, 0)
        removed = 0
        for change in self.changes:
            removed += change.removed
            if change.action == Action.DELETE:
                counts["callbacks_deleted"] += 1
            elif change.remote_type in _FLAG_TYPES and isinstance(change.after, dict):  # only flags set them
                for name, (on, off) in _FLAGS.items():
                    if name in change.after:
                        counts[on if change.after[name] else off] += 1
        counts["slots_deleted"] = removed
        return counts

    @cached_property
    def going(self) -> tuple[Change, ...]:
        """The changes that go this run (the wave under way, when there is a rollout); worked out once."""
        if all(c.schedule.now for c in self.changes):
            return self.changes  # no brake held anything: the plan itself, not a copy
        return tuple(c for c in self.changes if c.schedule.now)

    @property
    def api_calls(self) -> int:
        """Calls apply makes now: one per change that goes plus VIN look-ups (status polls come on top)."""
        return len(self.going) + self.lookups

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


NOTABLE = ("slots_deleted", "immobilize", "release", "stolen_set", "stolen_cleared", "callbacks_deleted")
_FLAGS = {"immobilized": ("immobilize", "release"), "stolen": ("stolen_set", "stolen_cleared")}
_FLAG_TYPES = frozenset(part.remote_type for part in PARTS if part.kind == Kind.FLAG)
