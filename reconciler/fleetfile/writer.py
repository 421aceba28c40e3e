"""A fleet file written out: what ``reconciler import`` leaves for the user to keep in git.

Short and readable: the ``$schema`` line, a comment saying where it came from,
callbacks, profiles (each with how many vehicles use it), then one line per
vehicle. Every string is double-quoted (JSON escapes are YAML's), so nothing
is ever read back as another type; secrets are ``${VAR}`` references.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..core import bodies, parts, spec
from ..core.model import AirProgram, Callback, ChargeProgram, ChargingPreferences, Secret, Value, VehicleConfig
from ..core.profiles import Factoring
from ..core.timeofday import DAY_SHORTCUTS, to_hhmm

SCHEMA_LINE = "# yaml-language-server: $schema=schemas/fleet.schema.json"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_SECTIONS = (("headers", "Header"), ("query", "Query"), ("body", "Body"))


def render(
    *,
    header: list[str],
    fleet: str,
    api_url: str,
    callbacks: list[tuple[Callback, list[str]]],
    factoring: Factoring,
    routes: Mapping[str, str],
) -> str:
    """The fleet file's text. ``callbacks``: each with the comments to write above it."""
    lines = [SCHEMA_LINE, *(f"# {line}" if line else "#" for line in header)]
    lines += ["apiVersion: reconciler/v1", f"fleet: {_q(fleet)}", "api:", f"  url: {_q(api_url)}"]
    if callbacks:
        lines.append("callbacks:")
        for callback, notes in callbacks:
            lines += [f"  # {note}" for note in notes]
            lines += list(_callback(callback))
    if factoring.profiles:
        lines.append("profiles:")
        for name, config in factoring.profiles.items():
            used = factoring.users.get(name, 0)
            lines.append(f"  # {used:,} vehicle{'s' if used != 1 else ''}")
            lines.append(f"  {_key(name)}:")
            lines += ["    " + line for line in _sections(config)]
    if factoring.entries:
        lines.append("vehicles:")
        for vin in sorted(factoring.entries):
            lines += list(_vehicle(vin, factoring.entries[vin].profile, factoring.entries[vin].own, routes.get(vin)))
    return "\n".join(lines) + "\n"


def _callback(cb: Callback) -> Iterator[str]:
    yield f"  {_key(cb.label)}:"
    yield "    webhook:"
    yield f"      target: {_value(cb.target)}"
    yield f"      name: {_q(cb.name)}"
    for section, kind in _SECTIONS:
        attributes = [a for a in cb.attributes if a.kind == kind]
        if attributes:
            yield f"      {section}:"
            yield from (f"        {_key(a.key)}: {_value(a.value)}" for a in attributes)
    yield f"    remoteTypes: [{', '.join(cb.remote_types)}]"
    delivery = bodies.delivery(cb)
    if "retryPolicy" in delivery:
        yield f"    retryPolicy: {_flow(delivery['retryPolicy'])}"
    if "batchNotify" in delivery:
        yield f"    batchNotify: {_flow(delivery['batchNotify'])}"
    yield f"    status: {cb.status}"


def _vehicle(vin: str, profile: str | None, own: VehicleConfig, route: str | None) -> Iterator[str]:
    sections = list(_sections(own))
    short: dict[str, object] = {}
    if profile:
        short["profile"] = _Plain(_key(profile))
    if route:
        short["callback"] = _Plain(_key(route))
    for part, value in parts.managed(own):
        if part.kind == parts.Kind.FLAG:
            short[part.written[-1]] = value
    if not sections:
        yield f"  {vin}: {_flow(short)}"
        return
    yield f"  {vin}:"
    yield from (f"    {key}: {_scalar(value)}" for key, value in short.items())
    yield from ("    " + line for line in sections)


def _sections(config: VehicleConfig) -> Iterator[str]:
    """The block sections of a body (flags go on its first line), each part where ``written`` says."""
    opened: tuple[str, ...] = ()
    for part, value in parts.managed(config):
        if part.kind == parts.Kind.FLAG:
            continue
        *parents, key = part.written
        shared = 0
        while shared < min(len(opened), len(parents)) and opened[shared] == parents[shared]:
            shared += 1
        for depth in range(shared, len(parents)):
            yield "  " * depth + f"{parents[depth]}:"
        opened = tuple(parents)
        yield from _part(part, value, "  " * len(parents), key)


def _part(part: parts.Part, value: Any, indent: str, key: str) -> Iterator[str]:
    if part.kind == parts.Kind.PREFERENCES:
        yield f"{indent}{key}: {_flow(_preferences(value))}"
        return
    write = _air if part.kind == parts.Kind.AIR_PROGRAMS else _charge
    yield f"{indent}{key}:" if value else f"{indent}{key}: []"
    yield from (f"{indent}  - {_flow(write(p))}" for _, p in sorted(value.items()))


def _air(p: AirProgram) -> dict[str, Any]:
    written: dict[str, Any] = {"slot": p.slot, "start": to_hhmm(p.start), "days": _days(p.days)}
    if not p.enabled:
        written["enabled"] = False
    if p.recurrence != "Daily":
        written["recurrence"] = p.recurrence
    return written


def _charge(p: ChargeProgram) -> dict[str, Any]:
    written: dict[str, Any] = {"slot": p.slot, "start": to_hhmm(p.start), "end": to_hhmm(p.end), "days": _days(p.days)}
    if not p.enabled:
        written["enabled"] = False
    return written


def _preferences(prefs: ChargingPreferences) -> dict[str, Any]:
    return {k: v for k, v in (("level", prefs.level), ("type", prefs.type)) if v is not None}


def _days(days: tuple[str, ...]) -> Any:
    for name, members in DAY_SHORTCUTS.items():
        if days == members:
            return _Plain(name)
    return [_Plain(d) for d in days]


class _Plain(str):
    """A word written without quotes (a day, an enum value): plain YAML that reads back as the same text."""


def _flow(mapping: Mapping[str, object]) -> str:
    return "{" + ", ".join(f"{key}: {_scalar(value)}" for key, value in mapping.items()) + "}"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, _Plain):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"(Level[1-5]|Partial|Full|Daily)", value):
        return value
    return _q(str(value))


def _value(value: Value) -> str:
    """An attribute value as the file writes it: ``${VAR}`` for a secret, an API variable as it is,
    any other ``$`` doubled (``$$`` is a literal ``$``), so that it reads back as the same value."""
    if isinstance(value, Secret):
        return _q("${" + value.variable + "}")
    text = str(value)
    if text.startswith("$") and text[1:] in spec.ATTRIBUTE_VARIABLES:
        return _q(text)
    return _q(text.replace("$", "$$"))


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in ("true", "false", "null", "y", "n") else _q(key)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
