"""``reconciler apply``: execute a fresh plan (``-f``) or a saved one (``PLAN``)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from ..core.changes import Plan
from ..core.outcomes import Progress
from ..core.targets import check_form
from ..core.vocabulary import Result
from ..errors import ReconcilerError
from ..render import report, text
from ..render.report import BarProgress, LineProgress, RefreshLine
from ..run.interrupts import Interrupts
from ..run.session import DEFAULT_FLEET_FILE, Options, RunResult, apply_fleet, notify_run, read_saved
from .shell import Shell

REPORT_VERSION = 1


def run(
    shell: Shell,
    fleet_file: str | None,
    plan_file: str | None,
    options: Options,
    *,
    verbose: int = 0,
    fmt: str = "text",
) -> int:
    """``fleet_file`` None: not given (``./fleet.yaml``, or the saved plan's own file).

    ``verbose``: the report lists every address. ``fmt`` json: the report is
    JSON on stdout, and the plan shown for approval goes to stderr.
    """
    check_form(options.targets)
    saved = read_saved(plan_file, fleet_file) if plan_file else None
    if saved is None and not options.auto_approve and not shell.interactive:
        raise ReconcilerError("apply needs --auto-approve when there is no terminal to ask for approval")
    said = shell.stdout if fmt == "text" else shell.stderr  # what people read, off stdout with --format json
    line = RefreshLine(shell.stderr) if shell.terminal else None  # how each refresh goes

    def review(result: Plan) -> bool:
        if line is not None:
            line.close()  # the refresh is over: the plan starts on a clean line
        if saved is not None:
            return True  # a saved plan was reviewed when it was made
        text.write(result, said, color=shell.color and fmt == "text")
        if not result.changes or options.auto_approve:
            return True
        if _approved(shell.stdin, said):
            return True
        said.write("Apply cancelled: nothing was sent.\n")
        return False

    progress: Progress
    if shell.interactive and shell.terminal:
        progress = BarProgress(shell.stderr)
    else:
        progress = LineProgress(shell.stderr, verbose=verbose > 0)
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
            told=line,
        )
        if line is not None:
            line.close()
        if fmt == "text":
            if outcome.outcomes:
                polls = outcome.polls
                learnt = report.polls_said(polls.polls, polls.heard, polls.followed, outcome.listening)
                report.report(outcome.outcomes, shell.stdout, verbose=verbose > 0, color=shell.color, polls=learnt)
            report.brakes_said(outcome.plan, outcome.halted, outcome.window_closed, shell.stdout, outcome.stale)
    if options.notify and outcome.notify:
        # A signal now ends the notifications at once; the run's result stands.
        quiet = Interrupts(shell.stderr, quit_when_idle=False, announce="stopping the notifications")
        with quiet.installed():
            deliveries = notify_run(outcome, quiet.stop)
        for delivery in deliveries:
            if delivery.error:
                said.write(f"Notification to {delivery.target} failed: {delivery.error} (the run's result stands).\n")
            else:
                said.write(f"Notified {delivery.target} of {delivery.events} event(s).\n")
    if fmt == "json":
        shell.stdout.write(json.dumps(document(outcome), ensure_ascii=False) + "\n")
    return outcome.code


def document(outcome: RunResult) -> dict[str, Any]:
    """The whole report as JSON (``apply --format json``): every address, the counts, how outcomes were learnt."""
    counts = Counter(o.result for o in outcome.outcomes)
    polls = outcome.polls
    return {
        "report_version": REPORT_VERSION,
        "fleet": outcome.fleet,
        "exit_code": outcome.code,
        "counts": {str(r): counts.get(r, 0) for r in Result},
        "outcomes": [
            {
                "address": o.address,
                "result": str(o.result),
                "detail": o.detail,
                "remote_type": o.remote_type or None,
                "kind": str(o.kind) if o.kind else None,
            }
            for o in outcome.outcomes
        ],
        "changes_sent": {str(action): n for action, n in outcome.changes.items()},
        "outcomes_learnt": {
            "polls": polls.polls,
            "from_receiver": polls.heard,
            "followed": polls.followed,
            "receiver": outcome.listening or None,
        },
        "api_answers": {f"{method} {status}": n for (method, status), n in sorted(outcome.requests.items())},
        "pending_actions": outcome.pending_actions,
        "halted": outcome.halted or None,
        "window_opens_at": outcome.window_closed or None,
        "stale": outcome.stale or None,
        "drift": len(outcome.drift),
    }


def _approved(stdin: TextIO, stdout: TextIO) -> bool:
    stdout.write("\nApply these changes? Only 'yes' is accepted: ")
    stdout.flush()
    return stdin.readline().strip() == "yes"
