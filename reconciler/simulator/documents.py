"""Response bodies in the API's shapes (HAL links, collections, status documents)."""

from __future__ import annotations

import re
from typing import Any

from .clock import iso
from .engine import Action, Callback, Vehicle


class Links:
    """Builds absolute hrefs under the API base URL of the request, and says how collections page."""

    def __init__(self, base: str, fleet_id: str, *, page_size: int = 60, relative: bool = False) -> None:
        self.base = base.rstrip("/")
        self.fleet = f"{self.base}/fleets/{fleet_id}"
        self.page_size = page_size
        self.relative = relative  # paging links as references to the host's root

    def href(self, path: str) -> dict[str, str]:
        return {"href": f"{self.fleet}{path}"}


def callback_ref(links: Links, callback: Callback) -> dict[str, Any]:
    """CallbackRef: what POST, PUT and PUT status answer."""
    return {
        "_links": {"fleet": links.href(""), "callback": links.href(f"/remote/callbacks/{callback.id}")},
        "callbackId": callback.id,
        "status": callback.status,
    }


def callback(links: Links, cb: Callback) -> dict[str, Any]:
    """RemoteCallback."""
    return {
        "_links": {
            "self": links.href(f"/remote/callbacks/{cb.id}"),
            "fleet": links.href(""),
            "remotes": {**links.href("/vehicles/{vid}/callbacks/" + cb.id + "/remotes"), "templated": True},
        },
        "id": cb.id,
        "subscribe": cb.subscribe,
        "status": cb.status,
    }


def remote_ref(links: Links, action: Action) -> dict[str, Any]:
    """RemotePostResponse."""
    base = f"/vehicles/{action.vid}/callbacks/{action.cbid}"
    return {
        "_links": {
            "fleet": links.href(""),
            "callback": links.href(f"/remote/callbacks/{action.cbid}"),
            "remote": links.href(f"{base}/remotes/{action.id}"),
        },
        "remoteActionId": action.id,
        "type": action.remote_type,
    }


def remote_action(links: Links, action: Action) -> dict[str, Any]:
    """RemoteAction, with the remote body (and so its label) as posted."""
    base = f"/vehicles/{action.vid}/callbacks/{action.cbid}"
    document: dict[str, Any] = {
        "_links": {
            "self": links.href(f"{base}/remotes/{action.id}"),
            "fleet": links.href(""),
            "callback": links.href(f"/remote/callbacks/{action.cbid}"),
        },
        "remoteActionId": action.id,
        "type": action.remote_type,
        "status": action.status,
        "remote": action.remote,
    }
    if action.failure_cause:
        document["failureCause"] = action.failure_cause
    return document


def vehicle_item(links: Links, vehicle: Vehicle) -> dict[str, Any]:
    """VehicleItem."""
    return {
        "_links": {
            "self": links.href(f"/vehicles/{vehicle.vid}"),
            "fleet": links.href(""),
            "status": links.href(f"/vehicles/{vehicle.vid}/status"),
        },
        "id": vehicle.vid,
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "createdAt": iso(vehicle.updated_at),
        "updatedAt": iso(vehicle.updated_at),
    }


def status(links: Links, vehicle: Vehicle, reported_at: float) -> dict[str, Any]:
    """Status: the programs the vehicle holds, its charging state, stolen state, as reported at ``reported_at``.

    Quirks seen in the field can be switched on per vehicle: ``null_programs``,
    ``missing_occurence``, ``legacy_key`` (``preconditionning``), ``padded_times``.
    """
    quirks = set(vehicle.quirks)
    at = iso(reported_at)
    document: dict[str, Any] = {
        "_links": {
            "self": links.href(f"/vehicles/{vehicle.vid}/status"),
            "vehicle": links.href(f"/vehicles/{vehicle.vid}"),
            "fleet": links.href(""),
        },
        "createdAt": at,
        "updatedAt": at,
        "vin": vehicle.vin,
    }
    air: dict[str, Any] = {"createdAt": at, "status": "Disabled"}
    programs = [_air_program(p, quirks) for _, p in sorted(vehicle.air.items())]
    if "null_programs" in quirks:
        programs = [None, *programs]  # type: ignore[list-item]
    if programs:
        air["programs"] = programs
    document[("legacy_key" in quirks and "preconditionning") or "preconditioning"] = {"airConditioning": air}
    charging: dict[str, Any] = {
        "plugged": False,
        "status": "Disconnected",
        "chargingMode": "No",
    }
    if "level" in vehicle.preferences:
        charging["chargingPowerLevel"] = vehicle.preferences["level"]
    if "type" in vehicle.preferences:
        charging["type"] = vehicle.preferences["type"]
    schedule = [_charge_program(p, quirks) for _, p in sorted(vehicle.charge.items())]
    if schedule:
        charging["schedule"] = {"programs": schedule}
    if vehicle.motorization in ("Electric", "Hybrid"):
        document["energies"] = [
            {
                "createdAt": at,
                "type": "Electric",
                "level": 80.0,
                "autonomy": 250,
                "extension": {"electric": {"charging": charging}},
            }
        ]
    if vehicle.stolen:
        document["stolen"] = {
            "_links": {"self": links.href(f"/vehicles/{vehicle.vid}/stolen/current")},
            "id": "current",
            "state": True,
            "createdAt": iso(vehicle.stolen_since),
            "startedAt": iso(vehicle.stolen_since),
        }
    return document


def _air_program(program: dict[str, Any], quirks: set[str]) -> dict[str, Any]:
    shown = {**program, "start": _padded(program["start"]) if "padded_times" in quirks else program["start"]}
    if "missing_occurence" in quirks:
        shown.pop("occurence", None)
    return shown


def _charge_program(program: dict[str, Any], quirks: set[str]) -> dict[str, Any]:
    shown = dict(program)
    if "padded_times" in quirks:
        shown["start"], shown["end"] = _padded(program["start"]), _padded(program["end"])
    if "missing_occurence" in quirks:
        shown.pop("occurence", None)
    return shown


def _padded(duration: str) -> str:
    """``PT7H30M`` as some vehicles report it: ``PT07H30M00S``."""
    match = re.match(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$", duration)
    if not match:
        return duration
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return f"PT{hours:02d}H{minutes:02d}M{seconds:02d}S"


def capabilities(links: Links, vehicle: Vehicle, *, onboard: bool) -> dict[str, Any]:
    """VehicleCapabilities, with the onboardCapabilities extension when it is asked for."""
    document: dict[str, Any] = {
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "createdAt": iso(vehicle.updated_at),
    }
    if not onboard:
        return document
    electric = vehicle.motorization in ("Electric", "Hybrid")
    remote = {
        "preconditioning": {
            "supported": True,
            "scopeName": "remote:preconditioning:write",
            "parameters": {"programs": {"size": vehicle.air_slots}, "immediate": True},
        },
        "charging": {
            "supported": electric,
            "scopeName": "remote:charging:write",
            "parameters": {
                "immediate": {"start": electric, "stop": electric},
                "schedule": {
                    "programs": {"supported": electric, "size": vehicle.charge_slots if electric else 0},
                    "nextDelayedTime": electric,
                    "preferences": electric,
                },
                "preferences": {"level": electric and vehicle.charge_level, "type": electric and vehicle.charge_type},
            },
        },
        "door": {"supported": True, "scopeName": "remote:door:write"},
        "horn": {"supported": True, "scopeName": "remote:horn:write"},
        "lights": {"supported": True, "scopeName": "remote:lights:write"},
        "wakeup": {"supported": True, "scopeName": "remote:wakeup:write"},
        "navigation": {"supported": True, "scopeName": "remote:navigation:write"},
        "stolen": {"supported": True},
    }
    document["_embedded"] = {"extension": {"onboardCapabilities": {"data": ["data:telemetry"], "remote": remote}}}
    return document
