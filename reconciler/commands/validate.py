"""``reconciler validate``: load and check fleet.yaml, no network."""

from __future__ import annotations

from ..fleetfile import loader
from ..run import gcpause
from .shell import Shell


def run(shell: Shell, fleet_file: str) -> int:
    with gcpause.paused():  # the same load as plan's, collector paused as plan does
        desired = loader.read(fleet_file, shell.env)
    for warning in desired.warnings:
        shell.stderr.write(f"warning: {warning}\n")
    shell.stdout.write(
        f"{fleet_file} is valid: {len(desired.callbacks)} callbacks, {len(desired.vehicles)} vehicles.\n"
    )
    return 0
