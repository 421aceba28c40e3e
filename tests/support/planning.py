"""Builders of planner inputs for tests: model values, no YAML, no I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.core.model import (
    AirProgram,
    Callback,
    ChargeProgram,
    Desired,
    DesiredVehicle,
    Recorded,
    RecordedCallback,
    RecordedVehicle,
    VehicleConfig,
)
from reconciler.core.sensitive import seal_callback

VIN = "VF3ABCDE0FG123456"
VIN2 = "VF3ABCDE0FG123457"
KEY = b"k" * 32
ALL_TYPES = ("ThermalPreconditioning", "ElectricBatteryChargingRequest", "Immobilization", "Stolen")
OPS = Callback("ops", "https://hooks.example.com/x", "ops", ALL_TYPES)
ROUTES = {t: "ops" for t in ALL_TYPES}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")


def air(slot: int, start: int = 450, days: tuple[str, ...] = WEEKDAYS, enabled: bool = True) -> AirProgram:
    return AirProgram(slot, start, days, enabled)


def charge(slot: int, start: int = 1320, end: int = 360, days: tuple[str, ...] = WEEKDAYS) -> ChargeProgram:
    return ChargeProgram(slot, start, end, days)


def desired(
    vehicles: dict[str, VehicleConfig], callbacks: tuple[Callback, ...] = (OPS,), prune: bool = False
) -> Desired:
    return Desired(
        fleet="F1",
        api_url="sandbox",
        callbacks={cb.label: cb for cb in callbacks},
        vehicles={vin: DesiredVehicle(vin, config, ROUTES) for vin, config in vehicles.items()},
        prune=prune,
    )


def recorded(
    vehicles: dict[str, VehicleConfig] | None = None, callbacks: tuple[Callback, ...] = (OPS,), **extra: Any
) -> Recorded:
    return Recorded(
        lineage="L1",
        serial=4,
        fingerprint_key=KEY,
        callbacks={cb.label: RecordedCallback(cb.label, f"cb-{cb.label}", seal_callback(cb, KEY)) for cb in callbacks},
        vehicles={vin: RecordedVehicle(vin, f"vid-{vin}", config) for vin, config in (vehicles or {}).items()},
        **extra,
    )


def matching(d: Desired) -> Recorded:
    """A recorded state equal to ``d``: what a successful apply leaves."""
    return recorded({vin: v.config for vin, v in d.vehicles.items()}, tuple(d.callbacks.values()))


def with_status(cb: Callback, status: str) -> Callback:
    return replace(cb, status=status)
