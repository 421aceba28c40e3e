"""The plan as JSON (DESIGN §4): what ``--format json`` prints and ``--out`` saves."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, TextIO

import orjson

from ..core.changes import FORMAT_VERSION, Change, Plan, Schedule
from ..core.model import Source
from ..core.sensitive import json_default

_STREAMED = object()  # where the changes go, written one by one


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as a dict for ``dumps``: request bodies may still hold secrets."""
    document = _document(plan)
    document["changes"] = [change_document(c) for c in plan.changes]
    return document


def _document(plan: Plan) -> dict[str, Any]:
    summary = {str(action): count for action, count in plan.summary().items()}
    return {
        "format_version": FORMAT_VERSION,
        "fleet": plan.fleet,
        "state": {"lineage": plan.lineage, "serial": plan.serial},
        "refreshed": plan.refreshed,
        "refresh": {
            "requested": plan.refreshed or bool(plan.refresh_error),
            "ok": plan.refreshed,
            "error": plan.refresh_error or None,
        },
        "warnings": list(plan.warnings),
        "targets": list(plan.targets),
        "changes": _STREAMED,
        "drift": [
            {"address": d.address, "field": d.field, "recorded": d.recorded, "observed": d.observed} for d in plan.drift
        ],
        "held": [{"address": h.address, "reason": h.reason, "kind": h.kind} for h in plan.held],
        "cannot_apply": [{"address": c.address, "reason": c.reason} for c in plan.cannot_apply],
        "unobserved": [
            {"address": u.address, "reported_at": u.reported_at, "confirmed_at": u.confirmed_at, "reason": u.reason}
            for u in plan.unobserved
        ],
        "adoptions": [{"address": a.address, "id": a.identity, "after": a.after} for a in plan.adoptions],
        "summary": {
            **summary,
            **plan.notable(),
            "now": len(plan.going),
            "later": len(plan.changes) - len(plan.going),
            "adopt": len(plan.adoptions),
            "drift": len(plan.drift),
            "held": len(plan.held),
            "cannot_apply": len(plan.cannot_apply),
            "unobserved": len(plan.unobserved),
        },
        "api_calls": {"total": plan.api_calls, "changes": len(plan.going), "lookups": plan.lookups},
        "rollout": _rollout(plan),
        "window": _window(plan),
    }


def _rollout(plan: Plan) -> dict[str, Any] | None:
    view = plan.rollout
    if view is None:
        return None
    return {
        "state": view.state,
        "wave": view.wave,
        "waves": view.waves,
        "vehicles": view.vehicles,
        "held": view.held,
        "next_wave_at": view.next_wave_at or None,
        "halt": view.halt or None,
        "bake": view.bake,
    }


def _window(plan: Plan) -> dict[str, Any] | None:
    view = plan.window
    if view is None:
        return None
    return {
        "open": view.open,
        "opens_at": view.opens_at or None,
        "closes_at": view.closes_at or None,
        "ignored": view.ignored,
        "described": view.described,
    }


def write(
    plan: Plan, out: TextIO, *, first: Mapping[str, Any] | None = None, last: Mapping[str, Any] | None = None
) -> None:
    """Write the plan as JSON, one change, drift or held entry per line (``first``/``last``: keys around it).

    Streamed entry by entry, and each change assembled from the JSON of its
    parts: the parts vehicles share (programs before and after, request bodies,
    summaries, sources) are encoded once, not 300,000 times, and the plan is
    never one big document in memory.
    """
    document = {**(first or {}), **_document(plan), **(last or {})}
    encoder = _Fragments()
    out.write("{")
    for index, (name, value) in enumerate(document.items()):
        out.write(f"{',' if index else ''}\n {json.dumps(name)}: ")
        if value is _STREAMED:
            entries: Iterator[str] = (encoder.change(c) for c in plan.changes)
        elif isinstance(value, list) and value:
            entries = (dumps(entry) for entry in value)
        else:
            out.write(dumps(value))
            continue
        _write_list(out, entries)
    out.write("\n}\n")


def _write_list(out: TextIO, entries: Iterator[str]) -> None:
    opened = False
    for entry in entries:
        out.write(f"{',' if opened else '['}\n  {entry}")
        opened = True
    out.write("\n ]" if opened else "[]")


def dumps(value: Any) -> str:
    """JSON text in which every secret shows as ``(sensitive)``, never its value.

    orjson encodes a 10,000-vehicle plan ten times faster than ``json``. It
    would serialize dataclasses field by field, secrets included: passing them
    through to ``json_default`` is what keeps a ``Secret`` out of the output.
    """
    return orjson.dumps(value, default=json_default, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode()


def change_document(change: Change) -> dict[str, Any]:
    """One change as the plan's JSON has it."""
    result: dict[str, Any] = {
        "address": change.address,
        "action": change.action,
        "summary": change.summary,
        "before": change.before,
        "after": change.after,
        "request": {
            "method": change.request.method,
            "path": change.request.path,
            "body": change.request.body,
        },
    }
    if change.key:
        result["key"] = change.key
    if change.vin:
        result["vin"] = change.vin
    if change.remote_type:
        result["remote_type"] = change.remote_type
    if change.callback:
        result["callback"] = change.callback
    if change.sensitive:
        result["sensitive"] = [{"path": s.path, "changed": s.changed} for s in change.sensitive]
    if change.source is not None:
        result["source"] = change.source.to_json()
    result["schedule"] = schedule_document(change.schedule)
    return result


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """``{kind, reason, wave?, at?}``: when a change goes (DESIGN §10.1)."""
    document: dict[str, Any] = {"kind": str(schedule.kind), "reason": schedule.reason}
    if schedule.wave is not None:
        document["wave"] = schedule.wave
    if schedule.at:
        document["at"] = schedule.at
    return document


class _Fragments:
    """Encodes changes: the same text as ``dumps(change_document(change))``, made faster.

    A remote action differs from the next vehicle's in its address, key and VIN
    (and, when groups give it, its source) only: everything else (summary,
    programs before and after, path, body, route) is shared by the vehicles that
    get the same thing. That shared text is encoded once, as a template, and
    each change fills in its own values; a source is encoded once too.
    """

    def __init__(self) -> None:
        self._templates: dict[tuple[int, ...], tuple[Any, tuple[str, ...]]] = {}
        self._sources: dict[int, tuple[Source, str]] = {}
        self._last: tuple[Source | None, str] = (None, "")

    def change(self, change: Change) -> str:
        request = change.request
        if change.sensitive or not request.label or not change.key or not change.vin:
            return dumps(change_document(change))  # callbacks: few, and they carry secrets
        shared = (change.summary, change.before, change.after, request.content, change.schedule)
        has_source = change.source is not None
        key = (*map(id, shared), hash(change.action), hash(change.remote_type), hash(change.callback), has_source)
        hit = self._templates.get(key)
        if hit is None:
            hit = self._templates[key] = (shared, _template(change))  # kept: the ids stay their own
        pieces = hit[1]
        label = _text(change.key)
        address, path, vin = _text(change.address), _text(request.path), _text(change.vin)
        if change.source is None:
            p0, p1, p2, p3, p4, p5 = pieces
            return f"{p0}{address}{p1}{path}{p2}{label}{p3}{label}{p4}{vin}{p5}"
        p0, p1, p2, p3, p4, p5, p6 = pieces
        source = self._source(change.source)
        return f"{p0}{address}{p1}{path}{p2}{label}{p3}{label}{p4}{vin}{p5}{source}{p6}"

    def _source(self, source: Source) -> str:
        if source is self._last[0]:
            return self._last[1]  # the vehicles of a group come one after the other
        known = self._sources.get(id(source))
        if known is None or known[0] is not source:
            known = self._sources[id(source)] = (source, dumps(source.to_json()))
        self._last = known
        return known[1]


_MARKS = {name: f"\x00{name}\x00" for name in ("address", "path", "key", "vin", "source")}


class _SourceMark(Source):
    """Stands for a change's source while its template is made."""

    def to_json(self) -> dict[str, object]:
        return _MARKS["source"]  # type: ignore[return-value]  # a marker where the object goes


def _template(change: Change) -> tuple[str, ...]:
    """The change's JSON cut around its address, path, key (the body's label, then the key), VIN and source."""
    marked = change._replace(
        address=_MARKS["address"],
        key=_MARKS["key"],
        vin=_MARKS["vin"],
        request=replace(change.request, path=_MARKS["path"], label=_MARKS["key"]),
        source=_SourceMark() if change.source is not None else None,
    )
    text = dumps(change_document(marked))
    names = ["address", "path", "key", "key", "vin"] + (["source"] if change.source is not None else [])
    pieces = []
    for name in names:
        before, found, text = text.partition(dumps(_MARKS[name]))
        assert found, name
        pieces.append(before)
    return (*pieces, text)


def _text(value: str) -> str:
    """A JSON string; plain quoting for the plain printable ASCII of addresses, paths, keys and VINs."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return dumps(value)
