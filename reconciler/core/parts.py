"""The parts of a vehicle reconciler manages, one table entry each (DESIGN §3, §4).

A part is named in addresses (``vehicle.<VIN>.charging.schedule``), held in a
``VehicleConfig`` field (which is also its key in the state's and the plans'
JSON), set by actions of one remote type, written at one place of a vehicle's
body in fleet.yaml, and of one kind: programs in slots, preferences, or a
flag. What a part does follows from its kind, so a new part of a known kind
is an entry here plus its request body (``bodies``), where the status reports
it (``api.status_doc``), its field, and its place in the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from . import bodies, capabilities, codec, spec
from .model import Capabilities, ChargingPreferences, VehicleConfig


class Kind(StrEnum):
    """What a part holds, which decides how it is planned, recorded, read and written."""

    AIR_PROGRAMS = "air programs"  # preconditioning programs in slots; a removed slot is deleted
    CHARGE_PROGRAMS = "charge programs"  # charging programs in slots; a removed slot is sent disabled
    PREFERENCES = "preferences"  # charging level and type, each left as it is when not given
    FLAG = "flag"  # true or false, asserted


@dataclass(frozen=True)
class Part:
    """One managed part of a vehicle, and the facts every layer needs of it."""

    name: str  # in addresses and --target
    field: str  # the VehicleConfig attribute; the key in the state's, plans' and explain's JSON
    remote_type: str  # the remote type of the actions that set it
    kind: Kind
    written: tuple[str, ...]  # where a vehicle (profile, group) body holds it in fleet.yaml
    urgent: bool = False  # never waits for a wave, a window or a wake-up budget (DESIGN §9.3)
    # flags: the request body that sets it, and the summaries of setting and clearing it
    body: Callable[[bool], dict[str, Any]] | None = None
    words: tuple[str, str] = ("", "")
    # why a vehicle with these capabilities cannot take the value, or None
    cannot: Callable[[Capabilities, Any], str | None] = capabilities.nothing_against

    @property
    def programs(self) -> bool:
        """Programs in slots: pruned with the vehicle, drift and adoption slot by slot."""
        return self.kind in (Kind.AIR_PROGRAMS, Kind.CHARGE_PROGRAMS)

    def of(self, config: VehicleConfig) -> Any:
        """The part's value in ``config``; None: not managed."""
        return getattr(config, self.field)

    def into(self, config: VehicleConfig, value: Any) -> VehicleConfig:
        """``config`` with the part's value replaced."""
        return replace(config, **{self.field: value})

    def to_json(self, value: Any) -> Any:
        """The part's value as the state, plans and explain write it."""
        if value is None:
            return None
        if self.programs:
            return codec.programs_to_json(value)
        if self.kind == Kind.PREFERENCES:
            return codec.preferences_to_json(value)
        return value

    def from_json(self, data: Any) -> Any:
        if data is None:
            return None
        if self.kind == Kind.AIR_PROGRAMS:
            return {p["slot"]: codec.air_from_json(p) for p in data}
        if self.kind == Kind.CHARGE_PROGRAMS:
            return {p["slot"]: codec.charge_from_json(p) for p in data}
        if self.kind == Kind.PREFERENCES:
            return ChargingPreferences(data.get("level"), data.get("type"))
        return data

    def confirmed(self, config: VehicleConfig, after: Any) -> VehicleConfig:
        """``config`` once an action making the part ``after`` (a plan's or the journal's JSON) succeeded.

        Programs are replaced; preferences keep what ``after`` leaves out; a flag's
        ``after`` is ``{field: value}``, as plans show it.
        """
        if self.kind == Kind.PREFERENCES:
            old = self.of(config) or ChargingPreferences()
            return self.into(config, ChargingPreferences(after.get("level", old.level), after.get("type", old.type)))
        if self.kind == Kind.FLAG:
            return self.into(config, after[self.field])
        return self.into(config, self.from_json(after))


PRECONDITIONING = Part(
    "preconditioning",
    "preconditioning",
    spec.THERMAL_PRECONDITIONING,
    Kind.AIR_PROGRAMS,
    ("preconditioning",),
    cannot=capabilities.air,
)
CHARGING_SCHEDULE = Part(
    "charging.schedule",
    "charging_schedule",
    spec.CHARGING,
    Kind.CHARGE_PROGRAMS,
    ("charging", "schedule"),
    cannot=capabilities.charging_schedule,
)
CHARGING_PREFERENCES = Part(
    "charging.preferences",
    "charging_preferences",
    spec.CHARGING,
    Kind.PREFERENCES,
    ("charging", "preferences"),
    cannot=capabilities.charging_preferences,
)
IMMOBILIZATION = Part(
    "immobilization",
    "immobilized",
    spec.IMMOBILIZATION,
    Kind.FLAG,
    ("immobilized",),
    urgent=True,
    body=bodies.immobilization,
    words=("immobilize", "release immobilization"),
)
STOLEN = Part(
    "stolen",
    "stolen",
    spec.STOLEN,
    Kind.FLAG,
    ("stolen",),
    urgent=True,
    body=bodies.stolen,
    words=("declare stolen", "declare not stolen"),
    cannot=capabilities.stolen,
)

PARTS = (PRECONDITIONING, CHARGING_SCHEDULE, CHARGING_PREFERENCES, IMMOBILIZATION, STOLEN)
BY_NAME: Mapping[str, Part] = {part.name: part for part in PARTS}
REMOTE_TYPES = tuple(dict.fromkeys(part.remote_type for part in PARTS))  # the remote types parts are set by


def managed(config: VehicleConfig) -> Iterator[tuple[Part, Any]]:
    """Each part ``config`` manages, with its value."""
    for part in PARTS:
        value = getattr(config, part.field)
        if value is not None:
            yield part, value


def remote_types(config: VehicleConfig) -> tuple[str, ...]:
    """The remote types of the actions that set what ``config`` manages, in the table's order."""
    return tuple(dict.fromkeys(part.remote_type for part, _ in managed(config)))


def over(below: VehicleConfig, above: VehicleConfig) -> VehicleConfig:
    """``below`` with every part ``above`` manages replaced by ``above``'s (a layer of the fleet file)."""
    for part, value in managed(above):
        below = part.into(below, value)
    return below


def config_to_json(config: VehicleConfig) -> dict[str, Any]:
    """The state's form of a vehicle's configuration (unmanaged parts left out)."""
    return {part.field: part.to_json(value) for part, value in managed(config)}


def config_from_json(data: Mapping[str, Any]) -> VehicleConfig:
    return VehicleConfig(**{part.field: part.from_json(data.get(part.field)) for part in PARTS})
