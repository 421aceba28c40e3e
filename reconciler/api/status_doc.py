"""What a vehicle's status document says it holds, read leniently (DESIGN §6).

Status documents in the field carry quirks that must never read as drift:
null program entries, a missing ``occurence``, the legacy key
``preconditionning``, times padded as ``PT07H30M00S``, days in any order.
A part the document says nothing about is ``None`` (unknown), never "empty".
"""

from __future__ import annotations

from typing import Any

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


def _air_programs(status: dict[str, Any]) -> dict[int, AirProgram] | None:
    section = status.get("preconditioning") or status.get("preconditionning")
    if not isinstance(section, dict):
        return None
    air = section.get("airConditioning")
    if not isinstance(air, dict):
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
    for energy in status.get("energies") or []:
        if isinstance(energy, dict) and energy.get("type") == "Electric":
            charging = ((energy.get("extension") or {}).get("electric") or {}).get("charging")
            return charging if isinstance(charging, dict) else None
    return None


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
