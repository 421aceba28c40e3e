"""The plan as a pull-request comment: summary, warnings, a collapsed section per distinct change."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.changes import Change, Plan
from ..core.vocabulary import Action, When
from . import grouping, schedules
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


def render(plan: Plan, *, limit: int = LIMIT, ci: Mapping[str, str] | None = None) -> str:
    """Markdown of at most ``limit`` characters: every distinct change once, with the vehicles it touches.

    The head, each distinct change's section and the footer come first; the
    room left is shared among the VIN lists (each says how many it leaves
    out). When even the sections do not fit, the last ones are counted in a
    note instead.
    """
    head, foot = _head(plan), _footer(ci or {})
    sections = _sections(plan)
    fixed = len(head) + len(foot) + sum(len(s.text) for s in sections)
    listed = [s for s in sections if len(s.vins) > 1]
    if fixed <= limit:
        room = (limit - fixed - 200) // max(1, len(listed))  # a little kept for rounding
        return head + "".join(s.text.replace(_VINS, _vin_list(s.vins, room)) for s in sections) + foot
    out = [head]
    used = len(head) + len(foot)
    for index, section in enumerate(sections):
        left = len(sections) - index
        note = (
            f"\n> ✂️ {left:,} more sections not shown: the plan is too long for a comment. "
            "Run `reconciler plan` to see it all.\n"
        )
        text = section.text.replace(_VINS, _vin_list(section.vins, 0))
        if used + len(text) + len(note) > limit:
            out.append(note)
            break
        out.append(text)
        used += len(text)
    return "".join(out) + foot


_VINS = "\x00VINS\x00"  # where a section's VIN list goes, once the room for it is known


@dataclass(frozen=True)
class _Section:
    text: str  # with _VINS where the VIN list goes
    vins: Sequence[str] = ()


def _vin_list(vins: Sequence[str], room: int) -> str:
    """As many of ``vins`` as ``room`` characters hold, and how many more."""
    if len(vins) <= 1:
        return ""
    shown: list[str] = []
    used = 0
    for vin in vins:
        cost = len(vin) + 3
        if used + cost > room - 80:
            break
        shown.append(f"`{vin}`")
        used += cost
    rest = len(vins) - len(shown)
    more = f" and {rest:,} more (`reconciler plan --format json` lists every change)" if rest else ""
    return (" ".join(shown) if shown else f"{len(vins):,} vehicles") + more + "\n"


def _footer(ci: Mapping[str, str]) -> str:
    """Which commit and CI run made the plan, when the CI says (GitHub Actions, GitLab CI)."""
    said = []
    sha = ci.get("GITHUB_SHA") or ci.get("CI_COMMIT_SHA") or ""
    server, repo, run = ci.get("GITHUB_SERVER_URL", ""), ci.get("GITHUB_REPOSITORY", ""), ci.get("GITHUB_RUN_ID", "")
    if _SHA.fullmatch(sha):
        if _URL.fullmatch(server) and _REPO.fullmatch(repo):
            said.append(f"commit [`{sha[:12]}`]({server}/{repo}/commit/{sha})")
        else:
            said.append(f"commit `{sha[:12]}`")
    if _URL.fullmatch(server) and _REPO.fullmatch(repo) and run.isdigit():
        said.append(f"[CI run {run}]({server}/{repo}/actions/runs/{run})")
    elif _URL.fullmatch(ci.get("CI_PIPELINE_URL", "")):
        said.append(f"[CI pipeline]({ci['CI_PIPELINE_URL']})")
    if not said:
        return ""
    return f"\n<sub>Planned at {' · '.join(said)}.</sub>\n"


_SHA = re.compile(r"[0-9a-f]{7,64}")
_URL = re.compile(r"https://[A-Za-z0-9.\-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~\-/]*)?")
_REPO = re.compile(r"[A-Za-z0-9._\-]+/[A-Za-z0-9._\-]+")


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


def _sections(plan: Plan) -> list[_Section]:
    sections: list[_Section] = []
    for group in schedules.groups(plan):
        sections.append(_Section(f"#### {group.headline} — {len(group.changes):,} change(s)\n\n"))
        callbacks = [c for c in group.changes if not c.vin]
        if callbacks:
            body = "".join(_change(c, group.kind) for c in callbacks)
            sections.append(_Section(_collapsed(f"<b>Callbacks</b> — {len(callbacks)} change(s)", body)))
        vehicles = (c for c in group.changes if c.vin)
        for same in grouping.same_changes(vehicles, by_reason=group.kind in schedules.VARYING):
            sections.append(_same(same, group.kind))
    if plan.drift:
        rows = "".join(f"| `{d.address}` | {d.field} | {d.recorded} | {d.observed} |\n" for d in plan.drift[:MAX_ROWS])
        more = f"\n{len(plan.drift) - MAX_ROWS:,} more not shown.\n" if len(plan.drift) > MAX_ROWS else ""
        table = f"| address | field | recorded | now |\n|---|---|---|---|\n{rows}{more}"
        sections.append(_Section(_collapsed(f"<b>Drift</b> — {len(plan.drift):,}", table)))
    for title, items in (
        ("Waiting for actions under way", idle(plan)),
        ("Not reported since the last change", list(plan.unobserved)),
        ("Cannot apply", list(plan.cannot_apply)),
    ):
        if items:
            sections.append(_reasons(title, items))
    return sections


MAX_ROWS = 200  # drift rows in a comment; the text and JSON plans have them all


def _same(same: grouping.Same, kind: When) -> _Section:
    """One distinct change, its diff shown, and the vehicles it touches (their list collapsed)."""
    change = same.first
    origin = f" _({_inline(str(change.source))})_" if change.source is not None and str(change.source) else ""
    where = f"`{same.part}` on {len(same.vins):,} vehicles" if len(same.vins) > 1 else f"`{change.address}`"
    text = f"**{_ICONS[change.action]} {where}** — {_inline(change.summary)}{origin}\n\n"
    if kind in schedules.VARYING:
        text += f"_{_inline(change.schedule.reason)}_\n\n"
    lines = unified_lines(change)
    if lines:
        text += "```diff\n" + "".join(f"{sign} {line}\n" for sign, line in lines) + "```\n\n"
    if len(same.vins) > 1:
        text += f"<details><summary>The {len(same.vins):,} vehicles</summary>\n\n{_VINS}\n</details>\n\n"
    return _Section(text, same.vins)


def _reasons(title: str, items: Sequence[Any]) -> _Section:
    rows = []
    for reason, found in grouping.by_reason(items, lambda i: i.address, lambda i: i.reason)[:MAX_ROWS]:
        if len(found) == 1:
            rows.append(f"- `{found[0].address}`: {_inline(found[0].reason)}\n")
        else:
            vins = grouping.vins_of([i.address for i in found])
            rows.append(f"- **{len(found):,}** × {_inline(reason)}: {grouping.listed(vins, 10)}\n")
    return _Section(_collapsed(f"<b>{title}</b> — {len(items):,}", "".join(rows)))


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
