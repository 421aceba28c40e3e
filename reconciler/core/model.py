"""The values the planner works on: what is desired, recorded and observed.

All records are frozen; derive new ones with ``dataclasses.replace``. Times are
minutes after midnight, days are tuples in week order, so two programs that
mean the same thing compare equal however they were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import urls
from .durations import Share
from .vocabulary import NotifyKind, RolloutState
from .wakeups import WakeupPolicy, WakeupUse


@dataclass(frozen=True)
class Secret:
    """A value taken from the environment (``${VAR}``): never shown, never stored."""

    variable: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return "(sensitive)"


@dataclass(frozen=True)
class Fingerprint:
    """What the state keeps of a secret: a keyed digest, enough to tell a change."""

    digest: str

    def __str__(self) -> str:
        return "(sensitive)"


Value = str | Secret | Fingerprint


@dataclass(frozen=True)
class Attribute:
    """A webhook attribute: a Header, Query or Body key/value the API adds to events."""

    kind: str
    key: str
    value: Value


@dataclass(frozen=True)
class RetryPolicy:
    policy: str
    retry_number: int | None = None
    retry_delay: int | None = None


@dataclass(frozen=True)
class BatchNotify:
    size: int
    time_window: int | None = None


@dataclass(frozen=True)
class Callback:
    """A remote callback as fleet.yaml declares it (or as the state recorded it)."""

    label: str
    target: Value
    name: str
    remote_types: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()
    retry_policy: RetryPolicy | None = None
    batch_notify: BatchNotify | None = None
    status: str = "Running"

    def same_body(self, other: Callback) -> bool:
        """True when a PUT of one would leave the other unchanged (status aside)."""
        return (
            self.target == other.target
            and self.name == other.name
            and self.remote_types == other.remote_types
            and self.attributes == other.attributes
            and self.retry_policy == other.retry_policy
            and self.batch_notify == other.batch_notify
        )


@dataclass(frozen=True)
class AirProgram:
    """A recurring air-conditioning (preconditioning) program in one slot."""

    slot: int
    start: int
    days: tuple[str, ...]
    enabled: bool = True
    recurrence: str = "Daily"


@dataclass(frozen=True)
class ChargeProgram:
    """A charging schedule program in one slot."""

    slot: int
    start: int
    end: int
    days: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class ChargingPreferences:
    level: str | None = None
    type: str | None = None


AirPrograms = Mapping[int, AirProgram]
ChargePrograms = Mapping[int, ChargeProgram]


@dataclass(frozen=True)
class VehicleConfig:
    """What is managed on one vehicle; None means "not managed", never "empty"."""

    preconditioning: AirPrograms | None = None
    charging_schedule: ChargePrograms | None = None
    charging_preferences: ChargingPreferences | None = None
    immobilized: bool | None = None
    stolen: bool | None = None


@dataclass(frozen=True)
class Source:
    """Where a vehicle's section comes from: its group, a profile, its own vehicle entry."""

    group: str | None = None
    profile: str | None = None
    vehicle: bool = False

    def to_json(self) -> dict[str, object]:
        shown: dict[str, object] = {}
        if self.group:
            shown["group"] = self.group
        if self.vehicle:
            shown["vehicle"] = True
        if self.profile:
            shown["profile"] = self.profile
        return shown

    def __str__(self) -> str:
        parts = ([f"group {self.group}"] if self.group else []) + (["vehicle entry"] if self.vehicle else [])
        return ", ".join(parts + ([f"profile {self.profile}"] if self.profile else []))


Sources = Mapping[str, Source]  # address part (preconditioning, charging.schedule …) -> where it comes from


@dataclass(frozen=True)
class DesiredVehicle:
    vin: str
    config: VehicleConfig
    # remote type -> label of the callback its actions go through
    routes: Mapping[str, str] = field(default_factory=dict)
    sources: Sources = field(default_factory=dict)
    explicit: bool = True  # listed under vehicles: (not only matched by a group)


@dataclass(frozen=True)
class Selector:
    """Which VINs a group's ``match`` (or ``exclude``) takes."""

    prefixes: tuple[str, ...] = ()
    vins: frozenset[str] = frozenset()
    everything: bool = False

    def covers(self, vin: str) -> bool:
        return self.everything or vin in self.vins or vin.startswith(self.prefixes)


@dataclass(frozen=True)
class Group:
    """A ``groups:`` entry, resolved: what it gives each vehicle it takes, and where each section comes from."""

    name: str
    match: Selector
    exclude: Selector | None
    config: VehicleConfig
    routes: Mapping[str, str]
    sources: Sources
    callback: str | None = None  # the group's own choice, for its vehicle entries' routes

    def takes(self, vin: str) -> bool:
        return self.match.covers(vin) and not (self.exclude is not None and self.exclude.covers(vin))


@dataclass(frozen=True)
class RolloutPolicy:
    """``rollout:``: waves of the vehicles with changes, a failure budget, a bake time between waves."""

    waves: tuple[Share, ...]
    bake: float = 0.0  # seconds
    max_failures: Share | None = None
    max_per_minute: int | None = None


@dataclass(frozen=True)
class Window:
    """A weekly span of time: from ``start`` on each of ``days`` to ``end`` (the next day if earlier)."""

    days: tuple[str, ...]
    start: int  # minutes after local midnight
    end: int


@dataclass(frozen=True)
class Windows:
    """``windows:``: when non-urgent changes may be sent, in the fleet's time zone."""

    timezone: str
    allow: tuple[Window, ...] = ()
    deny: tuple[Window, ...] = ()


NOTIFY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Notify:
    """A ``notify:`` entry: where a run's events are posted, which kinds, with which headers."""

    url: str | Secret
    on: tuple[NotifyKind, ...]
    headers: tuple[tuple[str, str | Secret], ...] = ()
    timeout: float = NOTIFY_TIMEOUT  # seconds for the whole notification, its retry included

    @property
    def shown(self) -> str:
        """The URL as messages may show it: ``${VAR}`` for a secret one, else without query or user."""
        if isinstance(self.url, Secret):
            return "${" + self.url.variable + "}"
        return urls.public_url(self.url)


@dataclass(frozen=True)
class Desired:
    """fleet.yaml, loaded, checked and resolved (profiles applied, secrets read).

    ``vehicles`` are the ``vehicles:`` entries (with what their group gives them);
    ``groups`` take the rest of the fleet's vehicles once the fleet's listing is
    known (``core.groups.members``).
    """

    fleet: str
    api_url: str
    callbacks: Mapping[str, Callback]
    vehicles: Mapping[str, DesiredVehicle]
    prune: bool = False
    source: str = "fleet.yaml"
    warnings: tuple[str, ...] = ()  # ``FILE:LINE:COL: what`` for what is valid but worth knowing
    groups: tuple[Group, ...] = ()
    rollout: RolloutPolicy | None = None
    windows: Windows | None = None
    wakeups: WakeupPolicy | None = None
    notify: tuple[Notify, ...] = ()
    # SHA-256 of what the file declares (brakes and notifications aside): a rollout's identity
    config_hash: str = ""
    variables: tuple[str, ...] = ()  # the ${VAR} names the file reads its secrets from, sorted
    sandbox_vehicles: int = 0  # api.vehicles: the sandbox's own mixed fleet, besides the vehicles listed


@dataclass(frozen=True)
class Capabilities:
    """What a vehicle can take (``GET /vehicles/{vin}``, onboard capabilities); None where it does not say."""

    motorization: str | None = None
    preconditioning: bool | None = None
    preconditioning_programs: int | None = None  # the most programs the vehicle holds
    charging: bool | None = None
    charging_schedule: bool | None = None
    charging_programs: int | None = None
    charging_level: bool | None = None
    charging_type: bool | None = None
    stolen: bool | None = None


@dataclass(frozen=True)
class RecordedCallback:
    """A callback the reconciler created or adopted: its id and last confirmed body."""

    label: str
    id: str
    config: Callback


@dataclass(frozen=True)
class RecordedVehicle:
    """The last configuration confirmed applied to a vehicle, and its vid.

    ``confirmed_at``: when each part's last action was confirmed (ISO-8601 UTC,
    by address part): a status report older than that says nothing of the part.
    """

    vin: str
    vid: str | None = None
    config: VehicleConfig = VehicleConfig()
    confirmed_at: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingAction:
    """A remote action accepted by the API whose outcome is not known yet.

    ``after`` is what its success makes the address (the journal's), ``path``
    the remote actions path it was posted to.
    """

    address: str
    key: str
    status: str
    remote_action_id: str | None = None
    sent_at: str = ""
    remote_type: str = ""
    after: Any = None
    path: str = ""


@dataclass(frozen=True)
class Backoff:
    """An address not to retry before ``until`` (ISO-8601 UTC), and why."""

    address: str
    cause: str
    until: str


@dataclass(frozen=True)
class Rollout:
    """A rollout under way (or halted, or done), as the state records it (DESIGN §9.3)."""

    id: str
    config_hash: str
    vins: tuple[str, ...]  # the vehicles that had changes when it began, in wave order
    ends: tuple[int, ...]  # wave k covers vins[:ends[k]]
    wave: int = 0  # the wave under way, from 0
    state: RolloutState = RolloutState.RUNNING
    wave_started_at: str = ""  # when the wave under way began (ISO-8601 UTC)
    wave_done_at: str = ""  # when its outcomes were all known and within the budget
    halt: str = ""  # why it halted: the wave, the vehicles that failed and their causes

    @property
    def waves(self) -> int:
        return len(self.ends)

    def wave_of(self, vin: str, index: Mapping[str, int] | None = None) -> int:
        """The wave ``vin`` belongs to; a vehicle that came later goes with the last."""
        position = (index or self.positions()).get(vin)
        if position is None:
            return self.waves - 1
        return next(k for k, end in enumerate(self.ends) if position < end)

    def positions(self) -> dict[str, int]:
        return {vin: n for n, vin in enumerate(self.vins)}


@dataclass(frozen=True)
class Recorded:
    """What earlier runs recorded in the state store."""

    lineage: str
    serial: int = 0
    fingerprint_key: bytes = b""
    callbacks: Mapping[str, RecordedCallback] = field(default_factory=dict)
    vehicles: Mapping[str, RecordedVehicle] = field(default_factory=dict)
    pending: Mapping[str, PendingAction] = field(default_factory=dict)
    backoffs: Mapping[str, Backoff] = field(default_factory=dict)
    # VIN -> vid of the fleet's vehicles as the last refresh listed them; None: never listed
    listing: Mapping[str, str] | None = None
    capabilities: Mapping[str, Capabilities] = field(default_factory=dict)
    rollout: Rollout | None = None
    wakeups: Mapping[str, WakeupUse] = field(default_factory=dict)  # this month's, by VIN


@dataclass(frozen=True)
class ObservedCallback:
    """A callback as the API lists it now (secrets already fingerprinted)."""

    id: str
    config: Callback


@dataclass(frozen=True)
class ObservedVehicle:
    """What a vehicle's status reports now; None where the status says nothing.

    ``reported_at``: when the vehicle reported each part (the status sections'
    ``createdAt``, by address part), where the document says.
    """

    vin: str
    vid: str | None = None
    config: VehicleConfig = VehicleConfig()
    reported_at: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """What a refresh read from the API."""

    callbacks: Mapping[str, ObservedCallback] = field(default_factory=dict)  # by label
    vehicles: Mapping[str, ObservedVehicle] = field(default_factory=dict)
    listing: Mapping[str, str] | None = None  # VIN -> vid of every vehicle the API lists in the fleet
    capabilities: Mapping[str, Capabilities] = field(default_factory=dict)  # read now for these VINs
    # key -> (status, failure cause) of pending actions, as the API reports them now
    actions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
