"""The vehicles of a fleet file: ``groups:`` and ``vehicles:`` entries, layered, routed and checked.

What a vehicle gets is built in layers, each replacing the one below section by
section: its group's profile, its group's own sections, its vehicle entry's
profile, its vehicle entry's own sections. Every section remembers its layer
(``Source``): plans say where each desired value comes from. The first group
(in file order) that takes a VIN is its group.

Objects are shared wherever vehicles are alike (configurations, routes,
sources): a 100,000-vehicle fleet has a few dozen distinct ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import parts, spec
from ..core.groups import Takers
from ..core.model import Callback, DesiredVehicle, Group, Selector, Source, Sources, VehicleConfig
from . import schema
from .reading import Reading
from .yaml_source import Path as DataPath

_NOTHING = VehicleConfig()
_NO_SOURCES: Sources = {}


def provided(config: VehicleConfig) -> tuple[str, ...]:
    """The address parts ``config`` manages."""
    return tuple(part.name for part, _ in parts.managed(config))


class Resolver:
    """Groups and vehicle entries of one fleet file, checked against its profiles and callbacks."""

    def __init__(
        self, builder: Reading, profiles: dict[str, VehicleConfig | None], callbacks: dict[str, Callback]
    ) -> None:
        self.b = builder
        self.profiles = profiles
        self.callbacks = callbacks
        self.routable = not builder.report.is_bad("callbacks")  # routing a malformed callback misleads
        self.profiles_known = not builder.report.broken("profiles")
        self._route_cache: dict[tuple[str | None, tuple[str, ...]], Any] = {}
        self._layer_cache: dict[tuple[Any, ...], tuple[VehicleConfig, Sources]] = {}
        self._configs: dict[str, VehicleConfig] = {}  # each distinct configuration once
        self._sources_cache: dict[tuple[tuple[str, Source], ...], Sources] = {}
        self._needed: dict[int, tuple[VehicleConfig, tuple[str, ...]]] = {}

    # groups

    def groups(self) -> tuple[Group, ...]:
        raw = self.b.data.get("groups")
        if not isinstance(raw, list) or self.b.report.broken("groups"):
            return ()
        groups: list[Group] = []
        names: dict[str, int] = {}
        earlier = _Taken()
        for index, body in enumerate(raw):
            path: DataPath = ("groups", index)
            if not isinstance(body, dict) or self.b.report.is_bad(*path):
                continue
            name = str(body["name"])
            if name in names:
                first = self.b.source.locate(("groups", names[name], "name"))
                self.b.problem(
                    (*path, "name"),
                    f"group {name!r} is declared twice (first at line {first.line})",
                    "give each group its own name",
                )
            names.setdefault(name, index)
            match = self._selector(body["match"], (*path, "match"))
            exclude = self._selector(body["exclude"], (*path, "exclude")) if "exclude" in body else None
            self._never_matches(match, exclude, earlier, body, path)
            earlier.add(match, exclude)
            config, sources = self._layers(body, path, base=(_NOTHING, _NO_SOURCES), group=name)
            routes = self._routes(body.get("callback"), config, path)
            if not self.b.report.is_bad(*path):
                groups.append(Group(name, match, exclude, config, routes, sources, body.get("callback")))
        return tuple(groups)

    def _selector(self, raw: dict[str, Any], path: DataPath) -> Selector:
        prefixes = raw.get("vinPrefix", ())
        prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
        vins = raw.get("vins", ())
        for index, vin in enumerate(vins):
            check_vin(self.b, vin, (*path, "vins", index), key=False)
        return Selector(prefixes, frozenset(vins), raw.get("all") is True)

    def _never_matches(
        self,
        match: Selector,
        exclude: Selector | None,
        earlier: _Taken,
        body: dict[str, Any],
        path: DataPath,
    ) -> None:
        """A group no VIN can ever reach is a mistake: say which earlier group takes its vehicles."""
        for prefix in match.prefixes:
            bad = sorted(set(prefix) - spec.VIN_ALPHABET)
            if bad:
                self.b.problem(
                    (*path, "match", "vinPrefix"),
                    f"prefix {prefix!r} can never match: {', '.join(map(repr, bad))} cannot appear in a VIN",
                    "VINs are capital letters and digits, never I, O or Q",
                )
                return
        if match.everything:
            shadow = earlier.first if earlier.everything else None
        else:
            reachable = [p for p in match.prefixes if not earlier.takes(p)]
            reachable += [v for v in match.vins if not earlier.takes(v) and v not in earlier.vins]
            reachable = [v for v in reachable if not (exclude is not None and exclude.covers(v))]
            shadow = None if reachable else (earlier.first or match)
        if shadow is not None:
            hint = (
                "an earlier group already takes every vehicle it would: move it up, or narrow the earlier one"
                if shadow is not match
                else "it excludes every vehicle it matches"
            )
            self.b.problem((*path, "match"), f"group {body['name']!r} can never match a vehicle", hint)

    # vehicle entries

    def vehicles(self, groups: tuple[Group, ...]) -> dict[str, DesiredVehicle]:
        raw = self.b.data.get("vehicles")
        if not isinstance(raw, dict) or self.b.report.broken("vehicles"):
            return {}
        result = {}
        takers = Takers(groups)
        for vin, body in raw.items():
            path: DataPath = ("vehicles", vin)
            check_vin(self.b, vin, path)
            if body is not None and not isinstance(body, dict):
                continue
            body = body or {}
            group = takers.first(vin)
            base = (group.config, group.sources) if group else (_NOTHING, _NO_SOURCES)
            config, sources = self._layers(body, path, base=base, group=None)
            chosen = body.get("callback", group.callback if group else None)
            routes = self._routes(chosen, config, path)
            if self.b.report.is_bad(*path) or not self.routable:
                continue
            result[vin] = DesiredVehicle(vin, config, routes, sources)
        return result

    # layers: profile, then own sections

    def _layers(
        self, body: dict[str, Any], path: DataPath, *, base: tuple[VehicleConfig, Sources], group: str | None
    ) -> tuple[VehicleConfig, Sources]:
        """``base`` with ``body``'s profile, then its own sections, laid over it (and where each comes from)."""
        profile = body.get("profile")
        key = (repr(body), id(base[0]), id(base[1]), group)
        cached = self._layer_cache.get(key)
        if cached is not None:
            return cached
        config, sources = base
        if isinstance(profile, str) and self.profiles_known:
            if profile not in self.profiles:
                self.unknown_reference(path, "profile", profile, list(self.profiles))
            chosen = self.profiles.get(profile)
            if chosen is not None:
                config = parts.over(config, chosen)
                sources = self._sources(sources, provided(chosen), Source(group, profile, group is None))
        own = self.b.sections(body, path, _NOTHING)
        if own is not _NOTHING:  # most entries name a profile and nothing of their own
            config = parts.over(config, own)
            sources = self._sources(sources, provided(own), Source(group, None, group is None))
        # Entries that end up alike share one configuration (2,000 groups of 20 profiles: 20 of them),
        # so that what is worked out per configuration downstream is worked out 20 times, not 2,000.
        config = self._configs.setdefault(repr(config), config)
        if not self.b.report.is_bad(*path):
            self._layer_cache[key] = (config, sources)
        return config, sources

    def _sources(self, below: Sources, parts: tuple[str, ...], source: Source) -> Sources:
        if not parts:
            return below
        merged = tuple(sorted({**below, **dict.fromkeys(parts, source)}.items()))
        shared = self._sources_cache.get(merged)
        if shared is None:
            shared = self._sources_cache[merged] = dict(merged)
        return shared

    # routes

    def _routes(self, chosen: Any, config: VehicleConfig, path: DataPath) -> Mapping[str, str]:
        # Vehicles alike share their configuration: its remote types are found once.
        known = self._needed.get(id(config))
        if known is None or known[0] is not config:
            known = self._needed[id(config)] = (config, parts.remote_types(config))
        needed = list(known[1])
        if chosen is not None and chosen not in self.callbacks:
            if self.routable:
                self.unknown_reference(path, "callback", chosen, list(self.callbacks))
            return {}
        cache_key = (chosen, tuple(needed))
        cached = self._route_cache.get(cache_key)
        if cached is None:
            routes, failures = resolve_routes(chosen, needed, self.callbacks)
            cached = self._route_cache[cache_key] = (dict(routes), failures)
        routes_map, failures = cached
        if self.routable:
            for _, message, hint in failures:
                self.b.problem(path, message, hint, key=True)
        return routes_map

    def unknown_reference(self, path: DataPath, kind: str, name: str, known: list[str]) -> None:
        hint = schema.did_you_mean(name, known) or (
            f"declared {kind}s: {', '.join(known)}" if known else f"declare it under {kind}s:"
        )
        self.b.problem((*path, kind), f"{kind} {name!r} is not declared", hint)


def resolve_routes(chosen: str | None, needed: list[str], callbacks: Mapping[str, Callback]) -> Any:
    """The callback for each remote type: the chosen one if it subscribes, else the only one."""
    routes = []
    failures = []
    for remote_type in needed:
        if chosen is not None and remote_type in callbacks[chosen].remote_types:
            routes.append((remote_type, chosen))
            continue
        candidates = [label for label, cb in callbacks.items() if remote_type in cb.remote_types]
        if len(candidates) == 1:
            routes.append((remote_type, candidates[0]))
        elif not candidates:
            failures.append(
                (
                    remote_type,
                    f"no callback subscribes to {remote_type}",
                    f"add {remote_type} to the remoteTypes of a callback",
                )
            )
        else:
            failures.append(
                (
                    remote_type,
                    f"callbacks {', '.join(candidates)} all subscribe to {remote_type}",
                    "set callback: on the vehicle (or its group) to say which one to use",
                )
            )
    return tuple(routes), tuple(failures)


def check_vin(builder: Reading, vin: str, path: DataPath, *, key: bool = True) -> None:
    if len(vin) == spec.VIN_LENGTH and set(vin) <= spec.VIN_ALPHABET:
        return
    if len(vin) != spec.VIN_LENGTH:
        message = f"not a VIN: it has {len(vin)} characters, a VIN has 17"
    else:
        bad = sorted(set(vin) - spec.VIN_ALPHABET)
        message = f"not a VIN: {', '.join(map(repr, bad))} cannot appear in a VIN"
    builder.problem(path, message, "VINs are 17 capital letters and digits, never I, O or Q", key=key)


class _Taken:
    """What the earlier groups without an ``exclude`` take, for telling a group that none of its VINs is left.

    Kept as sets, so that checking 5,000 groups costs 5,000 look-ups, not 25 million comparisons.
    """

    def __init__(self) -> None:
        self.first: Selector | None = None  # the first such group, named when it shadows a later one
        self.everything = False
        self.prefixes: set[str] = set()
        self.lengths: set[int] = set()
        self.vins: set[str] = set()

    def add(self, match: Selector, exclude: Selector | None) -> None:
        if exclude is not None:
            return
        self.first = self.first or match
        self.everything = self.everything or match.everything
        self.prefixes.update(match.prefixes)
        self.lengths.update(len(p) for p in match.prefixes)
        self.vins.update(match.vins)

    def takes(self, vin_or_prefix: str) -> bool:
        """Whether every VIN starting with ``vin_or_prefix`` is taken already."""
        return self.everything or any(
            vin_or_prefix[:n] in self.prefixes for n in self.lengths if n <= len(vin_or_prefix)
        )
