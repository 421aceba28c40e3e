"""The plan for a terminal or a log: Terraform-like, coloured when asked to."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TextIO

from ..core.changes import Held, Plan
from ..core.vocabulary import Action, RolloutState, When
from . import schedules
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
            for change in group.changes:
                sign = _SIGNS[change.action]
                origin = f"  [{change.source}]" if change.source is not None and str(change.source) else ""
                out.append(paint(sign, f"  {sign} {change.address}") + f"  ({change.summary}){origin}")
                for line_sign, text in change_lines(change):
                    out.append(paint(line_sign, f"      {line_sign} {text}"))
                if group.kind in schedules.VARYING:
                    out.append(f"      . {change.schedule.reason}")
            out.append("")
    if plan.drift:
        out.append("Changed outside reconciler (drift):")
        for d in plan.drift:
            out.append(paint("!", f"  ! {d.address} {d.field}") + f": recorded {d.recorded}, now {d.observed}")
        out.append("")
    if plan.adoptions:
        out.append("Already in place, to be recorded without sending anything:")
        out.extend(f"  = {a.address}" for a in plan.adoptions)
        out.append("")
    waiting = idle(plan)
    if waiting:
        out.append("Waiting for actions under way (nothing to send for them):")
        shown = waiting if len(waiting) <= MAX_HELD else waiting[:MAX_HELD]
        out.extend(f"  . {h.address}: {h.reason}" for h in shown)
        if len(waiting) > MAX_HELD:
            out.append(f"  … and {len(waiting) - MAX_HELD:,} more (--format json lists them all)")
        out.append("")
    if plan.unobserved:
        out.append("Not reported since reconciler's last change (planned against the recorded state, not drift):")
        out.extend(f"  ? {u.address}: {u.reason}" for u in plan.unobserved[:MAX_HELD])
        if len(plan.unobserved) > MAX_HELD:
            out.append(f"  … and {len(plan.unobserved) - MAX_HELD:,} more (--format json lists them all)")
        out.append("")
    if plan.cannot_apply:
        out.append("Cannot apply (never sent, not a failure):")
        out.extend(f"  x {c.address}: {c.reason}" for c in plan.cannot_apply)
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


def idle(plan: Plan) -> list[Held]:
    """Held addresses with no change of their own: their action is under way, and nothing else is to send."""
    changing = {c.address for c in plan.changes}
    return [h for h in plan.held if h.address not in changing]


MAX_HELD = 50


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
