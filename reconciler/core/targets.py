"""``--target ADDR``: an address checked for its form, and for naming something the file or the state knows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ReconcilerError
from . import addresses, groups
from .changes import Change
from .model import Desired, Recorded
from .vocabulary import Action


def check_form(targets: Sequence[str]) -> None:
    for target in targets:
        if not addresses.is_valid_target(target):
            raise ReconcilerError(
                f"--target {target!r} is not an address; use callback.LABEL, vehicle.VIN or "
                "vehicle.VIN.(preconditioning|charging.schedule|charging.preferences|immobilization|stolen)"
            )


def check_known(
    targets: Sequence[str], desired: Desired, recorded: Recorded, listing: Mapping[str, str] | None = None
) -> None:
    """Each ``--target`` must name something the fleet file or the state knows: a typo is not "no changes".

    A vehicle only a ``groups:`` entry would take is known once the fleet's
    ``listing`` holds it; before the listing is read (``listing`` None), a VIN
    some group would take is given the benefit of the doubt until then.
    """
    known = {addresses.callback(label) for label in (*desired.callbacks, *recorded.callbacks)}
    known |= {addresses.vehicle_prefix(vin) for vin in (*desired.vehicles, *recorded.vehicles)}
    if listing is not None:
        known |= {addresses.vehicle_prefix(vin) for vin in groups.members(desired, listing).vehicles}
    for target in targets:
        owner = target if target.startswith("callback.") else ".".join(target.split(".", 2)[:2])
        if owner in known:
            continue
        vin = owner.removeprefix("vehicle.") if owner.startswith("vehicle.") else None
        if listing is None and vin and groups.first_taker(desired.groups, vin) is not None:
            continue
        listed = " (a group would take it, but the fleet's listing does not hold it)" if vin and listing else ""
        raise ReconcilerError(
            f"--target {target} matches nothing in {desired.source} or the state{listed}; "
            "see reconciler state list for the addresses known"
        )


def targeted(changes: Sequence[Change], targets: Sequence[str]) -> list[Change]:
    """The changes under ``targets``, and the creation of any callback they need (it goes with them)."""
    kept = [c for c in changes if addresses.matches(c.address, targets)]
    needed = {c.callback for c in kept if c.vin and "{cbid}" in c.request.path}
    creates = [c for c in changes if c.action == Action.CREATE and c.callback in needed and c not in kept]
    return creates + kept
