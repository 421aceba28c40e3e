"""One-off remote actions (``reconciler send``): arguments → the API's Remote body, checked first.

Everything is validated before anything is sent: an eleventh navigation point,
a latitude of 91 or a tracking period under the API's minimum is refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core import spec
from ..errors import ReconcilerError

MAX_POSITIONS = 10  # RemoteNavigation.positions: 9 waypoints + the destination
MIN_TRACKING_RUNNING = 5  # RemoteStolen.trackingPeriod.running minimum
MIN_TRACKING_SHUTDOWN = 60  # RemoteStolen.trackingPeriod.shutdown minimum

USAGE = """\
horn | lights | doors lock|unlock | wakeup | navigate LAT,LON [LAT,LON …] |
charge now|stop|at TIME | precondition now|stop | immobilize on|off |
stolen on|off | stolen tracking RUNNING SHUTDOWN"""


class SendUsageError(ReconcilerError):
    """The action or its arguments are not ones ``send`` understands."""


@dataclass(frozen=True)
class OneOff:
    """A one-off action: its address part, remote type, body (without label), and any flag it sets."""

    name: str
    part: str
    remote_type: str
    body: dict[str, Any]
    flag: tuple[str, bool] | None = None  # ("immobilized" | "stolen", value) for stateful flags


def parse(action: str, args: list[str], *, driver_approval: bool = False, now: datetime | None = None) -> OneOff:
    """The one-off for ``action args…``, or ``SendUsageError`` saying what to write."""
    handler = _ACTIONS.get(action)
    if handler is None:
        raise SendUsageError(f"unknown action {action!r}; actions: {USAGE}")
    return handler(args, driver_approval, now or datetime.now(UTC))


def _no_args(name: str, args: list[str]) -> None:
    if args:
        raise SendUsageError(f"{name} takes no arguments, got {' '.join(args)}")


def _choice(name: str, args: list[str], choices: tuple[str, ...]) -> str:
    if len(args) != 1 or args[0] not in choices:
        raise SendUsageError(f"{name} takes one of {', '.join(choices)}, got {' '.join(args) or 'nothing'}")
    return args[0]


def _horn(args: list[str], _: bool, __: datetime) -> OneOff:
    _no_args("horn", args)
    return OneOff("horn", "horn", spec.HORN, {"horn": {"state": "Activated"}})


def _lights(args: list[str], _: bool, __: datetime) -> OneOff:
    _no_args("lights", args)
    return OneOff("lights", "lights", spec.LIGHTS, {"lights": {"on": True}})


def _doors(args: list[str], _: bool, __: datetime) -> OneOff:
    state = {"lock": "Locked", "unlock": "Unlocked"}[_choice("doors", args, ("lock", "unlock"))]
    return OneOff(f"doors {args[0]}", "doors", spec.DOORS, {"door": {"state": state}})


def _wakeup(args: list[str], _: bool, __: datetime) -> OneOff:
    _no_args("wakeup", args)
    return OneOff("wakeup", "wakeup", spec.WAKE_UP, {"wakeUp": {"action": "WakeUp"}})


_POINT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\Z")


def _navigate(args: list[str], driver_approval: bool, _: datetime) -> OneOff:
    if not args:
        raise SendUsageError("navigate takes 1 to 10 points LAT,LON (the last one is the destination)")
    if len(args) > MAX_POSITIONS:
        raise SendUsageError(
            f"navigate takes at most {MAX_POSITIONS} points (9 waypoints and the destination), got {len(args)}"
        )
    positions = []
    for index, text in enumerate(args, 1):
        match = _POINT.match(text)
        if not match:
            raise SendUsageError(f"point {index} {text!r} is not LAT,LON (e.g. 48.8566,2.3522)")
        lat, lon = float(match.group(1)), float(match.group(2))
        if not -90 <= lat <= 90:
            raise SendUsageError(f"point {index}: latitude {lat} is outside -90…90 (write LAT,LON)")
        if not -180 <= lon <= 180:
            raise SendUsageError(f"point {index}: longitude {lon} is outside -180…180 (write LAT,LON)")
        positions.append({"type": "Point", "coordinates": [lon, lat]})  # GeoJSON: longitude first
    body: dict[str, Any] = {"positions": positions}
    if driver_approval:
        body["driverApproval"] = True
    return OneOff("navigate", "navigation", spec.NAVIGATION, {"navigation": body})


def _charge(args: list[str], _: bool, now: datetime) -> OneOff:
    if args[:1] == ["at"]:
        if len(args) != 2:
            raise SendUsageError("charge at takes one time: HH:MM (the next one) or an RFC 3339 timestamp")
        when = _next_time(args[1], now)
        return OneOff("charge at", "charging", spec.CHARGING, {"charging": {"schedule": {"nextDelayedTime": when}}})
    choice = _choice("charge", args, ("now", "stop", "at"))
    return OneOff(f"charge {choice}", "charging", spec.CHARGING, {"charging": {"immediate": choice == "now"}})


def _next_time(text: str, now: datetime) -> str:
    hhmm = re.match(r"([01]?\d|2[0-3]):([0-5]\d)\Z", text)
    if hhmm:
        moment = now.replace(hour=int(hhmm.group(1)), minute=int(hhmm.group(2)), second=0, microsecond=0)
        if moment <= now:
            moment += timedelta(days=1)
        return moment.isoformat(timespec="seconds")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SendUsageError(f"{text!r} is not HH:MM nor an RFC 3339 timestamp (2026-11-25T22:00:00+01:00)") from None
    if moment.tzinfo is None:
        raise SendUsageError(f"{text!r} has no time zone: add one, e.g. {text}+01:00 or {text}Z")
    if moment <= now:
        raise SendUsageError(f"{text!r} is in the past (it is {now.isoformat(timespec='seconds')}): give a later time")
    return moment.isoformat(timespec="seconds")


def _precondition(args: list[str], _: bool, __: datetime) -> OneOff:
    choice = _choice("precondition", args, ("now", "stop"))
    # Only `immediate`: the declared programs are never sent from here.
    body = {"preconditioning": {"airConditioning": {"immediate": choice == "now"}}}
    return OneOff(f"precondition {choice}", "precondition", spec.THERMAL_PRECONDITIONING, body)


def _on_off(name: str, args: list[str]) -> bool:
    return _choice(name, args, ("on", "off")) == "on"


def _immobilize(args: list[str], _: bool, __: datetime) -> OneOff:
    on = _on_off("immobilize", args)
    return OneOff(
        f"immobilize {args[0]}",
        "immobilization",
        spec.IMMOBILIZATION,
        {"immobilization": {"activate": on}},
        ("immobilized", on),
    )


def _stolen(args: list[str], _: bool, __: datetime) -> OneOff:
    if args[:1] == ["tracking"]:
        if len(args) != 3 or not all(a.isdigit() for a in args[1:]):
            raise SendUsageError("stolen tracking takes RUNNING SHUTDOWN, in seconds (e.g. stolen tracking 30 120)")
        running, shutdown = int(args[1]), int(args[2])
        if running < MIN_TRACKING_RUNNING or shutdown < MIN_TRACKING_SHUTDOWN:
            raise SendUsageError(
                f"stolen tracking: RUNNING is at least {MIN_TRACKING_RUNNING} and SHUTDOWN at least "
                f"{MIN_TRACKING_SHUTDOWN} seconds, got {running} and {shutdown}"
            )
        body = {"stolen": {"trackingPeriod": {"running": running, "shutdown": shutdown}}}
        return OneOff("stolen tracking", "stolen.tracking", spec.STOLEN, body)
    on = _on_off("stolen", args)
    return OneOff(f"stolen {args[0]}", "stolen", spec.STOLEN, {"stolen": {"stolen": on}}, ("stolen", on))


_ACTIONS = {
    "horn": _horn,
    "lights": _lights,
    "doors": _doors,
    "wakeup": _wakeup,
    "navigate": _navigate,
    "charge": _charge,
    "precondition": _precondition,
    "immobilize": _immobilize,
    "stolen": _stolen,
}
