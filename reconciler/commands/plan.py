"""``reconciler plan``: compute the plan against the recorded state and print it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..api.settings import http_timeout
from ..core import rollout
from ..core.targets import check_form, check_known
from ..fleetfile import loader
from ..render import plans
from ..render.report import RefreshLine
from ..run import gcpause, saved_plan
from ..run.session import read_recorded
from ..state.backends import state_url
from .shell import Shell


def run(
    shell: Shell,
    fleet_file: str,
    *,
    fmt: str,
    out_file: str | None,
    refresh: bool,
    targets: Sequence[str],
    refresh_capabilities: bool = False,
    ignore_windows: bool = False,
    detailed_exitcode: bool,
) -> int:
    check_form(targets)
    http_timeout(shell.env)  # a malformed setting is an error now, whether or not the plan refreshes
    moment = shell.clock()
    now = moment.isoformat(timespec="seconds")
    with gcpause.paused():
        desired = loader.read(fleet_file, shell.env)
        recorded, entries = read_recorded(fleet_file, shell.env, desired.fleet)
    check_known(targets, desired, recorded)
    observed, refresh_error = None, ""
    if refresh:
        from ..run import connection  # the HTTP stack loads only when it is used

        line = RefreshLine(shell.stderr) if shell.terminal else None
        looking = connection.Looking(tuple(targets), now, refresh_capabilities, pending=True, told=line)
        try:
            observed, refresh_error = connection.observe_for_plan(
                desired, recorded, state_url(fleet_file, shell.env), fleet_file, shell.env, looking
            )
        finally:
            if line is not None:
                line.close()
        if observed is not None:
            check_known(targets, desired, recorded, observed.listing)
    with gcpause.paused():
        # Every change with its schedule: what apply sends now, and when the rest goes.
        staged = rollout.schedule(
            desired, recorded, observed, entries, moment, targets=targets, ignore_windows=ignore_windows
        )
        result = staged.plan
    result = replace(result, refresh_error=refresh_error)
    if refresh_error:
        shell.stderr.write(f"warning: refresh failed ({refresh_error}); planned against the recorded state only\n")
    if out_file:
        saved_plan.write(out_file, result, fleet_file)
        shell.stderr.write(f"Saved the plan to {out_file}; apply exactly this plan with: reconciler apply {out_file}\n")
    plans.write(result, fmt, shell.stdout, color=shell.color, env=shell.env)
    if detailed_exitcode and refresh_error:
        return 1  # a plan that could not see the fleet cannot say "no changes"
    return 2 if detailed_exitcode and result.has_changes else 0
