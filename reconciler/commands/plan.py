"""``reconciler plan``: compute the plan against the recorded state and print it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TextIO

from ..core import addresses, planner
from ..core.changes import Plan
from ..core.model import Desired, Recorded
from ..errors import ReconcilerError
from ..fleetfile import loader
from ..render import json_plan, markdown, text
from ..run import gcpause, saved_plan
from ..state.base import open_store, state_url


def run(
    path: str,
    *,
    fmt: str,
    out_file: str | None,
    refresh: bool,
    targets: Sequence[str],
    detailed_exitcode: bool,
    env: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    check_targets(targets)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with gcpause.paused():
        desired = loader.read(path, env)
        recorded = read_recorded(path, env, desired.fleet)
    observed = None
    if refresh:
        from ..run import connection  # the HTTP stack loads only when it is used

        observed = connection.observe_for_plan(desired, recorded, state_url(path, env), path, env, stderr)
    with gcpause.paused():
        result = planner.plan(desired, recorded, observed, targets=targets, now=now)
    warn_unmatched_targets(targets, desired, recorded, stderr)
    if out_file:
        saved_plan.write(out_file, result, path)
        stderr.write(f"Saved the plan to {out_file}; apply exactly this plan with: reconciler apply {out_file}\n")
    write(result, fmt, stdout, color=_color(stdout, env))
    return 2 if detailed_exitcode and result.has_changes else 0


def check_targets(targets: Sequence[str]) -> None:
    for target in targets:
        if not addresses.is_valid_target(target):
            raise ReconcilerError(
                f"--target {target!r} is not an address; use callback.LABEL, vehicle.VIN or "
                "vehicle.VIN.(preconditioning|charging.schedule|charging.preferences|immobilization|stolen)"
            )


def read_recorded(path: str, env: Mapping[str, str], fleet: str) -> Recorded:
    """The recorded state, opened read-only: planning never writes anything."""
    store = open_store(state_url(path, env), readonly=True, fleet=fleet)
    try:
        return store.read()
    finally:
        store.close()


def warn_unmatched_targets(targets: Sequence[str], desired: Desired, recorded: Recorded, stderr: TextIO) -> None:
    known = [addresses.callback(label) for label in (*desired.callbacks, *recorded.callbacks)]
    known += [f"vehicle.{vin}" for vin in (*desired.vehicles, *recorded.vehicles)]
    for target in targets:
        if not any(
            addresses.matches(k, [target]) or k.startswith(target + ".") or target.startswith(k + ".") for k in known
        ):
            stderr.write(f"warning: --target {target} matches nothing in the fleet file or the state\n")


def write(result: Plan, fmt: str, out: TextIO, *, color: bool = False) -> None:
    if fmt == "json":
        json_plan.write(result, out)
    elif fmt == "markdown":
        out.write(markdown.render(result))
    else:
        text.write(result, out, color=color)


def _color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty() and os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
