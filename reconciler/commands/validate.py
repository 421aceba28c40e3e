"""``reconciler validate``: load and check fleet.yaml, no network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from ..fleetfile import loader
from ..run import gcpause


def run(path: str, *, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    with gcpause.paused():  # the same load as plan's, collector paused as plan does
        desired = loader.read(path, env)
    for warning in desired.warnings:
        err.write(f"warning: {warning}\n")
    out.write(f"{path} is valid: {len(desired.callbacks)} callbacks, {len(desired.vehicles)} vehicles.\n")
    return 0
