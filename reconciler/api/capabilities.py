"""Reading a vehicle's capabilities (``VehicleCapabilities``, its ``onboardCapabilities`` extension).

Lenient as the API asks clients to be: a part the document does not carry is
unknown (None), never "unsupported".
"""

from __future__ import annotations

from typing import Any

from ..core.model import Capabilities


def from_api(document: Any) -> Capabilities:
    """The capabilities a ``GET /vehicles/{vin}?extension=onboardCapabilities`` answer describes."""
    if not isinstance(document, dict):
        return Capabilities()
    embedded = document.get("_embedded") or {}
    onboard = (embedded.get("extension") or {}).get("onboardCapabilities") or embedded.get("onboardCapabilities")
    remote = _dict(_dict(onboard).get("remote"))
    air = _dict(remote.get("preconditioning"))
    charging = _dict(remote.get("charging"))
    charging_parameters = _dict(charging.get("parameters"))
    schedule = _dict(_dict(charging_parameters.get("schedule")).get("programs"))
    preferences = _dict(charging_parameters.get("preferences"))
    motorization = document.get("motorization")
    return Capabilities(
        motorization=motorization if isinstance(motorization, str) else None,
        preconditioning=_flag(air.get("supported")),
        preconditioning_programs=_size(_dict(_dict(air.get("parameters")).get("programs")).get("size")),
        charging=_flag(charging.get("supported")),
        charging_schedule=_flag(schedule.get("supported")),
        charging_programs=_size(schedule.get("size")),
        charging_level=_flag(preferences.get("level")),
        charging_type=_flag(preferences.get("type")),
        stolen=_flag(_dict(remote.get("stolen")).get("supported")),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
