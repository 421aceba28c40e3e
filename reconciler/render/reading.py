"""A plan read back from its JSON (a saved plan), for ``reconciler show`` to render it again.

The inverse of ``json_plan`` for what the renderers show: changes with their
diffs, sources and schedules, drift, held, adoptions, what cannot apply, the
rollout and the window. A saved plan never holds a secret (they are written
``(sensitive)``), so nothing here can reveal one.
"""

from __future__ import annotations

from typing import Any

from ..core.changes import (
    Adoption,
    CannotApply,
    Change,
    Drift,
    Held,
    Plan,
    Request,
    RolloutView,
    Schedule,
    SensitiveField,
    Unobserved,
    WindowView,
)
from ..core.model import Source
from ..core.vocabulary import Action, RolloutState, When


def plan_of(document: dict[str, Any]) -> Plan:
    """The ``Plan`` a plan's JSON describes (``ValueError``/``KeyError``/``TypeError`` if it does not)."""
    state = document.get("state") or {}
    refresh = document.get("refresh") or {}
    calls = document.get("api_calls") or {}
    return Plan(
        fleet=str(document["fleet"]),
        lineage=str(state.get("lineage", "")),
        serial=int(state.get("serial", 0)),
        changes=tuple(_change(c) for c in document.get("changes", [])),
        drift=tuple(
            Drift(d["address"], d["field"], d.get("recorded"), d.get("observed")) for d in _list(document, "drift")
        ),
        held=tuple(Held(h["address"], h.get("reason", ""), When(h["kind"])) for h in _list(document, "held")),
        adoptions=tuple(Adoption(a["address"], a.get("id", ""), a.get("after")) for a in _list(document, "adoptions")),
        cannot_apply=tuple(CannotApply(c["address"], c.get("reason", "")) for c in _list(document, "cannot_apply")),
        unobserved=tuple(
            Unobserved(u["address"], u.get("reported_at", ""), u.get("confirmed_at", ""))
            for u in _list(document, "unobserved")
        ),
        refreshed=bool(document.get("refreshed")),
        refresh_error=str(refresh.get("error") or ""),
        lookups=int(calls.get("lookups", 0)),
        targets=tuple(document.get("targets") or ()),
        warnings=tuple(document.get("warnings") or ()),
        rollout=_rollout(document.get("rollout")),
        window=_window(document.get("window")),
    )


def _list(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = document.get(name) or []
    return [item for item in value if isinstance(item, dict)]


def _change(document: dict[str, Any]) -> Change:
    request = document.get("request") or {}
    body = request.get("body")
    label = body.get("label", "") if isinstance(body, dict) and document.get("key") else ""
    content = {k: v for k, v in body.items() if k != "label"} if label and isinstance(body, dict) else body
    schedule = document.get("schedule") or {"kind": "now"}
    source = document.get("source")
    return Change(
        address=document["address"],
        action=Action(document["action"]),
        before=document.get("before"),
        after=document.get("after"),
        request=Request(str(request.get("method", "")), str(request.get("path", "")), content, label),
        summary=str(document.get("summary", "")),
        key=str(document.get("key", "")),
        vin=document.get("vin"),
        remote_type=document.get("remote_type"),
        callback=document.get("callback"),
        sensitive=tuple(SensitiveField(s["path"], bool(s["changed"])) for s in document.get("sensitive") or ()),
        source=Source(source.get("group"), source.get("profile"), bool(source.get("vehicle"))) if source else None,
        schedule=Schedule(
            When(schedule["kind"]), str(schedule.get("reason", "")), schedule.get("wave"), str(schedule.get("at", ""))
        ),
    )


def _rollout(view: Any) -> RolloutView | None:
    if not isinstance(view, dict):
        return None
    return RolloutView(
        RolloutState(view["state"]),
        int(view["wave"]),
        int(view["waves"]),
        int(view.get("vehicles", 0)),
        int(view.get("held", 0)),
        str(view.get("next_wave_at") or ""),
        str(view.get("halt") or ""),
        float(view.get("bake") or 0.0),
    )


def _window(view: Any) -> WindowView | None:
    if not isinstance(view, dict):
        return None
    opens, closes = str(view.get("opens_at") or ""), str(view.get("closes_at") or "")
    described = str(view.get("described") or "")
    if not described:
        described = (f"open until {closes}" if closes else "open") if view.get("open") else f"closed until {opens}"
    return WindowView(bool(view.get("open")), opens, closes, described, bool(view.get("ignored")))
