"""JSON forms of model values: what plans show as before/after, what the state stores.

Programs are written as fleet.yaml writes them (``"07:30"``, day names), so a
reviewer reads a plan in the file's own terms. Secrets are written with
``sealed``: the state keeps ``{"fingerprint": …}``, plans ``(sensitive)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import bodies
from .model import (
    AirProgram,
    AirPrograms,
    Attribute,
    BatchNotify,
    Callback,
    Capabilities,
    ChargeProgram,
    ChargePrograms,
    ChargingPreferences,
    Fingerprint,
    RetryPolicy,
    Secret,
    Value,
)
from .sensitive import SHOWN
from .timeofday import parse_time, to_hhmm

_SECTIONS = {"Header": "headers", "Query": "query", "Body": "body"}
_KINDS = {v: k for k, v in _SECTIONS.items()}


def shown(value: Value) -> Any:
    """How plans show a value: secrets as ``(sensitive)``."""
    return SHOWN if isinstance(value, (Secret, Fingerprint)) else value


def stored(value: Value) -> Any:
    """How the state stores a value: secrets as their fingerprint, never in clear."""
    if isinstance(value, Secret):
        raise ValueError("seal secrets before storing them")
    return {"fingerprint": value.digest} if isinstance(value, Fingerprint) else value


def _loaded(value: Any) -> Value:
    return Fingerprint(value["fingerprint"]) if isinstance(value, dict) else str(value)


def callback_to_json(cb: Callback, write: Callable[[Value], Any] = shown) -> dict[str, Any]:
    webhook: dict[str, Any] = {"target": write(cb.target), "name": cb.name}
    for attribute in cb.attributes:
        section = webhook.setdefault(_SECTIONS[attribute.kind], {})
        section[attribute.key] = write(attribute.value)
    return {
        "webhook": webhook,
        "remoteTypes": list(cb.remote_types),
        **bodies.delivery(cb),
        "status": cb.status,
    }


def callback_from_json(label: str, data: Mapping[str, Any]) -> Callback:
    webhook = data["webhook"]
    attributes = tuple(
        Attribute(kind, key, _loaded(value))
        for section, kind in _KINDS.items()
        for key, value in webhook.get(section, {}).items()
    )
    retry = data.get("retryPolicy")
    batch = data.get("batchNotify")
    return Callback(
        label=label,
        target=_loaded(webhook["target"]),
        name=webhook["name"],
        remote_types=tuple(data["remoteTypes"]),
        attributes=tuple(sorted(attributes, key=lambda a: (a.kind, a.key))),
        retry_policy=RetryPolicy(retry["policy"], retry.get("retryNumber"), retry.get("retryDelay")) if retry else None,
        batch_notify=BatchNotify(batch["size"], batch.get("timeWindow")) if batch else None,
        status=data.get("status", "Running"),
    )


def air_to_json(program: AirProgram) -> dict[str, Any]:
    return {
        "slot": program.slot,
        "start": to_hhmm(program.start),
        "days": list(program.days),
        "enabled": program.enabled,
        "recurrence": program.recurrence,
    }


def air_from_json(data: Mapping[str, Any]) -> AirProgram:
    return AirProgram(data["slot"], parse_time(data["start"]), tuple(data["days"]), data["enabled"], data["recurrence"])


def charge_to_json(program: ChargeProgram) -> dict[str, Any]:
    return {
        "slot": program.slot,
        "start": to_hhmm(program.start),
        "end": to_hhmm(program.end),
        "days": list(program.days),
        "enabled": program.enabled,
    }


def charge_from_json(data: Mapping[str, Any]) -> ChargeProgram:
    return ChargeProgram(
        data["slot"], parse_time(data["start"]), parse_time(data["end"]), tuple(data["days"]), data["enabled"]
    )


def programs_to_json(programs: AirPrograms | ChargePrograms | None) -> list[dict[str, Any]] | None:
    if programs is None:
        return None
    result = []
    for _, program in sorted(programs.items()):
        if isinstance(program, AirProgram):
            result.append(air_to_json(program))
        elif isinstance(program, ChargeProgram):
            result.append(charge_to_json(program))
    return result


def preferences_to_json(prefs: ChargingPreferences | None) -> dict[str, Any] | None:
    if prefs is None:
        return None
    return {k: v for k, v in (("level", prefs.level), ("type", prefs.type)) if v is not None}


def capabilities_to_json(caps: Capabilities) -> dict[str, Any]:
    """The state's form of a vehicle's capabilities: what they say, nothing of what they do not."""
    return {name: value for name, value in vars(caps).items() if value is not None}


def capabilities_from_json(data: Mapping[str, Any]) -> Capabilities:
    known = {f for f in Capabilities.__dataclass_fields__}
    return Capabilities(**{k: v for k, v in data.items() if k in known})
