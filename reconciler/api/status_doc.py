"""What a vehicle's status document says it holds, read leniently (DESIGN §6).

Status documents in the field carry quirks that must never read as drift:
null program entries, a missing ``occurence``, the legacy key
``preconditionning``, times padded as ``PT07H30M00S``, days in any order.
A part the document says nothing about is ``None`` (unknown), never "empty".
"""

from __future__ import annotations

from typing import Any

from ..core.addresses import CHARGING_PREFERENCES, CHARGING_SCHEDULE, PRECONDITIONING, STOLEN
from ..core.model import AirProgram, ChargeProgram, ChargingPreferences, VehicleConfig
from ..core.timeofday import TimeFormatError, api_days, parse_api_time

UNKNOWN_DAYS: tuple[str, ...] = ()  # the document did not say which days: compared as matching


def vehicle_config(status: dict[str, Any]) -> VehicleConfig:
    """The programs, preferences and stolen flag ``status`` reports."""
    charging = _charging(status)
    return VehicleConfig(
        preconditioning=_air_programs(status),
        charging_schedule=_charge_programs(charging) if charging is not None else None,
        charging_preferences=_preferences(charging) if charging is not None else None,
        immobilized=None,  # the status document does not report immobilization
        stolen=_stolen(status),
    )


def reported_at(status: dict[str, Any]) -> dict[str, str]:
    """When the vehicle reported each part (address part -> ``createdAt``), as far as the document says.

    A section's own ``createdAt`` (the air conditioning's, the electric
    energy's, the stolen state's), else the document's: a vehicle that slept
    reports what it held when it last spoke, however late the document is read.
    """
    whole = _text(status.get("updatedAt")) or _text(status.get("createdAt"))
    found: dict[str, str] = {}
    air = _air_section(status)
    if air is not None:
        found[PRECONDITIONING] = _text(air.get("createdAt")) or whole
    energy = _electric(status)
    if energy is not None:
        found[CHARGING_SCHEDULE] = found[CHARGING_PREFERENCES] = _text(energy.get("createdAt")) or whole
    stolen = status.get("stolen")
    found[STOLEN] = (_text(stolen.get("createdAt")) if isinstance(stolen, dict) else "") or whole
    return {part: at for part, at in found.items() if at}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _air_section(status: dict[str, Any]) -> dict[str, Any] | None:
    section = status.get("preconditioning") or status.get("preconditionning")
    air = section.get("airConditioning") if isinstance(section, dict) else None
    return air if isinstance(air, dict) else None


def _electric(status: dict[str, Any]) -> dict[str, Any] | None:
    for energy in status.get("energies") or []:
        if isinstance(energy, dict) and energy.get("type") == "Electric":
            return energy
    return None


def _air_programs(status: dict[str, Any]) -> dict[int, AirProgram] | None:
    air = _air_section(status)
    if air is None:
        return None
    programs: dict[int, AirProgram] = {}
    for entry in air.get("programs") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("slot"), int):
            continue  # null entries and garbage carry no program
        try:
            start = parse_api_time(str(entry.get("start", "")))
        except TimeFormatError:
            continue
        occurence = entry.get("occurence")
        days = api_days(occurence.get("day")) if isinstance(occurence, dict) else UNKNOWN_DAYS
        programs[entry["slot"]] = AirProgram(
            entry["slot"], start, days, entry.get("enabled", True) is not False, str(entry.get("recurrence", "Daily"))
        )
    return programs


def _charging(status: dict[str, Any]) -> dict[str, Any] | None:
    energy = _electric(status)
    if energy is None:
        return None
    charging = ((energy.get("extension") or {}).get("electric") or {}).get("charging")
    return charging if isinstance(charging, dict) else None


def _charge_programs(charging: dict[str, Any]) -> dict[int, ChargeProgram]:
    programs: dict[int, ChargeProgram] = {}
    for entry in (charging.get("schedule") or {}).get("programs") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("slot"), int):
            continue
        try:
            start, end = parse_api_time(str(entry.get("start", ""))), parse_api_time(str(entry.get("end", "")))
        except TimeFormatError:
            continue
        occurence = entry.get("occurence")
        days = api_days(occurence.get("day")) if isinstance(occurence, dict) else UNKNOWN_DAYS
        enabled = entry.get("enabled", True) is not False
        programs[entry["slot"]] = ChargeProgram(entry["slot"], start, end, days, enabled)
    return programs


def _preferences(charging: dict[str, Any]) -> ChargingPreferences | None:
    level, kind = charging.get("chargingPowerLevel"), charging.get("type")
    if level is None and kind is None:
        return None
    return ChargingPreferences(level, kind)


def _stolen(status: dict[str, Any]) -> bool:
    # StolenObj is only returned while the vehicle is reported stolen.
    stolen = status.get("stolen")
    return isinstance(stolen, dict) and stolen.get("state") is True
