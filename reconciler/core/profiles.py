"""Factoring vehicles' configurations into shared profiles, for ``reconciler import``.

Vehicles holding the same programs share one profile, named after what it
holds (``pre-0730-wd_chg-2200-0600``) or ``p1``, ``p2`` … when that would be too
long. A vehicle whose configuration no other vehicle has takes the profile it
shares the most sections with and writes the sections that differ (a vehicle's
section replaces its profile's, section by section), or writes its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from .model import AirProgram, ChargeProgram, ChargingPreferences, VehicleConfig
from .parts import PARTS, Kind, managed, over
from .timeofday import DAY_SHORTCUTS, to_hhmm

MAX_NAME = 60
# The parts a profile holds (flags stay on the vehicle), as VehicleConfig fields.
_SECTIONS = tuple(part.field for part in PARTS if part.kind != Kind.FLAG)
_PREFIXES = {Kind.AIR_PROGRAMS: "pre", Kind.CHARGE_PROGRAMS: "chg"}  # in a profile's name
_DAY_CODES = {"weekdays": "wd", "weekend": "we", "everyday": ""}


@dataclass(frozen=True)
class Entry:
    """How one vehicle is written: a profile (or none) and the sections it gives itself."""

    profile: str | None
    own: VehicleConfig


@dataclass(frozen=True)
class Factoring:
    profiles: dict[str, VehicleConfig]
    users: dict[str, int]  # profile -> how many vehicles use it
    entries: dict[str, Entry]


def factor(configs: Mapping[str, VehicleConfig], *, min_share: int = 2) -> Factoring:
    """Profiles for the configurations (programs and preferences) ``min_share`` vehicles or more hold alike.

    Flags (immobilized, stolen) never go into profiles: they stay on the vehicle.
    """
    keys = {vin: _key(config) for vin, config in configs.items()}
    parts = {key: _programs_only(configs[vin]) for vin, key in keys.items()}
    counts = Counter(key for key in keys.values() if _has_any(parts[key]))
    common = [key for key, n in counts.most_common() if n >= min_share]
    names = _names([parts[key] for key in common])
    name_of = {key: names[index] for index, key in enumerate(common)}
    profiles = {name_of[key]: parts[key] for key in common}
    entries: dict[str, Entry] = {}
    users: Counter[str] = Counter()
    bases = _Bases([(name_of[k], parts[k]) for k in common])
    for vin, config in configs.items():
        key, part = keys[vin], parts[keys[vin]]
        if key in name_of:
            entries[vin] = Entry(name_of[key], _flags(config))
            users[name_of[key]] += 1
            continue
        base = bases.closest(part)
        if base is None:
            entries[vin] = Entry(None, over(part, _flags(config)))
            continue
        name, profile = base
        differing = {s: getattr(part, s) for s in _SECTIONS if getattr(part, s) != getattr(profile, s)}
        entries[vin] = Entry(name, over(VehicleConfig(**differing), _flags(config)))
        users[name] += 1
    return Factoring(profiles, dict(users), entries)


def _flags(config: VehicleConfig) -> VehicleConfig:
    """The flags of ``config`` alone: they never go into a profile."""
    return VehicleConfig(**{part.field: value for part, value in managed(config) if part.kind == Kind.FLAG})


def _key(config: VehicleConfig) -> tuple[object, ...]:
    """A hashable stand-in for the programs and preferences of ``config`` (its mappings are not)."""
    values = [getattr(config, field) for field in _SECTIONS]
    return tuple(tuple(sorted(v.items())) if isinstance(v, Mapping) else v for v in values)


def _programs_only(config: VehicleConfig) -> VehicleConfig:
    return VehicleConfig(**{field: getattr(config, field) for field in _SECTIONS})


def _has_any(config: VehicleConfig) -> bool:
    return any(getattr(config, s) is not None for s in _SECTIONS)


class _Bases:
    """For each vehicle, the profile sharing the most sections with it, among those it can override into it.

    A vehicle can replace a profile's section but not take it away: a profile
    with a section the vehicle does not have is no base for it; of equals, the
    first profile in order wins. Found in time linear in the vehicles and the
    profiles: each profile is indexed under every set of its sections (``same``: the
    sections a vehicle would share with it, with their values) together with
    all the sections it has (``has``: a vehicle must have them too). A
    vehicle's best base is then looked up among at most 8 by 8 keys, from the
    most shared sections down, instead of compared with every profile.
    """

    def __init__(self, profiles: list[tuple[str, VehicleConfig]]) -> None:
        self.profiles = profiles
        self.index: dict[tuple[object, ...], int] = {}
        for order, (_, profile) in enumerate(profiles):
            present = tuple(s for s in _SECTIONS if getattr(profile, s) is not None)
            for same in _subsets(present):
                key = (same, tuple(_hashable(getattr(profile, s)) for s in same), present)
                self.index.setdefault(key, order)  # of equals, the first in order wins

    def closest(self, part: VehicleConfig) -> tuple[str, VehicleConfig] | None:
        present = tuple(s for s in _SECTIONS if getattr(part, s) is not None)
        values = {s: _hashable(getattr(part, s)) for s in present}
        subsets = _subsets(present)
        for size in range(len(present), 0, -1):
            found = [
                self.index.get((same, tuple(values[s] for s in same), has))
                for same in subsets
                if len(same) == size
                for has in subsets
                if set(same) <= set(has)
            ]
            orders = [order for order in found if order is not None]
            if orders:
                return self.profiles[min(orders)]
        return None


def _subsets(sections: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every subset of ``sections``, each in ``_SECTIONS`` order (the empty one too)."""
    subsets: list[tuple[str, ...]] = [()]
    for section in sections:
        subsets += [(*subset, section) for subset in subsets]
    return subsets


def _hashable(value: object) -> object:
    return tuple(sorted(value.items())) if isinstance(value, Mapping) else value


def _names(parts: list[VehicleConfig]) -> list[str]:
    """A readable name for each profile, unique; ``pN`` when what it holds does not fit in a name."""
    names: list[str] = []
    taken: set[str] = set()
    for number, part in enumerate(parts, 1):
        name = describe(part)
        if not name or len(name) > MAX_NAME or name in taken:
            name = f"p{number}"
            while name in taken:
                name += "x"
        names.append(name)
        taken.add(name)
    return names


def describe(config: VehicleConfig) -> str:
    """``pre-0730-wd_chg-2200-0600_l3-partial``: what a profile holds, in a name."""
    pieces = []
    for part, value in managed(config):
        if part.kind == Kind.AIR_PROGRAMS and value:
            pieces.append(f"{_PREFIXES[part.kind]}-" + "-".join(_air(p) for _, p in sorted(value.items())))
        elif part.kind == Kind.CHARGE_PROGRAMS and value:
            pieces.append(f"{_PREFIXES[part.kind]}-" + "-".join(_charge(p) for _, p in sorted(value.items())))
        elif part.kind == Kind.PREFERENCES and value:
            pieces.append(_preferences(value))
    return "_".join(pieces)


def _days(days: tuple[str, ...]) -> str:
    for name, members in DAY_SHORTCUTS.items():
        if days == members:
            return _DAY_CODES[name]
    return "".join(d[:2].lower() for d in days)


def _air(program: AirProgram) -> str:
    text = to_hhmm(program.start).replace(":", "")
    days = _days(program.days)
    text += f"-{days}" if days else ""
    return text + ("" if program.enabled else "-off")


def _charge(program: ChargeProgram) -> str:
    text = f"{to_hhmm(program.start).replace(':', '')}-{to_hhmm(program.end).replace(':', '')}"
    days = _days(program.days)
    text += f"-{days}" if days else ""
    return text + ("" if program.enabled else "-off")


def _preferences(prefs: ChargingPreferences) -> str:
    parts = [p.lower().replace("level", "l") for p in (prefs.level, prefs.type) if p]
    return "-".join(parts)
