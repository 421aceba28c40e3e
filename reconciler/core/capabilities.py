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
_FROM_A_GROUP = "from a group: exclude: {vins: [...]}"  # how a vehicle leaves a group's section


def _leave_out(section: str) -> str:
    """What to write instead: each reason ends with it (the reader has a file to fix)."""
    return f"; leave {section}: out for it ({_FROM_A_GROUP})"


def nothing_against(caps: Capabilities, want: Any) -> str | None:
    """A part no capability limits."""
    return None


def air(caps: Capabilities, want: Any) -> str | None:
    if caps.preconditioning is False:
        return "the vehicle has no remote preconditioning" + _leave_out("preconditioning")
    return _too_many(want, caps.preconditioning_programs, "preconditioning")


def charging_schedule(caps: Capabilities, want: Any) -> str | None:
    reason = _no_charging(caps)
    if reason is None and caps.charging_schedule is False:
        reason = "the vehicle takes no charging schedule" + _leave_out("charging.schedule")
    return reason or _too_many(want, caps.charging_programs, "charging.schedule")


def charging_preferences(caps: Capabilities, want: Any) -> str | None:
    reason = _no_charging(caps)
    if reason is None and isinstance(want, ChargingPreferences):
        if want.level is not None and caps.charging_level is False:
            return "the vehicle takes no charging level preference" + _leave_out("charging.preferences.level")
        if want.type is not None and caps.charging_type is False:
            return "the vehicle takes no charging type preference" + _leave_out("charging.preferences.type")
    return reason


def stolen(caps: Capabilities, want: Any) -> str | None:
    return "the vehicle has no remote stolen declaration" + _leave_out("stolen") if caps.stolen is False else None


def _no_charging(caps: Capabilities) -> str | None:
    if caps.charging is False or (caps.charging is None and caps.motorization in _NO_CHARGING):
        kind = f"a {caps.motorization.lower()} vehicle" if caps.motorization in _NO_CHARGING else "the vehicle"
        return f"{kind} has no remote charging" + _leave_out("charging")
    return None


def _too_many(want: object, size: int | None, section: str) -> str | None:
    if size is None or not isinstance(want, Mapping) or len(want) <= size:
        return None
    instead = f"; list {size} or fewer" if size else _leave_out(section)
    return f"{len(want)} programs, and the vehicle holds at most {size}{instead}"
