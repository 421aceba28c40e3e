"""``reconciler apply``: execute a fresh plan (``-f``) or a saved one (``PLAN``)."""

from __future__ import annotations

from typing import TextIO

from ..core.changes import Plan
from ..core.targets import check_form
from ..errors import ReconcilerError
from ..render import report, text
from ..render.report import BarProgress, LineProgress
from ..run.interrupts import Interrupts
from ..run.session import DEFAULT_FLEET_FILE, Options, apply_fleet, notify_run, read_saved
from .shell import Shell


def run(
    shell: Shell,
    fleet_file: str | None,
    plan_file: str | None,
    options: Options,
) -> int:
    """``fleet_file`` None: not given (``./fleet.yaml``, or the saved plan's own file)."""
    check_form(options.targets)
    saved = read_saved(plan_file, fleet_file) if plan_file else None
    if saved is None and not options.auto_approve and not shell.interactive:
        raise ReconcilerError("apply needs --auto-approve when there is no terminal to ask for approval")

    def review(result: Plan) -> bool:
        if saved is not None:
            return True  # a saved plan was reviewed when it was made
        text.write(result, shell.stdout)
        if not result.changes or options.auto_approve:
            return True
        if _approved(shell.stdin, shell.stdout):
            return True
        shell.stdout.write("Apply cancelled: nothing was sent.\n")
        return False

    progress = BarProgress(shell.stderr) if shell.interactive and shell.terminal else LineProgress(shell.stderr)
    interrupts = Interrupts(shell.stderr)
    with interrupts.installed():
        outcome = apply_fleet(
            fleet_file or DEFAULT_FLEET_FILE,
            saved,
            options,
            env=shell.env,
            review=review,
            progress=progress,
            stderr=shell.stderr,
            interrupts=interrupts,
            clock=shell.clock,
        )
        if outcome.outcomes:
            report.report(outcome.outcomes, shell.stdout)
        report.brakes_said(outcome.plan, outcome.halted, outcome.window_closed, shell.stdout, outcome.stale)
    if options.notify and outcome.notify:
        # A signal now ends the notifications at once; the run's result stands.
        quiet = Interrupts(shell.stderr, quit_when_idle=False, announce="stopping the notifications")
        with quiet.installed():
            deliveries = notify_run(outcome, quiet.stop)
        for delivery in deliveries:
            if delivery.error:
                shell.stdout.write(
                    f"Notification to {delivery.target} failed: {delivery.error} (the run's result stands).\n"
                )
            else:
                shell.stdout.write(f"Notified {delivery.target} of {delivery.events} event(s).\n")
    return outcome.code


def _approved(stdin: TextIO, stdout: TextIO) -> bool:
    stdout.write("\nApply these changes? Only 'yes' is accepted: ")
    stdout.flush()
    return stdin.readline().strip() == "yes"
