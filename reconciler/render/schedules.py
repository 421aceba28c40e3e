"""A plan's changes by when they go, and how to say it: what the text and Markdown plans group by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core import durations
from ..core.changes import Change, Plan
from ..core.vocabulary import When

# The order groups are shown in; a rollout's waves in their order among the WAVE ones.
ORDER = (When.NOW, When.WINDOW, When.WAVE, When.BUDGET, When.BACKOFF, When.PENDING, When.HALTED)
VARYING = (When.BUDGET, When.BACKOFF, When.PENDING)  # each change of these says its own reason


@dataclass(frozen=True)
class Group:
    kind: When
    wave: int | None
    headline: str
    changes: Sequence[Change]


def groups(plan: Plan) -> list[Group]:
    """The plan's changes in groups of one schedule, in the order they go."""
    found: dict[tuple[When, int | None, str], list[Change]] = {}
    for change in plan.changes:
        schedule = change.schedule
        key = (schedule.kind, schedule.wave, "" if schedule.kind in VARYING else schedule.at)
        found.setdefault(key, []).append(change)
    ordered = sorted(found.items(), key=lambda item: (ORDER.index(item[0][0]), item[0][1] or 0, item[0][2]))
    return [Group(kind, wave, headline(plan, kind, wave, changes), changes) for (kind, wave, _), changes in ordered]


def headline(plan: Plan, kind: When, wave: int | None, changes: Sequence[Change]) -> str:
    """``Now — wave 1 of 3``, ``Wave 2 of 3, after a 10m bake, if wave 1 passes`` …"""
    view = plan.rollout
    waves = view.waves if view is not None else 0
    if kind == When.NOW:
        return f"Now — wave {wave} of {waves}" if wave and waves else "Now"
    if kind == When.WAVE:
        bake = f"after a {durations.describe(view.bake)} bake, " if view is not None and view.bake else ""
        return f"Wave {wave} of {waves}, {bake}if wave {(wave or 1) - 1} passes"
    if kind == When.WINDOW:
        opens = plan.window.described.removeprefix("closed until ") if plan.window is not None else ""
        said = f"When the change window opens ({opens})" if opens else "When the change window opens"
        return f"{said} — wave {wave} of {waves}" if wave and waves else said
    if kind == When.BUDGET:
        at = changes[0].schedule.at[:10] if changes and changes[0].schedule.at else ""
        return f"When the wake-up budget comes back ({at})" if at else "When the wake-up budget comes back"
    if kind == When.BACKOFF:
        return "After a backoff (each said below)"
    if kind == When.PENDING:
        return "Once the actions under way end"
    return "Held by the halted rollout (reconciler apply --continue-rollout goes on)"


def later(plan: Plan) -> str:
    """``26 later: 20 in later waves, 6 when the window opens`` or ""."""
    counts: dict[When, int] = {}
    for change in plan.changes:
        if not change.schedule.now:
            counts[change.schedule.kind] = counts.get(change.schedule.kind, 0) + 1
    if not counts:
        return ""
    said = ", ".join(f"{n:,} {WAITING[kind]}" for kind, n in sorted(counts.items(), key=lambda kv: ORDER.index(kv[0])))
    return f"{sum(counts.values()):,} later: {said}"


WAITING = {
    When.WAVE: "in later waves",
    When.WINDOW: "when the window opens",
    When.BUDGET: "when the wake-up budget comes back",
    When.BACKOFF: "after a backoff",
    When.PENDING: "once actions under way end",
    When.HALTED: "held by the halted rollout",
}


def notable(plan: Plan) -> str:
    """What a reviewer must not miss, in words: ``deletes 14 program slots, immobilizes 2 vehicles`` …"""
    counts = plan.notable()
    words = (
        ("slots_deleted", "deletes {n} program slot{s}"),
        ("immobilize", "immobilizes {n} vehicle{s}"),
        ("release", "releases {n} immobilized vehicle{s}"),
        ("stolen_set", "declares {n} vehicle{s} stolen"),
        ("stolen_cleared", "clears the stolen state of {n} vehicle{s}"),
        ("callbacks_deleted", "deletes {n} callback{s}"),
    )
    said = [text.format(n=f"{counts[key]:,}", s="" if counts[key] == 1 else "s") for key, text in words if counts[key]]
    return ", ".join(said)
