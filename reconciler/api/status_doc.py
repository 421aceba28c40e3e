"""What a vehicle's status document says it holds, read leniently (DESIGN §6).

Status documents in the field carry quirks that must never read as drift:
null program entries, a missing ``occurence``, the legacy key
``preconditionning``, times padded as ``PT07H30M00S``, days in any order.
A part the document says nothing about is ``None`` (unknown), never "empty".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import parts
from ..core.model import AirProgram, ChargeProgram, ChargingPreferences, VehicleConfig
from ..core.timeofday import TimeFormatError, api_days, parse_api_time

UNKNOWN_DAYS: tuple[str, ...] = ()  # the document did not say which days: compared as matching


def vehicle_config(status: dict[str, Any]) -> VehicleConfig:
    """The programs, preferences and stolen flag ``status`` reports (immobilization it does not)."""
    return VehicleConfig(**{parts.BY_NAME[name].field: read(status) for name, (read, _) in READ.items()})


def reported_at(status: dict[str, Any]) -> dict[str, str]:
    """When the vehicle reported each part (address part -> ``createdAt``), as far as the document says.

    A section's own ``createdAt`` (the air conditioning's, the electric
    energy's, the stolen state's), else the document's: a vehicle that slept
    reports what it held when it last spoke, however late the document is read.
    """
    whole = _text(status.get("updatedAt")) or _text(status.get("createdAt"))
    found: dict[str, str] = {}
    for name, (_, section) in READ.items():
        dated = section(status)
        if dated is None and name not in ALWAYS_SAID:
            continue  # the document says nothing of the part
        at = (_text(dated.get("createdAt")) if dated is not None else "") or whole
        if at:
            found[name] = at
    return found


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


def _stolen_section(status: dict[str, Any]) -> dict[str, Any] | None:
    stolen = status.get("stolen")
    return stolen if isinstance(stolen, dict) else None


def _in_charging(read: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def reader(status: dict[str, Any]) -> Any:
        charging = _charging(status)
        return read(charging) if charging is not None else None

    return reader


# Where the status document reports each part: how to read it, and the section that dates it.
# A part not here (immobilization) is not reported: always unknown.
READ: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], dict[str, Any] | None]]] = {
    parts.PRECONDITIONING.name: (_air_programs, _air_section),
    parts.CHARGING_SCHEDULE.name: (_in_charging(_charge_programs), _electric),
    parts.CHARGING_PREFERENCES.name: (_in_charging(_preferences), _electric),
    parts.STOLEN.name: (_stolen, _stolen_section),
}
ALWAYS_SAID = (parts.STOLEN.name,)  # a document without a stolen section says the vehicle is not stolen
