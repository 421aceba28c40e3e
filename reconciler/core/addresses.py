"""Plan addresses (DESIGN §4): how each managed thing is named, and ``--target``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import spec

PRECONDITIONING = "preconditioning"
CHARGING_SCHEDULE = "charging.schedule"
CHARGING_PREFERENCES = "charging.preferences"
IMMOBILIZATION = "immobilization"
STOLEN = "stolen"
VEHICLE_PARTS = (PRECONDITIONING, CHARGING_SCHEDULE, CHARGING_PREFERENCES, IMMOBILIZATION, STOLEN)
# The remote type of each part's actions.
REMOTE_TYPES = {
    PRECONDITIONING: spec.THERMAL_PRECONDITIONING,
    CHARGING_SCHEDULE: spec.CHARGING,
    CHARGING_PREFERENCES: spec.CHARGING,
    IMMOBILIZATION: spec.IMMOBILIZATION,
    STOLEN: spec.STOLEN,
}
# The key of each part in a configuration's JSON (the state's, plan's ``before``/``after``).
JSON_KEYS = {
    PRECONDITIONING: "preconditioning",
    CHARGING_SCHEDULE: "charging_schedule",
    CHARGING_PREFERENCES: "charging_preferences",
    IMMOBILIZATION: "immobilized",
    STOLEN: "stolen",
}

_TARGET = re.compile(
    r"callback\.[A-Za-z0-9][A-Za-z0-9_.-]*\Z"
    r"|vehicle\.[A-Z0-9]{17}(\.(preconditioning|charging|charging\.schedule"
    r"|charging\.preferences|immobilization|stolen))?\Z"
)


def callback(label: str) -> str:
    return f"callback.{label}"


def vehicle(vin: str, part: str) -> str:
    return f"vehicle.{vin}.{part}"


def vehicle_prefix(vin: str) -> str:
    """``vehicle.<VIN>``: what a vehicle-wide backoff is recorded under."""
    return f"vehicle.{vin}"


def vin_of(address: str) -> str | None:
    """The VIN in a vehicle address, None for a callback address."""
    if address.startswith("vehicle."):
        return address.split(".", 2)[1]
    return None


def remote_type_of(address: str) -> str:
    """The remote type a vehicle address's actions have; "" for a callback address."""
    part = address.split(".", 2)[2] if address.startswith("vehicle.") and address.count(".") >= 2 else ""
    return REMOTE_TYPES.get(part, "")


def is_valid_target(target: str) -> bool:
    """Whether ``target`` names a callback, a vehicle, or one part of a vehicle."""
    return bool(_TARGET.match(target))


def matches(address: str, targets: Iterable[str]) -> bool:
    """True when ``address`` is one of ``targets`` or lies under one of them."""
    return any(address == t or address.startswith(t + ".") for t in targets)
