"""The plan for a terminal or a log: Terraform-like, coloured when asked to."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO

from ..core.changes import Drift, Held, Plan
from ..core.vocabulary import Action, RolloutState, When
from . import grouping, schedules
from .details import change_lines

_SIGNS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.PAUSE: "~",
    Action.RESUME: "~",
    Action.SEND: "~",
}
_COLOURS = {"+": "32", "-": "31", "~": "33", "!": "35"}


def render(plan: Plan, *, color: bool = False) -> str:
    """The plan as text (see ``write``)."""
    out = io.StringIO()
    write(plan, out, color=color)
    return out.getvalue()


def write(plan: Plan, stream: TextIO, *, color: bool = False) -> None:
    """Write the plan for people, change by change."""

    def paint(sign: str, text: str) -> str:
        code = _COLOURS.get(sign)
        return f"\033[{code}m{text}\033[0m" if color and code else text

    out = _Lines(stream)
    if plan.refresh_error:
        out.append(paint("-", f"Refresh failed: {plan.refresh_error}"))
        out.append(
            "  This plan was made against the recorded state only: changes made outside reconciler (drift) "
            "are not seen.\n"
        )
    for warning in plan.warnings:
        out.append(paint("!", f"Warning: {warning}"))
    if plan.warnings:
        out.append("")
    for line in brakes(plan):
        out.append(paint("!", line) if "halted" in line or "closed" in line else line)
    if plan.rollout is not None or plan.window is not None:
        out.append("")
    if plan.changes:
        out.append(f"reconciler will make these changes to fleet {plan.fleet}:\n")
        for group in schedules.groups(plan):
            out.append(paint("!" if group.kind != When.NOW else "", f"{group.headline}:"))
            for same in grouping.same_changes(group.changes, by_reason=group.kind in schedules.VARYING):
                change = same.first
                sign = _SIGNS[change.action]
                origin = f"  [{change.source}]" if change.source is not None and str(change.source) else ""
                out.append(paint(sign, f"  {sign} {same.address}") + f"  ({change.summary}){origin}")
                for line_sign, text in change_lines(change):
                    out.append(paint(line_sign, f"      {line_sign} {text}"))
                if len(same.vins) > 1:
                    out.append(f"      vehicles: {grouping.listed(same.vins, MAX_VINS)}")
                if group.kind in schedules.VARYING:
                    out.append(f"      . {change.schedule.reason}")
            out.append("")
    if plan.drift:
        out.append("Changed outside reconciler (drift):")
        for (where, recorded, observed), found in _drift_groups(plan):
            one = found[0]
            shown = f"{one.address} {one.field}" if len(found) == 1 else f"{where} on {len(found):,} vehicles"
            line = paint("!", f"  ! {shown}") + f": recorded {recorded}, now {observed}"
            out.append(line + (f" — {grouping.listed(_vins(found), MAX_VINS)}" if len(found) > 1 else ""))
        out.append("")
    if plan.adoptions:
        out.append("Already in place, to be recorded without sending anything:")
        for part, found in _by_part(plan.adoptions):
            if len(found) == 1:
                out.append(f"  = {found[0].address}")
            else:
                out.append(f"  = {part} on {len(found):,} vehicles: {grouping.listed(_vins(found), MAX_VINS)}")
        out.append("")
    waiting = idle(plan)
    if waiting:
        out.append("Waiting for actions under way (nothing to send for them):")
        out.extend(_reasons(waiting, "."))
        out.append("")
    if plan.unobserved:
        out.append("Not reported since reconciler's last change (planned against the recorded state, not drift):")
        out.extend(_reasons(plan.unobserved, "?"))
        out.append("")
    if plan.cannot_apply:
        out.append("Cannot apply (never sent, not a failure):")
        out.extend(_reasons(plan.cannot_apply, "x"))
        out.append("")
    if not plan.changes:
        out.append(f"No changes. Fleet {plan.fleet} matches the configuration.")
        return
    counts = plan.summary()
    going, later = len(plan.going), schedules.later(plan)
    when = f" — {going:,} now, {later}" if later else ""
    out.append("Plan: " + ", ".join(f"{n:,} to {action}" for action, n in counts.items() if n) + when + ".")
    notable = schedules.notable(plan)
    if notable:
        out.append(paint("-", f"Of note: it {notable}."))
    if not going:
        out.append("Apply sends nothing now: every change waits, as said above.")
        return
    out.append(
        f"Apply will make {plan.api_calls:,} API calls now ({going:,} changes"
        + (f", {plan.lookups:,} VIN look-ups" if plan.lookups else "")
        + "), plus status polls while it waits for the vehicles."
    )


MAX_VINS = 10  # VINs named under a change many vehicles share (--format json lists every change)


class _Said(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def reason(self) -> str: ...


def _reasons(items: Sequence[_Said], mark: str) -> list[str]:
    """A line per item when its reason is its own; one line per reason, counted, when many share it."""
    lines = []
    for reason, found in grouping.by_reason(items, lambda i: i.address, lambda i: i.reason):
        if len(found) == 1:
            lines.append(f"  {mark} {found[0].address}: {found[0].reason}")
        else:
            lines.append(f"  {mark} {len(found):,} × {reason} — {grouping.listed(_vins(found), MAX_VINS)}")
    return lines


def _vins(items: Sequence[Any]) -> list[str]:
    return grouping.vins_of([i.address for i in items])


def _by_part(items: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """Items by the part of their address (``preconditioning``, ``callback.ops`` …), in order."""
    found: dict[str, list[Any]] = {}
    for item in items:
        part = item.address.split(".", 2)[2] if item.address.startswith("vehicle.") else item.address
        found.setdefault(part, []).append(item)
    return list(found.items())


def _drift_groups(plan: Plan) -> list[tuple[tuple[str, str, str], list[Drift]]]:
    """Drift by (part and field, recorded, observed): the same drift on many vehicles is one line."""
    found: dict[tuple[str, str, str], list[Drift]] = {}
    for d in plan.drift:
        part = d.address.split(".", 2)[2] if d.address.startswith("vehicle.") else d.address
        found.setdefault((f"{part} {d.field}", str(d.recorded), str(d.observed)), []).append(d)
    return list(found.items())


def idle(plan: Plan) -> list[Held]:
    """Held addresses with no change of their own: their action is under way, and nothing else is to send."""
    changing = {c.address for c in plan.changes}
    return [h for h in plan.held if h.address not in changing]


def brakes(plan: Plan) -> list[str]:
    """Where the rollout and the change window stand, in a line each."""
    lines = []
    view = plan.rollout
    if view is not None and view.state == RolloutState.HALTED:
        lines.append(
            f"Rollout halted at {view.halt}. apply --continue-rollout retries the failed vehicles, then goes on."
        )
    elif view is not None and view.state == RolloutState.DONE:
        lines.append("Rollout: done, every wave went; changes now go without waves.")
    elif view is not None:
        line = (
            f"Rollout: wave {view.wave} of {view.waves} ({view.vehicles:,} vehicle{'' if view.vehicles == 1 else 's'})"
        )
        if view.held:
            line += f"; {view.held:,} changes wait for later waves"
        if view.next_wave_at:
            line += f"; the next wave may start at {view.next_wave_at}"
        lines.append(line + ".")
    if plan.window is not None:
        window = plan.window
        if window.ignored:
            suffix = "; ignored (--ignore-windows): every change goes as if it were open"
        else:
            suffix = "" if window.open else "; only urgent changes (immobilization, stolen) go"
        lines.append(f"Change window: {window.described}{suffix}.")
    return lines


class _Lines:
    """Writes each line as it comes, so a 10,000-vehicle plan is never one big string."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def append(self, line: str) -> None:
        self.stream.write(line + "\n")

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(line)
