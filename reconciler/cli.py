"""The command line: parses flags, builds the shell's parts, calls one function per command.

Exit codes (DESIGN §4): 0 ok; 1 error (bad input, usage errors included: click's
usual 2 would read as "changes present" to a pipeline using
``plan --detailed-exitcode``); 2 changes present (``plan --detailed-exitcode``);
3 refused, retry later; 4 partially applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from . import DISTRIBUTION
from .commands.shell import Shell, trace_http
from .errors import ReconcilerError
from .render import PLAN_FORMATS


class Finite(click.FloatRange):
    """A number in a range, and a finite one: ``nan`` passes every comparison, ``inf`` every minimum."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return float(number)


# Each command imports its module when it runs: `plan` should not pay for the
# web server stack `simulator` and `webhook` load (startup counts on big fleets).

_FILE = click.option(
    "-f",
    "--file",
    "fleet_file",
    default="fleet.yaml",
    show_default=True,
    metavar="FILE",
    help="The fleet file to read.",
)


_LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=Finite(0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for the state lock; by default fail at once (exit 3).",
)
_DEADLINE = click.option(
    "--deadline",
    type=Finite(1),
    default=None,
    metavar="SECONDS",
    help="Bound the whole run: nothing is sent, and nothing waited for, after it (what is in flight "
    "stays pending for the next run).  [default: no bound]",
)
_POLL_AFTER = click.option(
    "--poll-after",
    type=Finite(1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="With a webhook receiver recording into the same state (its heartbeat is fresh), outcomes are read "
    "from the state and an action is polled only after this long without news of it.",
)
_IGNORE_WINDOWS = click.option(
    "--ignore-windows", is_flag=True, help="Send non-urgent changes even outside the change windows (windows:)."
)
_METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (0 picks a free port).",
)
_METRICS_HOST = click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics are served on."
)
_LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one JSON object a line (ts, level, event, fleet …) for collectors; text: for people.",
)
_REFRESH_CAPABILITIES = click.option(
    "--refresh-capabilities",
    is_flag=True,
    help="Read every managed vehicle's capabilities again (by default: once, for vehicles with changes).",
)


def _trace(ctx: click.Context, _: click.Parameter, on: bool | int) -> bool | int:
    """``-v`` (``--debug`` before the command, ``-vv`` on apply): the HTTP trace on stderr, until the command ends."""
    wanted = on >= 2 if ctx.info_name == "apply" else bool(on)
    if wanted and not ctx.meta.get("reconciler.traced"):  # meta: shared by the command and its group
        ctx.meta["reconciler.traced"] = True  # once, however many flags ask
        ctx.call_on_close(trace_http(ctx.obj.stderr))
    return on


_TRACE = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    callback=_trace,
    help="Trace every HTTP request on stderr: method, URL, status, time (client_id as ***, no header or body).",
)


def _no_color(ctx: click.Context, _: click.Parameter, off: bool) -> bool:
    if off:
        ctx.obj = replace(ctx.obj, color=False)
    return off


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name=DISTRIBUTION, prog_name="reconciler")
@click.option(
    "--no-color",
    is_flag=True,
    expose_value=False,
    callback=_no_color,
    help="No colour, even on a terminal (also NO_COLOR=1; FORCE_COLOR=1 colours a pipe).",
)
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=_trace,
    help="Trace every HTTP request on stderr, for any command (what -v does after plan, refresh, import…).",
)
def cli() -> None:
    """Declarative reconciler for the Stellantis Fleet Owner API.

    Keep the fleet's webhook callbacks and each vehicle's recurring programs in
    fleet.yaml; `plan` shows what differs, `apply` sends exactly that.

    \b
    Start with:
      reconciler validate -f fleet.yaml
      reconciler plan -f fleet.yaml

    \b
    --no-color, NO_COLOR, FORCE_COLOR: colour (on a terminal by default).
    --debug, or -v after plan/refresh/import/explain/send (-vv after apply):
    one stderr line per HTTP request, secrets redacted.
    """


@cli.command()
@_FILE
@click.option(
    "--offline",
    is_flag=True,
    help="Check everything but the environment: ${VAR} by name, not value; no RECONCILER_* setting read "
    "(a pre-commit hook, an editor, a fork's pull request).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the verdict and every problem (file, line, column, message, hint) on stdout.",
)
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.pass_obj
def validate(shell: Shell, fleet_file: str, offline: bool, fmt: str, files: tuple[str, ...]) -> int:
    """Check fleet.yaml (syntax, schema, semantics) without touching the network.

    Every problem is reported with FILE:LINE:COL and what to write instead;
    the same mistake made many times is said ten times, then counted.

    \b
    reconciler validate -f fleet.yaml                       # secrets must be set
    reconciler validate -f fleet.yaml --offline             # secrets checked by name
    reconciler validate -f fleet.yaml --format json         # for editors and CI annotations
    reconciler validate --offline fleets/*.yaml             # several files (the pre-commit hook)

    Exit 0 when valid (every FILE), 1 otherwise.
    """
    from .commands import validate as validate_command

    if files:
        return validate_command.run_many(shell, files, offline=offline, fmt=fmt)
    return validate_command.run(shell, fleet_file, offline=offline, fmt=fmt)


@cli.command()
@_FILE
@click.option("--out", "out_file", metavar="PLAN", help="Also save the plan here, for `reconciler apply PLAN`.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PLAN_FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for programs, markdown for a pull-request comment.",
)
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read the vehicles' and callbacks' current state from the API first.",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    help="Plan only this address (callback.LABEL, vehicle.VIN, vehicle.VIN.PART); repeatable.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when there are none, 1 on error."
)
@_REFRESH_CAPABILITIES
@_IGNORE_WINDOWS
@_TRACE
@click.pass_obj
def plan(
    shell: Shell,
    fleet_file: str,
    out_file: str | None,
    fmt: str,
    refresh: bool,
    targets: tuple[str, ...],
    detailed_exitcode: bool,
    refresh_capabilities: bool,
    ignore_windows: bool,
) -> int:
    """Show what apply would change, and how many API calls it would make.

    With --format json only JSON goes to stdout; messages go to stderr.
    Secrets show as (sensitive), with whether they changed. Nothing is written
    except the --out file.
    """
    from .commands import plan as plan_command

    return plan_command.run(
        shell,
        fleet_file,
        fmt=fmt,
        out_file=out_file,
        refresh=refresh,
        targets=targets,
        detailed_exitcode=detailed_exitcode,
        refresh_capabilities=refresh_capabilities,
        ignore_windows=ignore_windows,
    )


@cli.command()
@click.argument("plan_file", metavar="PLAN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PLAN_FORMATS),
    default="text",
    show_default=True,
    help="json: the plan file as saved, byte for byte.",
)
@click.pass_obj
def show(shell: Shell, plan_file: str, fmt: str) -> int:
    """Render a plan saved by `plan --out` again: text, JSON or Markdown. Reads nothing else.

    \b
    reconciler plan -f fleet.yaml --out plan.json      # once, in CI
    reconciler show plan.json --format markdown        # the comment, from the same plan
    reconciler show plan.json                          # what apply plan.json would carry out

    Exit 0, or 1 when PLAN is not a saved plan.
    """
    from .commands import show as show_command

    return show_command.run(shell, plan_file, fmt)


@cli.command()
@click.argument("plan_file", required=False, metavar="[PLAN]")
@click.option(
    "-f",
    "--file",
    "fleet_file",
    default=None,
    metavar="FILE",
    help="The fleet file to read  [default: fleet.yaml; with PLAN, the plan's own, which -f may not contradict]",
)
@click.option("--auto-approve", is_flag=True, help="Do not ask for approval (needed without a terminal).")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for each action's outcome, or stop once the API accepted it.",
)
@click.option(
    "--timeout",
    type=Finite(0),
    default=300.0,
    show_default=True,
    help="Seconds each action's outcome is waited for after it was sent; one still pending then is reported "
    "(exit 4) and settled by the next run.",
)
@_DEADLINE
@_POLL_AFTER
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=32,
    show_default=True,
    help="Vehicles handled at once (the client's pacing, not this, keeps under the rate limit).",
)
@_LOCK_TIMEOUT
@click.option("--target", "targets", multiple=True, metavar="ADDR", help="Apply only this address; repeatable.")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read what the API reports before planning: drift is corrected, what is in place adopted.",
)
@_REFRESH_CAPABILITIES
@_IGNORE_WINDOWS
@click.option(
    "--continue-rollout",
    is_flag=True,
    help="Go on with a rollout halted on its failure budget: its failed vehicles are retried first.",
)
@click.option(
    "--notify/--no-notify",
    default=True,
    show_default=True,
    help="Post the run's events to the fleet file's notify: targets.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    callback=_trace,
    help="List every address in the report (and, on stderr, each action as it ends); -vv: and the HTTP trace.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the whole report as one JSON document on stdout (every address; the plan goes to stderr).",
)
@click.pass_obj
def apply(
    shell: Shell,
    plan_file: str | None,
    fleet_file: str | None,
    auto_approve: bool,
    wait: bool,
    timeout: float,
    parallelism: int,
    lock_timeout: float,
    targets: tuple[str, ...],
    refresh: bool,
    refresh_capabilities: bool,
    ignore_windows: bool,
    continue_rollout: bool,
    notify: bool,
    deadline: float | None,
    poll_after: float,
    verbose: int,
    fmt: str,
) -> int:
    """Send exactly the calls that close the gap, and record what the vehicles answer.

    \b
    reconciler apply -f fleet.yaml          plan, show it, ask, apply
    reconciler apply PLAN                   apply a plan saved by `plan --out`
                                            (exit 3 if the state changed since)

    Exit codes: 0 converged; 1 error; 3 stale plan, state locked, or the
    change window is closed (retry later); 4 partially applied (some actions
    failed, were still pending at --timeout, or a wake-up budget is spent;
    the next run picks them up); 5 a rollout halted on its failure budget
    (apply --continue-rollout goes on).
    """
    from .commands import apply as apply_command
    from .run.session import Options

    options = Options(
        auto_approve,
        wait,
        timeout,
        parallelism,
        lock_timeout,
        targets,
        refresh,
        refresh_capabilities,
        continue_rollout=continue_rollout,
        ignore_windows=ignore_windows,
        notify=notify,
        deadline=deadline,
        poll_after=poll_after,
    )
    return apply_command.run(shell, fleet_file, plan_file, options, verbose=verbose, fmt=fmt)


@cli.command()
@_FILE
@_LOCK_TIMEOUT
@click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True)
@_REFRESH_CAPABILITIES
@_TRACE
@click.pass_obj
def refresh(shell: Shell, fleet_file: str, lock_timeout: float, parallelism: int, refresh_capabilities: bool) -> int:
    """Record what the API reports now: the fleet's listing, capabilities, status. Sends nothing.

    Under the state lock, reads the fleet's vehicles, the capabilities of
    every managed vehicle not known yet (all of them with
    --refresh-capabilities) and their status; records the listing (who
    joined, who left), the capabilities and what is already in place, and
    settles what earlier runs left pending (looked at once). Plans made
    afterwards — read-only pull-request plans too — read no capabilities.

    \b
    reconciler refresh -f fleet.yaml        e.g. nightly, or before a plan on a new fleet

    Exit 0; 1 error; 3 the state is locked; 4 an earlier run's action is still pending.
    """
    from .commands import refresh as refresh_command

    return refresh_command.run(
        shell,
        fleet_file,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
        refresh_capabilities=refresh_capabilities,
    )


@cli.command()
@click.argument("vin")
@_FILE
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read what the vehicle reports now (a few requests for this one vehicle).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_TRACE
@click.pass_obj
def explain(shell: Shell, vin: str, fleet_file: str, refresh: bool, fmt: str) -> int:
    """Why a vehicle is, or is not, what the fleet file says.

    For each section (preconditioning, charging schedule and preferences,
    immobilization, stolen): the desired value and where it comes from (group,
    profile, vehicle entry), what the state recorded and when, what the vehicle
    reports, what the next apply would do and why anything is held, pending
    actions and their age, the last statuses and failure causes. Then the
    vehicle's backoffs, wake-ups this month and capabilities. Writes nothing.

    \b
    reconciler explain VF3ABCDE0FG123456
    reconciler explain VF3ABCDE0FG123456 --no-refresh --format json

    Exit 0, or 1 when the VIN is neither in the fleet file nor in the state.
    """
    from .commands import explain as explain_command

    return explain_command.run(shell, vin, fleet_file, refresh=refresh, fmt=fmt)


@cli.command("import")
@click.option(
    "-o", "--output", default="fleet.yaml", show_default=True, metavar="FILE", help="The fleet file to write."
)
@click.option(
    "-f",
    "--file",
    "from_file",
    default=None,
    metavar="FILE",
    help="An existing fleet file to take the fleet id and api.url from.",
)
@click.option("--fleet", metavar="FID", help="The fleet id (default: RECONCILER_FLEET, or the -f file's).")
@click.option(
    "--vin-prefix",
    "prefixes",
    multiple=True,
    metavar="P",
    help="Import only the vehicles whose VIN starts with P; repeatable.",
)
@click.option("--force", is_flag=True, help="Replace an existing file, and what the state already records.")
@_TRACE
@click.pass_obj
def import_(
    shell: Shell, output: str, from_file: str | None, fleet: str | None, prefixes: tuple[str, ...], force: bool
) -> int:
    """Write the fleet file of a fleet already configured, and record it as applied.

    Reads the callbacks, the vehicle list and the vehicles' status documents
    (page by page) and sends nothing. Vehicles holding the same programs share
    a profile; secret-looking attribute values become ${VAR} references (the
    variables to set are printed, never their values). Right after, `plan
    --detailed-exitcode` exits 0 and `apply` sends nothing.

    \b
      reconciler import --fleet 0a123bc5d1e873066454b4d9 -o fleet.yaml
      reconciler import -f fleet.yaml -o vans.yaml --vin-prefix VR3 --force
    """
    from .commands import importing

    return importing.run(
        shell,
        output=output,
        fleet=fleet,
        from_file=from_file,
        prefixes=prefixes,
        force=force,
    )


@cli.group()
def state() -> None:
    """Inspect the recorded state and its history; release a stuck lock."""


@state.command("list")
@_FILE
@click.pass_obj
def state_list(shell: Shell, fleet_file: str) -> int:
    """Every recorded address (callbacks with their ids, vehicle parts)."""
    from .commands import state as state_command

    return state_command.list_addresses(shell, fleet_file)


@state.command("show")
@click.argument("address")
@_FILE
@click.pass_obj
def state_show(shell: Shell, address: str, fleet_file: str) -> int:
    """What is recorded for ADDRESS, and every action sent for it with each status seen (JSON)."""
    from .commands import state as state_command

    return state_command.show(shell, fleet_file, address)


@state.command("history")
@click.argument("address", required=False)
@_FILE
@click.pass_obj
def state_history(shell: Shell, address: str | None, fleet_file: str) -> int:
    """The audit history, of everything or of ADDRESS (and what lies under it)."""
    from .commands import state as state_command

    return state_command.history(shell, fleet_file, address)


@state.command("prune")
@_FILE
@click.option(
    "--older-than",
    default="90d",
    show_default=True,
    help="Drop what ended longer ago than this: 30d, 12h … (at least an hour).",
)
@_LOCK_TIMEOUT
@click.pass_obj
def state_prune(shell: Shell, fleet_file: str, older_than: str, lock_timeout: float) -> int:
    """Drop finished actions and history older than --older-than; say what was dropped.

    Never a pending action, never the last action of an address (what
    `state show` and the next run read of it), nothing the rollout's wave
    under way is judged on. Takes the state lock. `watch --prune-after`
    does it once a day.
    """
    from .commands import state as state_command

    return state_command.prune(
        shell, fleet_file, _at_least_an_hour("--older-than", older_than), lock_timeout=lock_timeout
    )


def _at_least_an_hour(flag: str, text: str) -> float:
    from .core import durations

    try:
        value = durations.seconds(text)
    except durations.FormatError as exc:
        raise click.BadParameter(f"{text!r}: write a duration such as 90d or 12h ({exc})", param_hint=flag) from None
    if value < 3600:
        raise click.BadParameter(f"{text!r} is less than an hour: history that young is still read", param_hint=flag)
    return value


@state.command("unlock")
@click.argument("lock_id")
@_FILE
@click.option(
    "--force",
    is_flag=True,
    help="Release it even though its holder may still run (on this host: a live pid; PostgreSQL: an open session).",
)
@click.pass_obj
def state_unlock(shell: Shell, lock_id: str, fleet_file: str, force: bool) -> int:
    """Release the state lock LOCK_ID left by a process that is gone.

    Refused while the holder still runs (same host and a live pid, or an open
    PostgreSQL session) or cannot be checked (another host), unless --force.
    """
    from .commands import state as state_command

    return state_command.unlock(shell, fleet_file, lock_id, force=force)


@state.command("migrate")
@click.option("--to", "target", required=True, metavar="URL", help="sqlite:///PATH or postgresql://…")
@click.option("--force", is_flag=True, help="Overwrite a target that already holds a state.")
@_FILE
@click.pass_obj
def state_migrate(shell: Shell, target: str, force: bool, fleet_file: str) -> int:
    """Copy the state (RECONCILER_STATE, or the default beside the fleet file) to another store."""
    from .commands import state as state_command

    return state_command.migrate(shell, fleet_file, target, force=force)


@cli.command()
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option(
    "--dir",
    "directory",
    default=".reconciler/simulator",
    show_default=True,
    help="Where the simulator keeps its fleet, CA, certificates and credentials.",
)
@click.option("--fleet", default="", help="Fleet id (default: the one kept in --dir, or a new one).")
@click.option(
    "--vehicles",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="How many vehicles a new fleet gets (deterministic VINs).",
)
@click.option("--vins", "vins_file", metavar="FILE", help="Add these vehicles instead (one VIN a line).")
@click.option(
    "--latency",
    type=Finite(0),
    default=0.2,
    show_default=True,
    help="Seconds each step of a remote action takes.",
)
@click.option(
    "--fail-rate",
    type=Finite(0, 1),
    default=0.0,
    show_default=True,
    help="Probability that a remote action fails (VehicleConnectionTimeout).",
)
@click.option(
    "--rate-per-second",
    type=Finite(min=0.1),
    default=50.0,
    show_default=True,
    help="Burst limit: requests per second before 429.",
)
@click.option(
    "--rate-per-day", type=click.IntRange(1), default=1_000_000, show_default=True, help="Daily quota before 429."
)
@click.option(
    "--sleeping",
    is_flag=True,
    help="Vehicles sleep between contacts: the first message wakes them (WakingUpVehicle).",
)
@click.option(
    "--awake-for",
    type=Finite(0),
    default=180.0,
    show_default=True,
    help="Seconds a sleeping vehicle stays awake after a contact.",
)
@click.option(
    "--wakeups-per-month",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Wake-ups a vehicle of a new fleet allows a month before TooManyWakeUpsOverMonth.",
)
@click.option(
    "--report-lag",
    type=Finite(0),
    default=0.0,
    show_default=True,
    help="Seconds by which status documents lag behind the vehicles (a car that reports late).",
)
@click.option(
    "--env-file",
    metavar="FILE",
    help="Also write the export lines to FILE (atomically, mode 600) once listening, for a shell to source.",
)
@click.pass_obj
def simulator(
    shell: Shell,
    port: int,
    directory: str,
    fleet: str,
    vehicles: int,
    vins_file: str | None,
    latency: float,
    fail_rate: float,
    rate_per_second: float,
    rate_per_day: int,
    sleeping: bool,
    awake_for: float,
    wakeups_per_month: int,
    report_lag: float,
    env_file: str | None,
) -> int:
    """Serve the embedded Fleet API simulator on 127.0.0.1 over HTTPS with mutual TLS.

    Once listening it prints `export RECONCILER_…=…` lines (URL, client id,
    credentials, client certificate and key, CA bundle, fleet id); with
    --env-file it also writes them to a file, once it listens, so that

    \b
      reconciler simulator --port 0 --env-file sim.env &
      while [ ! -s sim.env ]; do sleep 0.1; done; . ./sim.env

    points this shell's reconciler at it. State, CA and credentials persist
    in --dir. Stop it with Ctrl-C or SIGTERM (the env file is then removed).
    """
    from .commands import simulator as simulator_command

    return simulator_command.run(
        shell,
        port=port,
        directory=directory,
        fleet=fleet,
        vehicles=vehicles,
        vins_file=vins_file,
        latency=latency,
        fail_rate=fail_rate,
        per_second=rate_per_second,
        per_day=rate_per_day,
        sleeping=sleeping,
        awake_for=awake_for,
        wakeup_budget=wakeups_per_month,
        report_lag=report_lag,
        env_file=env_file,
    )


@cli.command()
@_FILE
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    default=1024 * 1024,
    show_default=True,
    help="Largest request body accepted, in bytes (413 beyond).",
)
@_METRICS_PORT
@_METRICS_HOST
@_LOG_FORMAT
@click.pass_obj
def webhook(
    shell: Shell,
    fleet_file: str,
    host: str,
    port: int,
    max_body: int,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
) -> int:
    """Receive the API's remote events and record them in the state store.

    Point a callback at it and give the callback a secret header, which every
    request must carry (compared in constant time):

    \b
      callbacks:
        ops:
          webhook:
            target: https://hooks.example.com/stellantis   # proxied to this receiver
            headers: {X-Webhook-Token: "${WEBHOOK_TOKEN}"}

    Pending actions then resolve without polling; duplicates are recorded once.
    Answers 200 on receipt, 401 for a wrong secret, 400 for a malformed body,
    413 for one too large, 500 when the events could not be stored.
    GET /healthz: 200 while it serves; GET /readyz: 200 when the state answers.
    Several receivers may share one PostgreSQL state. Logs JSON lines on stdout.
    """
    from .commands import webhook as webhook_command

    return webhook_command.run(
        shell,
        fleet_file,
        host=host,
        port=port,
        max_body=max_body,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        log_format=log_format,
    )


@cli.command()
@_FILE
@click.option("--interval", default="15m", show_default=True, help="Time between runs: 30s, 15m, 1h …")
@click.option(
    "--jitter",
    type=Finite(0, 0.5),
    default=0.1,
    show_default=True,
    help="Spread of each wait, as a fraction of the interval.",
)
@click.option("--once", is_flag=True, help="One run, then exit with its code (for cron).")
@click.option(
    "--timeout",
    type=Finite(0),
    default=300.0,
    show_default=True,
    help="Seconds each action's outcome is waited for after it was sent.",
)
@_DEADLINE
@_POLL_AFTER
@click.option("--parallelism", type=click.IntRange(1, 64), default=32, show_default=True)
@click.option(
    "--prune-after",
    default=None,
    metavar="DURATION",
    help="Once a day, drop finished actions and history older than this (e.g. 90d; see state prune).  [default: never]",
)
@_METRICS_PORT
@_METRICS_HOST
@_LOG_FORMAT
@click.pass_obj
def watch(
    shell: Shell,
    fleet_file: str,
    interval: str,
    jitter: float,
    once: bool,
    timeout: float,
    deadline: float | None,
    poll_after: float,
    parallelism: int,
    prune_after: str | None,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
) -> int:
    """Refresh, plan and apply in a loop: drift correction.

    Logs one JSON line per run and per action (ts, level, event, fleet, run).
    Runs never overlap, also across watchers sharing one PostgreSQL state: a
    run that finds the state locked is skipped, and the next interval takes
    over from a holder that died. A vehicle whose actions fail run after run is
    backed off. SIGTERM or Ctrl-C stops the sending at once, records what is in
    flight and exits 0. Each run's events go to the fleet file's notify:
    targets; --metrics-port serves /metrics, /healthz and /readyz.
    """
    from .commands import watch as watch_command
    from .run.session import Options

    seconds = watch_command.parse_interval(interval)
    options = Options(
        auto_approve=True, timeout=timeout, parallelism=parallelism, deadline=deadline, poll_after=poll_after
    )
    return watch_command.run(
        shell,
        fleet_file,
        interval=seconds,
        jitter=jitter,
        once=once,
        options=options,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        log_format=log_format,
        prune_after=_at_least_an_hour("--prune-after", prune_after) if prune_after is not None else None,
    )


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("vin")
@click.argument("action")
@click.argument("args", nargs=-1)
@_FILE
@click.option(
    "--callback",
    "callback_label",
    metavar="LABEL",
    help="The callback to send through (default: the one subscribing to the action's remote type).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the outcome.")
@click.option("--timeout", type=Finite(0), default=120.0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--force",
    is_flag=True,
    help="Send immobilize/stolen against what the fleet file declares, or a one-off that needs a reserved wake-up.",
)
@click.option("--driver-approval", is_flag=True, help="navigate: ask the driver to accept the route.")
@_TRACE
@click.pass_obj
def send(
    shell: Shell,
    vin: str,
    action: str,
    args: tuple[str, ...],
    fleet_file: str,
    callback_label: str | None,
    wait: bool,
    timeout: float,
    fmt: str,
    force: bool,
    driver_approval: bool,
) -> int:
    """Send a one-off remote action to vehicle VIN.

    \b
      horn                        sound the horn
      lights                      flash the lights
      doors lock|unlock
      wakeup                      wake the vehicle so it refreshes its status
      navigate LAT,LON [LAT,LON…] 1 to 10 points, the last one the destination
      charge now|stop|at TIME     TIME: HH:MM (next one) or RFC 3339
      precondition now|stop       immediate air conditioning (programs are never sent)
      immobilize on|off
      stolen on|off
      stolen tracking RUNNING SHUTDOWN   seconds, at least 5 and 60

    Journaled and followed like apply's actions; it shows in `state history`.
    Exit 0 when it succeeded (or was accepted, with --no-wait), 1 when it
    failed (with the API's cause) or could not be sent, 4 when still pending
    at --timeout.
    """
    from .commands import send as send_command

    return send_command.run(
        shell,
        vin,
        action,
        args,
        fleet_file=fleet_file,
        callback=callback_label,
        wait=wait,
        timeout=timeout,
        fmt=fmt,
        force=force,
        driver_approval=driver_approval,
    )


def main(argv: Sequence[str] | None = None, *, shell: Shell | None = None) -> int:
    """Run the command line; return the exit code instead of raising.

    ``shell``: the environment and streams the command gets (default: this
    process's); its ``stderr`` gets the errors too.
    """
    shell = shell or Shell.of_process()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="reconciler",
            standalone_mode=False,
            obj=shell,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        exc.show(file=shell.stderr)
        return 1
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return _interrupted(exc.__context__, shell)
        click.echo("Aborted.", file=shell.stderr)
        return 1
    except ReconcilerError as exc:
        click.echo(f"Error: {exc}", file=shell.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _interrupted(exc, shell)
    return result if isinstance(result, int) else 0


def _interrupted(exc: KeyboardInterrupt, shell: Shell) -> int:
    """Ctrl-C (or SIGTERM during apply) ended the command: 128 + the signal, as a shell reports it."""
    signum = getattr(exc, "signum", None)
    click.echo("Interrupted before anything was sent." if signum else "Interrupted.", file=shell.stderr)
    return 128 + (signum or 2)
