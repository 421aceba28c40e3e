"""What a vehicle cannot take, from its capabilities (DESIGN §9.2): pure, for the planner.

A change the vehicle cannot carry is never sent: a charging program to a car
without remote charging, more programs than it holds, a preference it does not
offer. What the capabilities do not say is taken as possible.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import addresses
from .model import Capabilities, ChargingPreferences

_NO_CHARGING = ("Thermic", "Hydrogen")  # motorizations with no battery to charge


def cannot_carry(caps: Capabilities | None, part: str, want: object) -> str | None:
    """Why a vehicle with ``caps`` cannot take ``want`` for the address ``part``, or None if it can."""
    if caps is None:
        return None
    if part == addresses.PRECONDITIONING:
        if caps.preconditioning is False:
            return "the vehicle has no remote preconditioning"
        return _too_many(want, caps.preconditioning_programs)
    if part in (addresses.CHARGING_SCHEDULE, addresses.CHARGING_PREFERENCES):
        if caps.charging is False or (caps.charging is None and caps.motorization in _NO_CHARGING):
            kind = f"a {caps.motorization.lower()} vehicle" if caps.motorization in _NO_CHARGING else "the vehicle"
            return f"{kind} has no remote charging"
        if part == addresses.CHARGING_SCHEDULE:
            if caps.charging_schedule is False:
                return "the vehicle takes no charging schedule"
            return _too_many(want, caps.charging_programs)
        if isinstance(want, ChargingPreferences):
            if want.level is not None and caps.charging_level is False:
                return "the vehicle takes no charging level preference"
            if want.type is not None and caps.charging_type is False:
                return "the vehicle takes no charging type preference"
        return None
    if part == addresses.STOLEN and caps.stolen is False:
        return "the vehicle has no remote stolen declaration"
    return None


def _too_many(want: object, size: int | None) -> str | None:
    if size is None or not isinstance(want, Mapping):
        return None
    if len(want) > size:
        return f"{len(want)} programs, and the vehicle holds at most {size}"
    return None
