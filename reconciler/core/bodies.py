"""Request bodies in the API's own shapes (Fleet Owner API v3.19.2).

Each function returns the body of one operation, as the OpenAPI file's request
schema describes it; secrets stay ``Secret`` objects until the request is sent
(``sensitive.reveal``), and show as ``(sensitive)`` everywhere else.
"""

from __future__ import annotations

from typing import Any

from . import spec
from .model import AirProgram, Callback, ChargeProgram, ChargingPreferences
from .timeofday import to_duration


def callback_subscribe(cb: Callback) -> dict[str, Any]:
    """RemoteCallbackSubscribe: the complete body of POST and PUT of a callback."""
    webhook: dict[str, Any] = {"target": cb.target, "name": cb.name}
    if cb.attributes:
        webhook["attributes"] = [{"type": a.kind, "key": a.key, "value": a.value} for a in cb.attributes]
    body: dict[str, Any] = {
        "label": cb.label,
        "callback": {"webhook": webhook},
        "remoteTypes": list(cb.remote_types),
    }
    body.update(delivery(cb))
    return body


def delivery(cb: Callback) -> dict[str, Any]:
    """The ``retryPolicy`` and ``batchNotify`` members of a callback, when it sets them."""
    members: dict[str, Any] = {}
    if cb.retry_policy:
        policy: dict[str, Any] = {"policy": cb.retry_policy.policy}
        if cb.retry_policy.retry_number is not None:
            policy["retryNumber"] = cb.retry_policy.retry_number
        if cb.retry_policy.retry_delay is not None:
            policy["retryDelay"] = cb.retry_policy.retry_delay
        members["retryPolicy"] = policy
    if cb.batch_notify:
        members["batchNotify"] = {"size": cb.batch_notify.size, "timeWindow": cb.batch_notify.time_window}
    return members


def callback_status(status: str) -> dict[str, Any]:
    """RemoteCallbacksStatusSetter."""
    return {"status": status}


def air_set(program: AirProgram) -> dict[str, Any]:
    """A preconditioning ``Set`` entry: slot, enabled, occurence and start are mandatory."""
    return {
        "actionsType": spec.ACTION_SET,
        "slot": program.slot,
        "enabled": program.enabled,
        "recurrence": program.recurrence,
        "start": to_duration(program.start),
        "occurence": {"day": list(program.days)},
    }


def air_delete(slot: int) -> dict[str, Any]:
    """A preconditioning ``Delete`` entry: only the slot."""
    return {"actionsType": spec.ACTION_DELETE, "slot": slot}


# A remote action's body is its label (the action's key) followed by one of these:
# the label goes in at the last moment (``changes.Request``), so that vehicles
# with the same programs share the rest of their bodies.


def preconditioning(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Remote with RemotePreconditioning programs (never ``immediate``)."""
    return {"preconditioning": {"airConditioning": {"programs": entries}}}


def charge_program(program: ChargeProgram) -> dict[str, Any]:
    return {
        "slot": program.slot,
        "enabled": program.enabled,
        "start": to_duration(program.start),
        "end": to_duration(program.end),
        "occurence": {"day": list(program.days)},
    }


def charging_schedule(programs: list[dict[str, Any]]) -> dict[str, Any]:
    """Remote with RemoteCharging.schedule.programs (entries from ``charge_program``).

    Never with preferences: the API forbids combining them.
    """
    return {"charging": {"schedule": {"programs": programs}}}


def charging_preferences(prefs: ChargingPreferences) -> dict[str, Any]:
    """Remote with RemoteCharging.preferences alone."""
    body = {k: v for k, v in (("level", prefs.level), ("type", prefs.type)) if v is not None}
    return {"charging": {"preferences": body}}


def immobilization(activate: bool) -> dict[str, Any]:
    """Remote with RemoteSetImmobilization."""
    return {"immobilization": {"activate": activate}}


def stolen(is_stolen: bool) -> dict[str, Any]:
    """Remote with RemoteStolen.stolen alone (one attribute at a time)."""
    return {"stolen": {"stolen": is_stolen}}
