"""Field-level lines under each change, shared by the text and Markdown plans.

Whole slots added or removed are described directly; a slot, callback or
preference that changed is compared field by field with deepdiff.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.changes import Change, SensitiveField
from ..core.timeofday import describe_days
from ..core.vocabulary import Action

Line = tuple[str, str]  # sign (+ - ~), text
_ARROW = " → "


def change_lines(change: Change) -> list[Line]:
    """What a reviewer needs to see under ``change``: ``~ path: old → new``, ``+ path: new``, ``- path: old``."""
    if change.action in (Action.PAUSE, Action.RESUME):
        return [("~", f"status: {'Running → Paused' if change.action == Action.PAUSE else 'Paused → Running'}")]
    before, after = _view(change.before), _view(change.after)
    if change.action == Action.DELETE:
        return []
    secret = tuple(f"{s.path}:" for s in change.sensitive)
    # A secret's place gets one line, the sensitive one: never its value, never twice.
    lines = [line for line in _diff(before or {}, after or {}) if not line[1].startswith(secret)]
    lines += [_sensitive_line(s) for s in change.sensitive]
    return lines


def unified_lines(change: Change) -> list[Line]:
    """The same as ``-``/``+`` pairs, as a unified diff shows them (a pull request's diff block colours them)."""
    unified: list[Line] = []
    for sign, text in change_lines(change):
        path, _, values = text.partition(": ")
        if sign == "~" and _ARROW in values:
            old, new = values.split(_ARROW, 1)
            unified += [("-", f"{path}: {old}"), ("+", f"{path}: {new}")]
        else:
            unified.append((" " if sign == "~" else sign, text))
    return unified


def _view(value: Any) -> Any:
    """A flat, readable form: programs keyed by slot, lists joined."""
    if isinstance(value, list):
        return {f"slot {p['slot']}": _program_text(p) for p in value}
    if isinstance(value, dict):
        return {k: _flatten(v) for k, v in value.items() if k != "status"}
    return value


def _program_text(program: dict[str, Any]) -> dict[str, Any]:
    text = {k: v for k, v in program.items() if k != "slot"}
    text["days"] = describe_days(tuple(program["days"]))
    return text


def _flatten(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return {k: _flatten(v) for k, v in value.items()}
    return value


def _diff(before: dict[str, Any], after: dict[str, Any]) -> Iterator[Line]:
    for name in sorted(set(before) | set(after), key=_order):
        if name not in before:
            yield from (("+", f"{path}: {_show(v)}") for path, v in _leaves(name, after[name]))
        elif name not in after:
            yield from (("-", f"{path}: {_show(v)}") for path, v in _leaves(name, before[name]))
        elif before[name] != after[name]:
            yield from _field_changes(name, before[name], after[name])


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """``webhook.headers.X: v`` lines for a nested mapping; a program stays one line."""
    if isinstance(value, dict) and not ("start" in value and "days" in value):
        for key, inner in value.items():
            yield from _leaves(f"{name}.{key}", inner)
    else:
        yield name, value


def _field_changes(name: str, old: Any, new: Any) -> Iterator[Line]:
    from deepdiff import DeepDiff  # imported here: only human output needs it

    tree = DeepDiff(old, new, view="tree", verbose_level=2)
    for report, levels in tree.items():
        for level in sorted(levels, key=lambda lv: str(lv.path())):
            where = ".".join(str(step) for step in [name, *level.path(output_format="list")])
            if "added" in report:
                yield "+", f"{where}: {_show(level.t2)}"
            elif "removed" in report:
                yield "-", f"{where}: {_show(level.t1)}"
            else:
                yield "~", f"{where}: {_show(level.t1)}{_ARROW}{_show(level.t2)}"


def _sensitive_line(field: SensitiveField) -> Line:
    return ("~" if field.changed else " "), f"{field.path}: (sensitive, {'changed' if field.changed else 'unchanged'})"


def _order(name: str) -> tuple[int, str]:
    return (0, name) if name.startswith("slot ") or name == "webhook" else (1, name)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        if "start" in value and "days" in value:
            span = f"{value['start']}–{value['end']}" if "end" in value else value["start"]
            extra = "" if value.get("enabled", True) else ", disabled"
            return f"{span} {value['days']}{extra}"
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
