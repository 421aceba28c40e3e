"""``reconciler validate``: load and check fleet.yaml, no network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from ..fleetfile import loader


def run(path: str, *, env: Mapping[str, str], out: TextIO) -> int:
    desired = loader.read(path, env)
    out.write(f"{path} is valid: {len(desired.callbacks)} callbacks, {len(desired.vehicles)} vehicles.\n")
    return 0
