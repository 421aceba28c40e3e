"""Which vehicles the fleet file manages, once the fleet's listing is known (DESIGN §9.2).

``groups:`` take the fleet's vehicles as the API lists them (on refresh) or as
the state recorded them (without): a vehicle that joins the fleet is a member
on the next run, one that leaves is no longer managed. ``vehicles:`` entries
are managed whatever the listing says, but one the listing does not hold
cannot be applied: it is said, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .model import Desired, DesiredVehicle, Group


def members(desired: Desired, listing: Mapping[str, str] | None) -> Desired:
    """``desired`` with every listed vehicle a group takes (and no ``vehicles:`` entry names) added.

    ``listing`` None (never listed) adds nothing: groups then manage no vehicle yet.
    """
    if not desired.groups or listing is None:
        return desired
    explicit = desired.vehicles
    added: dict[str, DesiredVehicle] = {}
    groups = desired.groups
    for vin in listing:
        if vin in explicit:
            continue
        group = first_taker(groups, vin)
        if group is not None:
            added[vin] = DesiredVehicle(vin, group.config, group.routes, group.sources, explicit=False)
    if not added:
        return desired
    return replace(desired, vehicles={**explicit, **added})


def first_taker(groups: tuple[Group, ...], vin: str) -> Group | None:
    """The first group (in file order) that takes ``vin``."""
    for group in groups:
        if group.takes(vin):
            return group
    return None


def group_of(desired: Desired, vin: str) -> str | None:
    """The name of the group ``vin`` belongs to, if any."""
    group = first_taker(desired.groups, vin)
    return group.name if group else None
