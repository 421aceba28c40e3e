"""The plan as a pull-request comment: summary, warnings, a collapsed section per vehicle."""

from __future__ import annotations

from collections import defaultdict

from ..core.changes import Change, Plan
from ..core.vocabulary import Action, When
from . import schedules
from .details import unified_lines
from .text import brakes, idle

LIMIT = 65_000
_ICONS = {
    Action.CREATE: "➕",
    Action.UPDATE: "✏️",
    Action.DELETE: "🗑️",
    Action.PAUSE: "⏸️",
    Action.RESUME: "▶️",
    Action.SEND: "📡",
}


def render(plan: Plan, *, limit: int = LIMIT) -> str:
    """Markdown of at most ``limit`` characters; what does not fit is counted in a note."""
    head = _head(plan)
    sections = _sections(plan)
    out = [head]
    used = len(head)
    for index, section in enumerate(sections):
        left = len(sections) - index
        note = (
            f"\n> ✂️ {left} more sections not shown: the plan is too long for a comment. "
            "Run `reconciler plan` to see it all.\n"
        )
        if used + len(section) + len(note) > limit:
            out.append(note)
            break
        out.append(section)
        used += len(section)
    return "".join(out)


def _head(plan: Plan) -> str:
    lines = [f"### reconciler plan for fleet `{plan.fleet}`\n"]
    if plan.refresh_error:
        lines.append("> [!CAUTION]")
        lines.append(f"> **Refresh failed**: {_inline(plan.refresh_error)}")
        lines.append("> This plan was made against the recorded state only: drift is not seen.\n")
    if plan.warnings:
        lines.append("> [!NOTE]")
        lines.extend(f"> {_inline(w)}  " for w in plan.warnings)
        lines.append("")
    said = brakes(plan)
    if said:
        lines.append("> [!IMPORTANT]" if any("halted" in s or "closed" in s for s in said) else "> [!NOTE]")
        lines.extend(f"> {_inline(s)}  " for s in said)
        lines.append("")
    notable = schedules.notable(plan)
    if notable:
        deletes = [c for c in plan.changes if c.action == Action.DELETE or c.removed]
        immobilized = [c.vin for c in plan.changes if isinstance(c.after, dict) and c.after.get("immobilized") is True]
        lines.append("> [!WARNING]")
        lines.append(f"> This plan **{notable}** (whatever their schedule).  ")
        if deletes:
            lines.append(
                f"> Deleting: {', '.join(f'`{c.address}`' for c in deletes[:20])}"
                + (f" and {len(deletes) - 20} more" if len(deletes) > 20 else "")
                + "  "
            )
        if immobilized:
            lines.append(
                f"> Immobilizing: {', '.join(f'`{v}`' for v in immobilized[:20])}"
                + (f" and {len(immobilized) - 20} more" if len(immobilized) > 20 else "")
            )
        lines.append("")
    if not plan.changes:
        lines.append("**No changes.** The fleet matches the configuration.\n")
    else:
        lines.append("| action | count |\n|---|---:|")
        for action, count in plan.summary().items():
            if count:
                lines.append(f"| {_ICONS[action]} {action} | {count:,} |")
        later = schedules.later(plan)
        if not plan.going:
            lines.append(f"\nApply sends **nothing now**: every change waits ({later}).\n")
        else:
            lines.append(
                f"\nApply will make **{plan.api_calls:,} API calls now** "
                f"({len(plan.going):,} changes, {plan.lookups:,} VIN look-ups), plus status polls"
                + (f"; {later}." if later else ".")
                + "\n"
            )
    if plan.drift:
        lines.append(f"**Drift:** {len(plan.drift)} difference(s) changed outside reconciler.\n")
    if plan.adoptions:
        lines.append(f"**Already in place:** {len(plan.adoptions)} address(es) to record, nothing sent.\n")
    waiting = idle(plan)
    if waiting:
        lines.append(f"**Waiting for actions under way:** {len(waiting):,} address(es), nothing to send for them.\n")
    if plan.cannot_apply:
        lines.append(f"**Cannot apply:** {len(plan.cannot_apply)} address(es) the vehicles cannot take (never sent).\n")
    if plan.unobserved:
        lines.append(
            f"**Not reported since the last change:** {len(plan.unobserved)} address(es) whose vehicle's report "
            "predates reconciler's last confirmed action (planned against the recorded state).\n"
        )
    return "\n".join(lines) + "\n"


def _sections(plan: Plan) -> list[str]:
    sections = []
    for group in schedules.groups(plan):
        sections.append(f"#### {group.headline} — {len(group.changes):,} change(s)\n\n")
        callbacks = [c for c in group.changes if not c.vin]
        if callbacks:
            body = "".join(_change(c, group.kind) for c in callbacks)
            sections.append(_collapsed(f"<b>Callbacks</b> — {len(callbacks)} change(s)", body))
        by_vehicle: dict[str, list[Change]] = defaultdict(list)
        for change in group.changes:
            if change.vin:
                by_vehicle[change.vin].append(change)
        for vin, changes in by_vehicle.items():
            body = "".join(_change(c, group.kind) for c in changes)
            sections.append(_collapsed(f"<code>{vin}</code> — {len(changes)} change(s)", body))
    if plan.drift:
        rows = "".join(f"| `{d.address}` | {d.field} | {d.recorded} | {d.observed} |\n" for d in plan.drift)
        sections.append(_collapsed("<b>Drift</b>", f"| address | field | recorded | now |\n|---|---|---|---|\n{rows}"))
    if waiting := idle(plan):
        rows = "".join(f"- `{h.address}`: {h.reason}\n" for h in waiting)
        sections.append(_collapsed("<b>Waiting for actions under way</b>", rows))
    if plan.cannot_apply:
        rows = "".join(f"- `{c.address}`: {c.reason}\n" for c in plan.cannot_apply)
        sections.append(_collapsed("<b>Cannot apply</b>", rows))
    return sections


def _inline(text: str) -> str:
    """One line of text in a Markdown quote, its own line breaks and backticks made harmless."""
    return " ".join(text.split()).replace("`", "'")


def _collapsed(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n</details>\n\n"


def _change(change: Change, kind: When) -> str:
    origin = f" _({change.source})_" if change.source is not None and str(change.source) else ""
    text = f"- {_ICONS[change.action]} `{change.address}` — {change.summary}{origin}\n"
    if kind in schedules.VARYING:
        text += f"  _{_inline(change.schedule.reason)}_\n"
    lines = unified_lines(change)
    if lines:
        text += "\n  ```diff\n" + "".join(f"  {sign} {line}\n" for sign, line in lines) + "  ```\n"
    return text
