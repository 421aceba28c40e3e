"""JSON Schema validation of fleet.yaml, every error mapped back to FILE:LINE:COL.

The published schema (``schemas/fleet.schema.json``) is the one applied here.
A schema node may carry ``x-hint``: what to write instead, shown under the error.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, TypeGuard

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from ..errors import Problem
from .yaml_source import Path, Source

_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


@dataclass
class SchemaReport:
    """Problems found, and which parts of the file they concern."""

    problems: list[Problem] = field(default_factory=list)
    # Where errors were found, so later checks skip exactly what is malformed
    # and still check everything else.
    errors_at: set[tuple[Any, ...]] = field(default_factory=set)
    errors_under: set[tuple[Any, ...]] = field(default_factory=set)

    def is_bad(self, *path: Any) -> bool:
        """True when an error was found at ``path``, inside it, or at one of its parents.

        An error about the document itself (a missing top-level key) spoils nothing below.
        """
        if not self.errors_at:
            return False
        return path in self.errors_under or any(path[:n] in self.errors_at for n in range(1, len(path)))

    def broken(self, *path: Any) -> bool:
        """True when ``path`` itself, or one of its parents, is malformed (not merely something inside it)."""
        return any(path[:n] in self.errors_at for n in range(1, len(path) + 1))

    def add(self, path: tuple[Any, ...]) -> None:
        self.errors_at.add(path)
        self.errors_under.update(path[:n] for n in range(len(path) + 1))


@cache
def fleet_schema() -> dict[str, Any]:
    """The published fleet.yaml schema."""
    text = resources.files("reconciler.fleetfile").joinpath("fleet.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


# JSON Schema counts 2.0 as an integer; Python code reading a slot does not, and a
# program whose slot is 2.0 would silently vanish. Integers are ints, nothing else.
_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


@cache
def _validators() -> tuple[Any, Any, Any]:
    schema = fleet_schema()
    vehicle = {"$ref": "#/$defs/vehicle", "$defs": schema["$defs"]}
    group = {"$ref": "#/$defs/group", "$defs": schema["$defs"]}
    return _Validator(schema), _Validator(vehicle), _Validator(group)


def validate(source: Source) -> SchemaReport:
    """Check ``source.data`` against the schema; report every error with its place.

    Vehicles and groups are checked one by one and the verdict is cached: a
    10,000-vehicle fleet has a few dozen distinct vehicle bodies, and 2,000
    groups a few shapes (``_group_shape``), so this costs a lookup per entry
    instead of a schema walk.
    """
    whole, one_vehicle, one_group = _validators()
    report = SchemaReport()
    data = source.data
    vehicles = data.get("vehicles") if isinstance(data, dict) else None
    groups = data.get("groups") if isinstance(data, dict) else None
    if isinstance(vehicles, dict):
        data = {**data, "vehicles": {}}
    if isinstance(groups, list):
        data = {**data, "groups": []}
    _collect(report, source, whole.iter_errors(data), ())
    if isinstance(groups, list):
        _each(report, source, one_group, enumerate(groups), "groups", _group_shape)
    if isinstance(vehicles, dict):
        _each(report, source, one_vehicle, vehicles.items(), "vehicles", repr)
    return report


def _each(
    report: SchemaReport,
    source: Source,
    validator: Any,
    entries: Iterable[tuple[Any, Any]],
    section: str,
    key_of: Callable[[Any], str],
) -> None:
    """Check each entry of ``section``; entries with the same key share one verdict."""
    verdicts: dict[str, bool] = {}
    for where, body in entries:
        key = key_of(body)
        valid = verdicts.get(key)
        if valid is None:
            valid = verdicts[key] = validator.is_valid(body)
        if not valid:
            _collect(report, source, validator.iter_errors(body), (section, where))


_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _group_shape(body: Any) -> str:
    """What a group's verdict depends on: its body with the values that pass their own checks made alike.

    A valid name, VIN prefixes of 1 to 17 characters (distinct, in a list) and
    distinct VINs are the same to the schema whatever they say: 2,000 groups by
    prefix are a handful of shapes.
    """
    if not isinstance(body, dict):
        return repr(body)
    shape = dict(body)
    name = shape.get("name")
    if isinstance(name, str) and len(name) <= 64 and _GROUP_NAME.fullmatch(name):
        shape["name"] = "name"
    for selector in ("match", "exclude"):
        if isinstance(shape.get(selector), dict):
            shape[selector] = _selector_shape(shape[selector])
    return repr(shape)


def _selector_shape(selector: dict[str, Any]) -> dict[str, Any]:
    shape = dict(selector)
    prefixes, vins = shape.get("vinPrefix"), shape.get("vins")
    if isinstance(prefixes, str) and 1 <= len(prefixes) <= 17:
        shape["vinPrefix"] = "prefix"
    elif _distinct_strings(prefixes) and all(1 <= len(p) <= 17 for p in prefixes):
        shape["vinPrefix"] = [f"prefix{n}" for n in range(len(prefixes))]
    if _distinct_strings(vins):
        shape["vins"] = [f"vin{n}" for n in range(len(vins))]
    return shape


def _distinct_strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value) and len(set(value)) == len(value)


def _collect(report: SchemaReport, source: Source, errors: Iterable[ValidationError], prefix: Path) -> None:
    for error in _leaves(errors):
        path = (*prefix, *error.absolute_path)
        report.add(tuple(path))
        report.problems.extend(_problems(source, error, path))


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The specific errors: an if/then/else or $ref failure is shown by its causes."""
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def describe_path(path: Path) -> str:
    """``vehicles.VF3….preconditioning[0].start`` for a path into the data."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "the file"


def _problems(source: Source, error: ValidationError, path: Path) -> list[Problem]:
    where = describe_path(path)
    schema: Any = error.schema
    hint = str(schema.get("x-hint", "")) if isinstance(schema, dict) else ""
    kind = error.validator
    instance: Any = error.instance
    expected: Any = error.validator_value
    if kind == "additionalProperties" and isinstance(instance, dict):
        return _unknown_keys(source, error, path)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a key"
        return [Problem(source.locate(path), f"{where}: missing required key {missing!r}", hint)]
    if kind == "propertyNames":
        return [Problem(source.locate(path, key=True), f"{where}: invalid name", hint)]
    if kind == "type":
        message = f"{where}: expected {_expected(expected)}, got {_show(instance)}"
        return [Problem(source.locate(path), message, _type_hint(error, instance) or hint)]
    if kind in ("enum", "const"):
        allowed = expected if kind == "enum" else [expected]
        message = f"{where}: {_show(instance)} is not one of {', '.join(map(str, allowed))}"
        guess = did_you_mean(str(instance), [str(a) for a in allowed])
        return [Problem(source.locate(path), message, guess or hint)]
    if kind == "uniqueItems":
        dup = _first_duplicate(instance)
        return [Problem(source.locate(path), f"{where}: {dup!r} is listed twice", "list it once")]
    if kind == "maxItems":
        message = f"{where}: {len(instance)} entries, at most {expected} allowed"
        return [Problem(source.locate(path), message, hint)]
    if kind in ("minimum", "maximum", "minItems", "minProperties", "maxLength", "minLength"):
        bound = {
            "minimum": f" (the least is {expected})",
            "maximum": f" (the most is {expected})",
            "maxLength": f" (at most {expected} characters)",
            "minLength": f" (at least {expected} characters)",
        }.get(kind, "")
        message = f"{where}: {_show(instance)} is too {'small' if kind.startswith('min') else 'large'}{bound}"
        return [Problem(source.locate(path), message, hint or ("" if bound else error.message))]
    if kind == "pattern":
        return [Problem(source.locate(path), f"{where}: {_show(instance)} is not in the expected form", hint)]
    return [Problem(source.locate(path), f"{where}: {error.message}", hint)]


def _unknown_keys(source: Source, error: ValidationError, path: Path) -> list[Problem]:
    schema: Any = error.schema
    instance: Any = error.instance
    allowed = list(schema.get("properties", {}))
    unknown = [key for key in instance if key not in allowed]
    problems = []
    for key in unknown:
        hint = did_you_mean(key, allowed) or f"allowed here: {', '.join(allowed)}"
        where = describe_path(path)
        problems.append(Problem(source.locate((*path, key), key=True), f"{where}: unknown key {key!r}", hint))
    return problems


def suggest(word: str, choices: list[str]) -> str | None:
    """The choice closest to ``word`` (ignoring case), if any is close."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, choices: list[str]) -> str:
    """``did you mean 'x'?`` or nothing."""
    close = suggest(word, choices)
    return f"did you mean {close!r}?" if close else ""


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names if t != "null") or "nothing"


def _type_hint(error: ValidationError, instance: Any) -> str:
    wanted: Any = error.validator_value
    if wanted == "boolean" and isinstance(instance, str):
        return f"write true or false (this file is read as YAML 1.2: {instance!r} is text)"
    if wanted == "string" and isinstance(instance, (int, float, bool)):
        return "put the value in quotes"
    if wanted == "integer" and isinstance(instance, float) and instance.is_integer():
        return f"write {int(instance)}, without a decimal point"
    if wanted == "integer" and isinstance(instance, float):
        return "write a whole number"
    return ""


MAX_SHOWN = 60  # characters of a value quoted in a message: a 3,000-character URL is not repeated whole


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    shown = repr(value)
    return shown if len(shown) <= MAX_SHOWN else f"{shown[: MAX_SHOWN - 1]}… ({len(shown):,} characters)"


def _first_duplicate(items: Any) -> Any:
    seen: list[Any] = []
    for item in items if isinstance(items, list) else []:
        if item in seen:
            return item
        seen.append(item)
    return None
