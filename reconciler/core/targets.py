"""``--target ADDR``: an address checked for its form, and for naming something the file or the state knows."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ReconcilerError
from . import addresses
from .model import Desired, Recorded


def check_form(targets: Sequence[str]) -> None:
    for target in targets:
        if not addresses.is_valid_target(target):
            raise ReconcilerError(
                f"--target {target!r} is not an address; use callback.LABEL, vehicle.VIN or "
                "vehicle.VIN.(preconditioning|charging.schedule|charging.preferences|immobilization|stolen)"
            )


def check_known(targets: Sequence[str], desired: Desired, recorded: Recorded) -> None:
    """Each ``--target`` must name something the fleet file or the state knows: a typo is not "no changes"."""
    known = {addresses.callback(label) for label in (*desired.callbacks, *recorded.callbacks)}
    known |= {addresses.vehicle_prefix(vin) for vin in (*desired.vehicles, *recorded.vehicles)}
    for target in targets:
        owner = target if target.startswith("callback.") else ".".join(target.split(".", 2)[:2])
        if owner not in known:
            raise ReconcilerError(
                f"--target {target} matches nothing in {desired.source} or the state; "
                "see reconciler state list for the addresses known"
            )
