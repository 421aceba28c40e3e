"""``reconciler validate``: load and check fleet.yaml, no network; ``--offline``: no environment either."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError, Problem, ReconcilerError
from ..fleetfile import loader
from ..run import gcpause
from .shell import Shell

REPORT_VERSION = 1


def run(shell: Shell, fleet_file: str, *, offline: bool = False, fmt: str = "text") -> int:
    """Exit 0 when the file is valid, 1 otherwise (``ConfigError`` says why, in text)."""
    try:
        with gcpause.paused():  # the same load as plan's, collector paused as plan does
            desired = loader.read(fleet_file, shell.env, offline=offline)
    except ConfigError as exc:
        if fmt != "json":
            raise
        shell.stdout.write(json.dumps(_report(fleet_file, offline, exc.problems, [])) + "\n")
        return exc.exit_code
    if fmt == "json":
        report = _report(fleet_file, offline, [], list(desired.warnings))
        report.update(callbacks=len(desired.callbacks), vehicles=len(desired.vehicles), groups=len(desired.groups))
        report["variables"] = list(desired.variables)
        shell.stdout.write(json.dumps(report) + "\n")
        return 0
    for warning in desired.warnings:
        shell.stderr.write(f"warning: {warning}\n")
    checked = ""
    if offline:
        names = ", ".join(f"${{{n}}}" for n in desired.variables)
        checked = f" (offline: {names} checked by name only)" if names else " (offline)"
    groups = f", {len(desired.groups)} groups" if desired.groups else ""
    shell.stdout.write(
        f"{fleet_file} is valid: {len(desired.callbacks)} callbacks, {len(desired.vehicles)} vehicles{groups}"
        f"{checked}.\n"
    )
    return 0


def run_many(shell: Shell, files: tuple[str, ...], *, offline: bool = False, fmt: str = "text") -> int:
    """Each of ``files`` checked; what is wrong with each said; 1 if any is not valid."""
    code = 0
    for fleet_file in files:
        try:
            code = max(code, run(shell, fleet_file, offline=offline, fmt=fmt))
        except ReconcilerError as exc:
            shell.stderr.write(f"Error: {exc}\n")
            code = max(code, exc.exit_code)
    return code


def _report(fleet_file: str, offline: bool, problems: list[Problem], warnings: list[str]) -> dict[str, Any]:
    """The verdict as JSON: every problem with its file, line, column, message and hint (editors, CI annotations)."""
    return {
        "report_version": REPORT_VERSION,
        "file": fleet_file,
        "valid": not problems,
        "offline": offline,
        "problems": [
            {
                "file": p.location.file,
                "line": p.location.line,
                "column": p.location.column,
                "message": p.message,
                "hint": p.hint or None,
            }
            for p in problems
        ],
        "warnings": warnings,
    }
