"""Which vehicles the fleet file manages, once the fleet's listing is known (DESIGN §9.2).

``groups:`` take the fleet's vehicles as the API lists them (on refresh) or as
the state recorded them (without): a vehicle that joins the fleet is a member
on the next run, one that leaves is no longer managed. ``vehicles:`` entries
are managed whatever the listing says, but one the listing does not hold
cannot be applied: it is said, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    takers = Takers(desired.groups)
    for vin in listing:
        if vin in explicit:
            continue
        group = takers.first(vin)
        if group is not None:
            added[vin] = DesiredVehicle(vin, group.config, group.routes, group.sources, explicit=False)
    if not added:
        return desired
    return replace(desired, vehicles={**explicit, **added})


class Takers:
    """Which group takes a VIN, found by its prefixes: as fast with 5,000 groups as with 20.

    Each group is indexed under what its ``match`` names (prefixes, VINs, or
    everything); a VIN's candidates are the groups under its own prefixes
    (one look-up per prefix length in use), its VIN and everything, and the
    first in file order that takes it (its ``exclude`` considered) wins.
    """

    def __init__(self, groups: Sequence[Group]) -> None:
        self.groups = tuple(groups)
        self.by_prefix: dict[str, list[int]] = {}
        self.by_vin: dict[str, list[int]] = {}
        self.everywhere: list[int] = []
        for index, group in enumerate(self.groups):
            match = group.match
            if match.everything:
                self.everywhere.append(index)
            for prefix in match.prefixes:
                self.by_prefix.setdefault(prefix, []).append(index)
            for vin in match.vins:
                self.by_vin.setdefault(vin, []).append(index)
        self.lengths = sorted({len(prefix) for prefix in self.by_prefix})

    def first(self, vin: str) -> Group | None:
        """The first group (in file order) that takes ``vin``."""
        candidates = list(self.everywhere)
        candidates += self.by_vin.get(vin, ())
        for length in self.lengths:
            if length > len(vin):
                break
            candidates += self.by_prefix.get(vin[:length], ())
        for index in sorted(set(candidates)) if len(candidates) > 1 else candidates:
            group = self.groups[index]
            if group.takes(vin):
                return group
        return None


def first_taker(groups: Sequence[Group], vin: str) -> Group | None:
    """The first group (in file order) that takes ``vin`` (for one VIN; ``Takers`` for many)."""
    for group in groups:
        if group.takes(vin):
            return group
    return None


def group_of(desired: Desired, vin: str) -> str | None:
    """The name of the group ``vin`` belongs to, if any."""
    group = first_taker(desired.groups, vin)
    return group.name if group else None
