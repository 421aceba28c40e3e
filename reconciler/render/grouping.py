"""The same change to many vehicles, shown once: what the text and Markdown plans list (DESIGN §10.3).

A fleet of 10,000 vehicles in 20 groups has 10,000 changes but a few dozen
distinct ones: the same part, action, diff, source and schedule, only the
vehicle differs. Each distinct change is one ``Same`` with the VINs it
touches; callback changes stay one by one. The repeated lines under a plan
(already in place, cannot apply, waiting, not reported) are counted by reason
the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..core import addresses
from ..core.changes import Change

T = TypeVar("T")


@dataclass
class Same:
    """Changes that differ only in their vehicle: the first stands for them all."""

    first: Change
    vins: list[str] = field(default_factory=list)

    @property
    def part(self) -> str:
        """``preconditioning``, ``charging.schedule`` …: the address without ``vehicle.VIN.``."""
        return self.first.address.split(".", 2)[2] if self.first.vin else self.first.address

    @property
    def address(self) -> str:
        """The address as shown: the vehicle's own when it is one, else ``PART on N vehicles``."""
        if len(self.vins) <= 1:
            return self.first.address
        return f"{self.part} on {len(self.vins):,} vehicles"


def same_changes(changes: Iterable[Change], *, by_reason: bool = False) -> list[Same]:
    """``changes`` grouped by everything but the vehicle, in the order each distinct change first comes.

    ``by_reason``: changes with different schedule reasons (a backoff's own
    cause and time) stay apart.
    """
    found: dict[tuple[Any, ...], Same] = {}
    text = _Texts()
    alone = 0
    for change in changes:
        if change.vin is None:
            alone += 1
            found[("callback", alone)] = Same(change, [])
            continue
        key = (
            change.address.split(".", 2)[2],
            change.action,
            change.summary,
            text(change.before),
            text(change.after),
            change.sensitive,
            str(change.source) if change.source is not None else "",
            change.schedule.reason if by_reason else "",
        )
        same = found.get(key)
        if same is None:
            same = found[key] = Same(change, [])
        same.vins.append(change.vin)
    return list(found.values())


class _Texts:
    """A value's JSON, computed once per object: a plan shares its values among vehicles with the same programs."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        if value is None or isinstance(value, (str, int, bool)):
            return repr(value)
        known = self._seen.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        encoded = json.dumps(value, sort_keys=True, default=str)
        self._seen[id(value)] = (value, encoded)  # the value kept alive: its id is not reused meanwhile
        return encoded


_ID = re.compile(r"\b(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f-]{27})\b")


def by_reason(items: Sequence[T], address: Callable[[T], str], reason: Callable[[T], str]) -> list[tuple[str, list[T]]]:
    """(reason, items) for ``items``, the reasons stripped of action ids and of the item's own VIN, most first.

    The part (``preconditioning``…) leads the reason: the same reason for
    different parts is two groups.
    """
    grouped: dict[str, list[T]] = {}
    for item in items:
        where = address(item)
        vin = addresses.vin_of(where)
        said = _ID.sub("…", reason(item))
        if vin:
            said = said.replace(vin, "…")
        part = where.split(".", 2)[2] if vin and where.count(".") >= 2 else ""
        grouped.setdefault(f"{part}: {said}" if part else said, []).append(item)
    return sorted(grouped.items(), key=lambda kv: -len(kv[1]))


def vins_of(where: Sequence[str]) -> list[str]:
    """The VINs of vehicle addresses (other addresses as they are)."""
    return [addresses.vin_of(a) or a for a in where]


def listed(vins: Sequence[str], at_most: int) -> str:
    """``VF3…, VF3… and 3,990 more``: at most ``at_most`` of ``vins``."""
    shown = ", ".join(vins[:at_most])
    rest = len(vins) - at_most
    return f"{shown} and {rest:,} more" if rest > 0 and shown else (f"{rest:,} vehicles" if rest > 0 else shown)
