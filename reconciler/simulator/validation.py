"""Request bodies checked as the API checks them: each problem is a 400 with a message."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from . import spec

_DURATION = re.compile(r"PT(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?\Z")
_URL = re.compile(r"https?://[^\s/]+\S*\Z")


class Invalid(ValueError):
    """The body breaks a rule of the API; the message says which."""


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def duration_minutes(text: Any, field: str) -> int:
    """Minutes after midnight of an ISO-8601 duration within a day."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise Invalid(f"{field}: {text!r} is not an ISO-8601 duration such as PT14H30M")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 60 + minutes + seconds // 60
    if total >= 24 * 60:
        raise Invalid(f"{field}: {text!r} is not within a day")
    return total


def callback_subscribe(body: Any) -> dict[str, Any]:
    """RemoteCallbackSubscribe."""
    body = _object(body, "body")
    callback = _object(body.get("callback"), "callback")
    webhook = _object(callback.get("webhook"), "callback.webhook")
    target = webhook.get("target")
    if not isinstance(target, str) or not _URL.match(target):
        raise Invalid(f"callback.webhook.target: {target!r} is not an http(s) URL")
    if target.startswith("http://") and not is_loopback(target):
        raise Invalid("callback.webhook.target: plain http:// is accepted for loopback hosts only; use https://")
    if not isinstance(webhook.get("name"), str) or not webhook["name"]:
        raise Invalid("callback.webhook.name is required")
    for index, attribute in enumerate(webhook.get("attributes") or []):
        where = f"callback.webhook.attributes[{index}]"
        _object(attribute, where)
        if attribute.get("type") not in spec.ATTRIBUTE_TYPES:
            raise Invalid(f"{where}.type must be one of {', '.join(spec.ATTRIBUTE_TYPES)}")
        if not isinstance(attribute.get("key"), str) or not isinstance(attribute.get("value"), str):
            raise Invalid(f"{where}: key and value are required strings")
    types = body.get("remoteTypes")
    if not isinstance(types, list) or not types or any(t not in spec.REMOTE_TYPES for t in types):
        raise Invalid(f"remoteTypes must be a non-empty list of {', '.join(spec.REMOTE_TYPES)}")
    retry = body.get("retryPolicy")
    if retry is not None:
        _object(retry, "retryPolicy")
        if retry.get("policy") not in spec.RETRY_POLICIES:
            raise Invalid(f"retryPolicy.policy must be one of {', '.join(spec.RETRY_POLICIES)}")
        for name in ("retryNumber", "retryDelay"):
            if name in retry:
                _integer(retry[name], f"retryPolicy.{name}", 1)
    batch = body.get("batchNotify")
    if batch is not None:
        _object(batch, "batchNotify")
        _integer(batch.get("size"), "batchNotify.size", 1)
        if "timeWindow" in batch:
            _integer(batch["timeWindow"], "batchNotify.timeWindow", 5)
    if "label" in body and not isinstance(body["label"], str):
        raise Invalid("label must be a string")
    return _object(body, "body")


def callback_status(body: Any) -> str:
    """RemoteCallbacksStatusSetter."""
    _object(body, "body")
    if body.get("status") not in spec.CALLBACK_STATUSES:
        raise Invalid(f"status must be one of {', '.join(spec.CALLBACK_STATUSES)}")
    return str(body["status"])


def remote(body: Any) -> str:
    """Remote: exactly one action; returns its remote type."""
    _object(body, "body")
    if "label" in body and not isinstance(body["label"], str):
        raise Invalid("label must be a string")
    actions = [key for key in body if key != "label"]
    unknown = [key for key in actions if key not in spec.REMOTE_KEYS]
    if unknown:
        raise Invalid(f"unknown remote action {unknown[0]!r}")
    if len(actions) != 1:
        raise Invalid(f"exactly one action per request, got {len(actions)}")
    key = actions[0]
    _CHECKS[key](_object(body[key], key))
    return spec.REMOTE_KEYS[key]


def _preconditioning(body: dict[str, Any]) -> None:
    air = _object(body.get("airConditioning"), "preconditioning.airConditioning")
    if "immediate" not in air and "programs" not in air:
        raise Invalid("preconditioning.airConditioning needs immediate or programs")
    if "immediate" in air:
        _boolean(air["immediate"], "preconditioning.airConditioning.immediate")
    if "programs" in air:
        programs = air["programs"]
        if not isinstance(programs, list) or not 1 <= len(programs) <= 4:
            raise Invalid("preconditioning.airConditioning.programs must list 1 to 4 programs")
        _slots(programs, "preconditioning.airConditioning.programs", _air_program)


def _air_program(program: dict[str, Any], where: str) -> None:
    kind = program.get("actionsType", "Set")
    if kind not in ("Set", "Delete"):
        raise Invalid(f"{where}.actionsType must be Set or Delete")
    if kind == "Delete":
        return
    for name in ("enabled", "occurence", "start"):
        if name not in program:
            raise Invalid(f"{where}.{name} is required for actionsType Set")
    _boolean(program["enabled"], f"{where}.enabled")
    if program.get("recurrence", "Daily") not in ("None", "Daily"):
        raise Invalid(f"{where}.recurrence must be None or Daily")
    duration_minutes(program["start"], f"{where}.start")
    _days(program["occurence"], f"{where}.occurence")


def _charging(body: dict[str, Any]) -> None:
    if "preferences" in body and ({"schedule", "immediate", "nextDelayedTime"} & set(body)):
        raise Invalid("charging.preferences cannot be combined with schedule or immediate")
    if not {"preferences", "schedule", "immediate", "nextDelayedTime"} & set(body):
        raise Invalid("charging needs preferences, schedule or immediate")
    if "immediate" in body:
        _boolean(body["immediate"], "charging.immediate")
    if "nextDelayedTime" in body:
        _timestamp(body["nextDelayedTime"], "charging.nextDelayedTime")
    if "preferences" in body:
        prefs = _object(body["preferences"], "charging.preferences")
        if not prefs or set(prefs) - {"level", "type"}:
            raise Invalid("charging.preferences takes level and/or type")
        if "level" in prefs and prefs["level"] not in ("Level1", "Level2", "Level3", "Level4", "Level5"):
            raise Invalid("charging.preferences.level must be Level1 … Level5")
        if "type" in prefs and prefs["type"] not in ("Partial", "Full"):
            raise Invalid("charging.preferences.type must be Partial or Full")
    if "schedule" in body:
        schedule = _object(body["schedule"], "charging.schedule")
        if ("programs" in schedule) == ("nextDelayedTime" in schedule):
            raise Invalid("charging.schedule takes either programs or nextDelayedTime")
        if "nextDelayedTime" in schedule:
            _timestamp(schedule["nextDelayedTime"], "charging.schedule.nextDelayedTime")
        else:
            programs = schedule["programs"]
            if not isinstance(programs, list) or not 1 <= len(programs) <= 4:
                raise Invalid("charging.schedule.programs must list 1 to 4 programs")
            _slots(programs, "charging.schedule.programs", _charge_program)


def _charge_program(program: dict[str, Any], where: str) -> None:
    for name in ("start", "end"):
        if name not in program:
            raise Invalid(f"{where}.{name} is required")
        duration_minutes(program[name], f"{where}.{name}")
    if "enabled" in program:
        _boolean(program["enabled"], f"{where}.enabled")
    if "occurence" in program:
        _days(program["occurence"], f"{where}.occurence")


def _slots(programs: list[Any], where: str, check: Any) -> None:
    seen: set[int] = set()
    for index, program in enumerate(programs):
        here = f"{where}[{index}]"
        _object(program, here)
        slot = _integer(program.get("slot"), f"{here}.slot", 1, 4)
        if slot in seen:
            raise Invalid(f"{here}.slot {slot} is used twice in the same list")
        seen.add(slot)
        check(program, here)


def _immobilization(body: dict[str, Any]) -> None:
    _boolean(body.get("activate"), "immobilization.activate")


def _door(body: dict[str, Any]) -> None:
    if body.get("state") not in ("Unlocked", "Locked"):
        raise Invalid("door.state must be Unlocked or Locked")
    if "forced" in body:
        _boolean(body["forced"], "door.forced")


def _horn(body: dict[str, Any]) -> None:
    if body.get("state") not in ("Activated", "Unactivated"):
        raise Invalid("horn.state must be Activated or Unactivated")


def _lights(body: dict[str, Any]) -> None:
    _boolean(body.get("on"), "lights.on")


def _wake_up(body: dict[str, Any]) -> None:
    if body.get("action", "WakeUp") != "WakeUp":
        raise Invalid("wakeUp.action must be WakeUp")


def _navigation(body: dict[str, Any]) -> None:
    positions = body.get("positions")
    if not isinstance(positions, list) or not 1 <= len(positions) <= 10:
        raise Invalid("navigation.positions must list 1 to 10 points")
    for index, point in enumerate(positions):
        where = f"navigation.positions[{index}]"
        _object(point, where)
        coords = point.get("coordinates")
        if point.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise Invalid(f"{where} must be a GeoJSON Point with coordinates [longitude, latitude]")
        lon, lat = coords[0], coords[1]
        if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords):
            raise Invalid(f"{where}.coordinates must be numbers")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise Invalid(f"{where}.coordinates [{lon}, {lat}] is not a longitude, latitude pair")
    if "driverApproval" in body:
        _boolean(body["driverApproval"], "navigation.driverApproval")


def _stolen(body: dict[str, Any]) -> None:
    present = [key for key in ("stolen", "trackingPeriod", "immobilization") if key in body]
    if len(present) != 1 or set(body) - {"stolen", "trackingPeriod", "immobilization"}:
        raise Invalid("stolen takes exactly one of stolen, trackingPeriod, immobilization")
    if "stolen" in body:
        _boolean(body["stolen"], "stolen.stolen")
    if "trackingPeriod" in body:
        period = _object(body["trackingPeriod"], "stolen.trackingPeriod")
        if "running" in period:
            _integer(period["running"], "stolen.trackingPeriod.running", 5)
        if "shutdown" in period:
            _integer(period["shutdown"], "stolen.trackingPeriod.shutdown", 60)
    if "immobilization" in body:
        _immobilization(_object(body["immobilization"], "stolen.immobilization"))


_CHECKS = {
    "preconditioning": _preconditioning,
    "charging": _charging,
    "immobilization": _immobilization,
    "door": _door,
    "horn": _horn,
    "lights": _lights,
    "wakeUp": _wake_up,
    "navigation": _navigation,
    "stolen": _stolen,
}


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{where} must be true or false")
    return value


def _integer(value: Any, where: str, minimum: int, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum else f"at least {minimum}"
        raise Invalid(f"{where} must be a whole number {bound}")
    return value


def _days(occurence: Any, where: str) -> None:
    days = _object(occurence, where).get("day")
    if not isinstance(days, list) or any(d not in spec.DAYS for d in days):
        raise Invalid(f"{where}.day must list days among {', '.join(spec.DAYS)}")


def _timestamp(value: Any, where: str) -> None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{where}: {value!r} is not an RFC 3339 timestamp") from None
