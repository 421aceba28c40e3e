"""What a vehicle cannot take, from its capabilities (DESIGN §9.2): pure, one check per part (``parts``).

A change the vehicle cannot carry is never sent: a charging program to a car
without remote charging, more programs than it holds, a preference it does not
offer. What the capabilities do not say is taken as possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Capabilities, ChargingPreferences

_NO_CHARGING = ("Thermic", "Hydrogen")  # motorizations with no battery to charge


def nothing_against(caps: Capabilities, want: Any) -> str | None:
    """A part no capability limits."""
    return None


def air(caps: Capabilities, want: Any) -> str | None:
    if caps.preconditioning is False:
        return "the vehicle has no remote preconditioning"
    return _too_many(want, caps.preconditioning_programs)


def charging_schedule(caps: Capabilities, want: Any) -> str | None:
    reason = _no_charging(caps)
    if reason is None and caps.charging_schedule is False:
        reason = "the vehicle takes no charging schedule"
    return reason or _too_many(want, caps.charging_programs)


def charging_preferences(caps: Capabilities, want: Any) -> str | None:
    reason = _no_charging(caps)
    if reason is None and isinstance(want, ChargingPreferences):
        if want.level is not None and caps.charging_level is False:
            return "the vehicle takes no charging level preference"
        if want.type is not None and caps.charging_type is False:
            return "the vehicle takes no charging type preference"
    return reason


def stolen(caps: Capabilities, want: Any) -> str | None:
    return "the vehicle has no remote stolen declaration" if caps.stolen is False else None


def _no_charging(caps: Capabilities) -> str | None:
    if caps.charging is False or (caps.charging is None and caps.motorization in _NO_CHARGING):
        kind = f"a {caps.motorization.lower()} vehicle" if caps.motorization in _NO_CHARGING else "the vehicle"
        return f"{kind} has no remote charging"
    return None


def _too_many(want: object, size: int | None) -> str | None:
    if size is None or not isinstance(want, Mapping):
        return None
    if len(want) > size:
        return f"{len(want)} programs, and the vehicle holds at most {size}"
    return None
