"""What a fleet file declares about operating it (DESIGN §9.3, §9.4): ``rollout:``, ``windows:``,
``wakeups:`` and ``notify:``, checked and read.

The schema has checked their shapes; what is checked here is what a shape
cannot say: waves that add vehicles and end with the whole fleet, a time zone
that exists, windows that last.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ..core import urls
from ..core.durations import FormatError, Share, seconds
from ..core.durations import describe as durations_shown
from ..core.model import NOTIFY_TIMEOUT, Notify, RolloutPolicy, Secret, Window, Windows
from ..core.sensitive import reveal
from ..core.timeofday import TimeFormatError, parse_days, parse_time
from ..core.vocabulary import NotifyKind
from ..core.wakeups import DEFAULT_AWAKE_FOR, WakeupPolicy
from . import schema
from .reading import Reading, unknown

# Not part of what a rollout rolls out: changing them starts no new rollout.
OPERATIONAL = ("rollout", "windows", "wakeups", "notify")
MAX_NOTIFY_TIMEOUT = 300.0


def config_hash(data: dict[str, Any]) -> str:
    """The SHA-256 of what the file declares, its brakes and notifications aside (``${VAR}`` as written)."""
    declared = {key: value for key, value in data.items() if key not in OPERATIONAL}
    return hashlib.sha256(json.dumps(declared, sort_keys=True, default=str).encode()).hexdigest()


def rollout(b: Reading) -> RolloutPolicy | None:
    raw = b.data.get("rollout")
    if not isinstance(raw, dict) or b.report.is_bad("rollout"):
        return None
    parsed = [_share(b, w, ("rollout", "waves", n)) for n, w in enumerate(raw["waves"])]
    max_failures = _share(b, raw["maxFailures"], ("rollout", "maxFailures")) if "maxFailures" in raw else None
    shares = [share for share in parsed if share is not None]
    if len(shares) < len(parsed):
        return None
    for index in range(1, len(shares)):
        before, after = shares[index - 1], shares[index]
        if before.percent == after.percent and after.value <= before.value:
            b.problem(
                ("rollout", "waves", index),
                f"wave {index + 1} ({after}) adds no vehicle to wave {index} ({before})",
                "waves are cumulative: each covers more of the fleet than the one before, e.g. [5%, 25%, 100%]",
            )
    if not (shares[-1].percent and shares[-1].value == 100):
        b.problem(
            ("rollout", "waves", len(shares) - 1),
            "the last wave must be 100%: the vehicles after it would never get their changes",
            "end the list with 100%",
        )
    bake = 0.0
    if "bake" in raw:
        try:
            bake = seconds(raw["bake"])
        except FormatError as exc:
            b.problem(("rollout", "bake"), str(exc), "write a duration such as 30s, 10m or 1h")
    return RolloutPolicy(tuple(shares), bake, max_failures, raw.get("maxPerMinute"))


def _share(b: Reading, raw: str | int, path: tuple[Any, ...]) -> Share | None:
    """A share, or None with a located problem (``150%``: the schema takes its form, not its size)."""
    try:
        return Share.parse(raw)
    except FormatError as exc:
        b.problem(path, str(exc), "write a percentage from 0% to 100%, or a number of vehicles")
        return None


def wakeups(b: Reading) -> WakeupPolicy | None:
    raw = b.data.get("wakeups")
    if not isinstance(raw, dict) or b.report.is_bad("wakeups"):
        return None
    per_month, reserve = raw["perMonth"], raw.get("reserve", 0)
    if reserve >= per_month:
        b.problem(
            ("wakeups", "reserve"),
            f"a reserve of {reserve} leaves none of the {per_month} wake-ups for reconciler",
            "keep the reserve under perMonth",
        )
    awake_for = DEFAULT_AWAKE_FOR
    if "awakeFor" in raw:
        try:
            awake_for = seconds(raw["awakeFor"])
        except FormatError as exc:
            b.problem(("wakeups", "awakeFor"), str(exc), "write a duration such as 3m")
    return WakeupPolicy(per_month, reserve, awake_for)


def notify(b: Reading) -> tuple[Notify, ...]:
    """``notify:``: each target checked (https:// off this machine), its secrets read from the environment."""
    raw = b.data.get("notify")
    if not isinstance(raw, list) or b.report.is_bad("notify"):
        return ()
    found = []
    for index, entry in enumerate(raw):
        path = ("notify", index)
        url = b.read_value(entry["url"], (*path, "url"))
        problem = None if unknown(url) else urls.notify_url_problem(reveal(url))
        if problem:
            if isinstance(url, Secret):  # the value is secret: say where it came from, not what it is
                problem = f"the URL {entry['url']} reads from the environment is not an https:// URL"
            b.problem((*path, "url"), problem, "write https://host/path (http:// only to this machine)")
        headers = tuple(
            (name, b.read_value(value, (*path, "headers", name)))
            for name, value in sorted((entry.get("headers") or {}).items())
        )
        for name, value in headers:
            if any(c in reveal(value) for c in "\r\n"):  # a header value on two lines would be two headers
                b.problem(
                    (*path, "headers", name),
                    f"the value of header {name} has a line break",
                    "set the variable to a one-line value",
                )
        timeout = NOTIFY_TIMEOUT
        if "timeout" in entry:
            try:
                timeout = seconds(entry["timeout"])
            except FormatError as exc:
                b.problem((*path, "timeout"), str(exc), "write a duration such as 10s")
            else:
                if not 1 <= timeout <= MAX_NOTIFY_TIMEOUT:
                    b.problem(
                        (*path, "timeout"),
                        f"{durations_shown(timeout)} is not from 1s to 5m",
                        "a notification may take from 1 second to 5 minutes, its retry included",
                    )
        found.append(Notify(url, tuple(NotifyKind(kind) for kind in entry["on"]), headers, timeout))
    return tuple(found)


def windows(b: Reading) -> Windows | None:
    raw = b.data.get("windows")
    if not isinstance(raw, dict) or b.report.is_bad("windows"):
        return None
    zone = raw["timezone"]
    if not _zone_exists(zone):
        guess = schema.suggest(zone, sorted(_zones()))
        b.problem(
            ("windows", "timezone"),
            f"{zone!r} is not an IANA time zone",
            f"did you mean {guess!r}?" if guess else "write a zone such as Europe/Paris or UTC",
        )
    if not raw.get("allow") and not raw.get("deny"):
        b.problem(("windows",), "no allow and no deny window", "give allow: [...] or deny: [...]", key=True)
    kinds = {name: _windows(b, raw.get(name) or [], ("windows", name)) for name in ("allow", "deny")}
    return Windows(zone, kinds["allow"], kinds["deny"])


def _windows(b: Reading, raw: list[dict[str, Any]], path: tuple[Any, ...]) -> tuple[Window, ...]:
    found = []
    for index, entry in enumerate(raw):
        try:
            start, end = parse_time(entry["start"]), parse_time(entry["end"])
        except TimeFormatError as exc:
            b.problem((*path, index), str(exc), 'write "HH:MM"')
            continue
        if start == end:
            b.problem(
                (*path, index),
                "the window ends when it starts",
                "give an end time after (or, past midnight, before) the start",
            )
            continue
        found.append(Window(parse_days(entry["days"]), start, end))
    return tuple(found)


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())
