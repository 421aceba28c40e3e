"""The planner: ``plan(desired, recorded, observed) -> Plan``, with no I/O.

Current state is what the API reports where a refresh observed it, else what
the state recorded. Only what differs is planned: a preconditioning change
carries ``Set`` for added or changed slots and ``Delete`` for slots the
reconciler set before and the file no longer has; slots it never managed are
never touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from . import addresses, bodies, codec, groups, parts, recording, spec
from .changes import Adoption, CannotApply, Change, Drift, Held, Plan, Request, SensitiveField, Unobserved
from .model import (
    AirProgram,
    AirPrograms,
    Callback,
    Capabilities,
    ChargeProgram,
    ChargePrograms,
    ChargingPreferences,
    Desired,
    DesiredVehicle,
    Fingerprint,
    Observed,
    ObservedVehicle,
    PendingAction,
    Recorded,
    RecordedVehicle,
    Secret,
    Sources,
    VehicleConfig,
)
from .parts import Kind, Part
from .sensitive import seal, seal_callback
from .targets import targeted
from .timeofday import describe_days, to_hhmm
from .vocabulary import Action

_NO_CONFIG = VehicleConfig()


def plan(
    desired: Desired,
    recorded: Recorded,
    observed: Observed | None = None,
    *,
    targets: Iterable[str] = (),
    now: str = "",
) -> Plan:
    """Everything apply must send to bring the fleet to ``desired``.

    ``now`` (ISO-8601 UTC) decides which backed-off failures are due again;
    ``targets`` keeps only the changes under those addresses, plus the creation
    of any callback they need.
    """
    seen = observed or Observed()
    if seen.actions and now:  # our own actions that ended since: planned as ended, not as drift
        recorded = recording.settled(recorded, seen.actions, datetime.fromisoformat(now))
    listing = seen.listing if seen.listing is not None else recorded.listing
    builder = _Planner(groups.members(desired, listing), recorded, seen, now, listing)
    builder.callbacks()
    builder.vehicles()
    changes, drift, held, adoptions = builder.changes, builder.drift, builder.held, builder.adoptions
    cannot, unobserved = builder.cannot, builder.unobserved
    targets = tuple(targets)
    if targets:
        changes = targeted(changes, targets)
        drift = [d for d in drift if addresses.matches(d.address, targets)]
        held = [h for h in held if addresses.matches(h.address, targets)]
        adoptions = [a for a in adoptions if addresses.matches(a.address, targets)]
        cannot = [c for c in cannot if addresses.matches(c.address, targets)]
        unobserved = [u for u in unobserved if addresses.matches(u.address, targets)]
    lookups = len({c.vin for c in changes if c.vin and "{vid}" in c.request.path})
    return Plan(
        fleet=desired.fleet,
        lineage=recorded.lineage,
        serial=recorded.serial,
        changes=tuple(changes),
        drift=tuple(drift),
        held=tuple(held),
        adoptions=tuple(adoptions),
        cannot_apply=tuple(cannot),
        unobserved=tuple(unobserved),
        refreshed=observed is not None,
        lookups=lookups,
        targets=targets,
        warnings=desired.warnings + tuple(builder.warnings),
    )


def action_key(lineage: str, serial: int, address: str) -> str:
    """The unique key put in a remote action's label, to find it again after a timeout."""
    digest = hashlib.sha256(f"{lineage}:{serial}:{address}".encode()).hexdigest()
    return f"reconciler:{digest[:24]}"


class _Planner:
    def __init__(
        self, desired: Desired, recorded: Recorded, observed: Observed, now: str, listing: Mapping[str, str] | None
    ) -> None:
        self.desired = desired
        self.recorded = recorded
        self.observed = observed
        self.now = now
        self.listing = listing
        self.capabilities = {**recorded.capabilities, **observed.capabilities}
        self.cannot: list[CannotApply] = []
        self.unobserved: list[Unobserved] = []
        self._instants: dict[str, datetime | None] = {}
        self.warnings: list[str] = []
        self.key = recorded.fingerprint_key
        self.changes: list[Change] = []
        self.drift: list[Drift] = []
        self.held: list[Held] = []
        self.adoptions: list[Adoption] = []
        self.callback_ids: dict[str, str] = {}
        self.fleet_api = f"/fleets/{desired.fleet}"
        self._memos: dict[tuple[int, Callable[..., Any]], tuple[Any, Any]] = {}
        self._outcomes: dict[tuple[str, int, int, int], tuple[Any, Any, Any, _Outcome]] = {}
        self._paths: dict[tuple[str | None, str], str] = {}

    def memo(self, fn: Callable[[Any], Any], value: Any) -> Any:
        """``fn(value)``, computed once per object: vehicles of a profile share their programs.

        The value is kept with the result so that its id cannot be reused.
        """
        key = (id(value), fn)
        hit = self._memos.get(key)
        if hit is None:
            hit = self._memos[key] = (value, fn(value))
        return hit[1]

    # callbacks

    def callbacks(self) -> None:
        for label, wanted in self.desired.callbacks.items():
            self._callback(label, wanted)
        for label, rec in self.recorded.callbacks.items():
            if label not in self.desired.callbacks:
                path = f"{self.fleet_api}/remote/callbacks/{rec.id}"
                self.changes.append(
                    Change(
                        addresses.callback(label),
                        Action.DELETE,
                        codec.callback_to_json(rec.config),
                        None,
                        Request("DELETE", path),
                        f"delete callback {label} ({rec.id})",
                        callback=label,
                    )
                )

    def _callback(self, label: str, wanted: Callback) -> None:
        address = addresses.callback(label)
        rec = self.recorded.callbacks.get(label)
        obs = self.observed.callbacks.get(label)
        sealed = seal_callback(wanted, self.key)
        if rec and obs and (not rec.config.same_body(obs.config) or rec.config.status != obs.config.status):
            self._callback_drift(address, rec.config, obs.config)
        current = obs.config if obs else rec.config if rec else None
        cb_id = obs.id if obs else rec.id if rec else None
        after = codec.callback_to_json(wanted)
        sensitive = _sensitive_fields(wanted, current, self.key)
        body = bodies.callback_subscribe(wanted)
        if current is None or cb_id is None:
            self.changes.append(
                Change(
                    address,
                    Action.CREATE,
                    None,
                    after,
                    Request("POST", f"{self.fleet_api}/remote/callbacks", body),
                    f"create callback {label}",
                    callback=label,
                    sensitive=sensitive,
                )
            )
            if wanted.status == spec.CALLBACK_PAUSED:
                self._status_change(address, label, None, after, "{cbid}", Action.PAUSE)
            return
        self.callback_ids[label] = cb_id
        before = codec.callback_to_json(current)
        in_place = sealed.same_body(current) and sealed.status == current.status
        if obs and in_place and (rec is None or rec.id != obs.id or not rec.config.same_body(sealed)):
            self.adoptions.append(Adoption(address, obs.id))
        if not sealed.same_body(current):
            self.changes.append(
                Change(
                    address,
                    Action.UPDATE,
                    before,
                    after,
                    Request("PUT", f"{self.fleet_api}/remote/callbacks/{cb_id}", body),
                    f"update callback {label} ({cb_id})",
                    callback=label,
                    sensitive=sensitive,
                )
            )
        if sealed.status != current.status:
            action = Action.PAUSE if sealed.status == spec.CALLBACK_PAUSED else Action.RESUME
            self._status_change(address, label, before, after, cb_id, action)

    def _status_change(self, address: str, label: str, before: Any, after: Any, cb_id: str, action: Action) -> None:
        status = spec.CALLBACK_PAUSED if action == Action.PAUSE else spec.CALLBACK_RUNNING
        self.changes.append(
            Change(
                address,
                action,
                before,
                after,
                Request("PUT", f"{self.fleet_api}/remote/callbacks/{cb_id}/status", bodies.callback_status(status)),
                f"{action} callback {label}",
                callback=label,
            )
        )

    def _callback_drift(self, address: str, recorded: Callback, observed: Callback) -> None:
        rec, obs = codec.callback_to_json(recorded), codec.callback_to_json(observed)
        for name in sorted(set(rec) | set(obs)):
            if rec.get(name) != obs.get(name):
                self.drift.append(Drift(address, name, rec.get(name), obs.get(name)))
        if rec == obs:  # differs only in a secret's fingerprint
            self.drift.append(Drift(address, "webhook", "(sensitive)", "(sensitive, changed)"))

    # vehicles

    def vehicles(self) -> None:
        recorded, observed, listing = self.recorded.vehicles, self.observed.vehicles, self.listing
        for vin, wanted in self.desired.vehicles.items():
            if listing is not None and vin not in listing:
                self._not_in_fleet(vin)
                continue
            self._vehicle(vin, wanted, recorded.get(vin), observed.get(vin))
        if self.desired.prune:
            for vin, rec in recorded.items():
                if vin not in self.desired.vehicles and (listing is None or vin in listing):
                    self._prune(vin, rec, observed.get(vin))

    def _not_in_fleet(self, vin: str) -> None:
        """An explicit vehicle the fleet's listing does not hold: said, never silently skipped."""
        reason = f"not in fleet {self.desired.fleet}: the API does not list {vin}"
        if not self.observed.listing:
            reason = f"not in fleet {self.desired.fleet} as last listed: refresh to list it again"
        self.cannot.append(CannotApply(addresses.vehicle_prefix(vin), reason))
        self.warnings.append(f"vehicles.{vin}: {reason}; nothing is sent to it")

    def _vehicle(
        self, vin: str, wanted: DesiredVehicle, rec: RecordedVehicle | None, obs: ObservedVehicle | None
    ) -> None:
        want = wanted.config
        had = rec.config if rec else _NO_CONFIG
        seen = obs.config if obs else _NO_CONFIG
        if obs is not None and rec is not None and rec.confirmed_at and obs.reported_at:
            seen = self._fresh(vin, seen, obs.reported_at, rec.confirmed_at)
        vid = (obs.vid if obs else None) or (rec.vid if rec else None) or (self.listing or {}).get(vin)
        target = _Target(vin, vid, wanted.routes, sources=wanted.sources, caps=self.capabilities.get(vin))
        for part, value in self.memo(_managed, want):
            self._section(target, part, value, part.of(had), part.of(seen))

    def _fresh(self, vin: str, seen: VehicleConfig, reported: Mapping[str, str], confirmed: Mapping[str, str]) -> Any:
        """``seen`` without the parts the vehicle reported before reconciler's last action on them was confirmed.

        A sleeping car's report can predate the action just confirmed: taken for
        drift, it would be sent again (a wake-up wasted, a loop on a car that
        reports late). Such a part is unobserved; a newer report is believed.
        """
        stale = [
            name
            for name, at in confirmed.items()
            if name in reported and _before(self._instant(reported[name]), self._instant(at))
        ]
        if not stale:
            return seen
        for name in stale:
            self.unobserved.append(Unobserved(addresses.vehicle(vin, name), reported[name], confirmed[name]))
        return replace(seen, **{parts.BY_NAME[name].field: None for name in stale if name in parts.BY_NAME})

    def _instant(self, text: str) -> datetime | None:
        if text not in self._instants:
            try:
                self._instants[text] = datetime.fromisoformat(text)
            except ValueError:
                self._instants[text] = None
        return self._instants[text]

    def _prune(self, vin: str, rec: RecordedVehicle, obs: ObservedVehicle | None) -> None:
        """A vehicle gone from the file under ``prune: true``: remove the programs set for it.

        Flags and preferences have nothing to remove and are left as they are.
        """
        seen = obs.config if obs else _NO_CONFIG
        target = _Target(vin, (obs.vid if obs else None) or rec.vid, {}, pruned=True, caps=self.capabilities.get(vin))
        for part, value in parts.managed(rec.config):
            if part.programs and value:
                self._section(target, part, _NO_PROGRAMS, value, part.of(seen))

    def _section(self, t: _Target, part: Part, want: Any, had: Any, seen: Any) -> None:
        """What one section of one vehicle needs: drift to say, what to adopt, what to send.

        The work depends only on (want, had, seen), which vehicles alike share:
        it is done once per distinct triple, not once per vehicle.
        """
        key = (part.name, id(want), id(had), id(seen))
        hit = self._outcomes.get(key)
        if hit is None:
            hit = self._outcomes[key] = (want, had, seen, _DECIDE[part.kind](self, part, want, had, seen))
        outcome = hit[3]
        address = addresses.vehicle(t.vin, part.name)
        pending = self.recorded.pending.get(address) if self.recorded.pending else None
        if pending is not None:
            # Our own action is under way: what the vehicle reports is its doing, not drift, and
            # nothing is adopted or sent before it ends.
            if outcome.send is None:
                self.held.append(Held(address, _pending_reason(pending)))
            else:
                self._send(t, address, part, want, outcome.send)
            return
        for name, recorded, observed in outcome.drift:
            self.drift.append(Drift(address, name, recorded, observed))
        if outcome.adopt is not _NOT_ADOPTED:
            self.adoptions.append(Adoption(address, t.vid or "", outcome.adopt))
        if outcome.send is not None:
            self._send(t, address, part, want, outcome.send)

    def _send(self, t: _Target, address: str, part: Part, want: Any, send: _Send) -> None:
        if t.caps is not None:
            reason = part.cannot(t.caps, want)
            if reason is not None:
                self.cannot.append(CannotApply(address, reason))
                return
        remote_type = part.remote_type
        label = t.routes.get(remote_type)
        if label is None and t.pruned:
            label = self._any_callback(remote_type)
        key = action_key(self.recorded.lineage, self.recorded.serial, address)
        self.changes.append(
            Change(
                address,
                Action.SEND,
                send.before,
                send.after,
                Request("POST", self._path(t.vid, label), send.content, key),
                send.summary,
                key=key,
                vin=t.vin,
                remote_type=remote_type,
                callback=label,
                source=t.sources.get(part.name),
                removed=send.removed,
            )
        )

    def _path(self, vid: str | None, label: str | None) -> str:
        """The remote actions path; the same string for every vehicle still to look up."""
        cb_id = self.callback_ids.get(label or "", "{cbid}")
        key = (vid, cb_id)
        path = self._paths.get(key)
        if path is None:
            path = f"{self.fleet_api}/vehicles/{vid or '{vid}'}/callbacks/{cb_id}/remotes"
            if vid is None:
                self._paths[key] = path
        return path

    # what each section needs, whatever the vehicle

    def _air(self, part: Part, want: AirPrograms, had: AirPrograms | None, seen: AirPrograms | None) -> _Outcome:
        seen = _days_filled(seen, had, want)
        drift = self._slot_drift(had, seen)
        current = seen if seen is not None else (had or {})
        sets = [p for slot, p in sorted(want.items()) if current.get(slot) != p]
        deletes = sorted(slot for slot in (had or {}) if slot not in want and slot in current)
        if not sets and not deletes:
            return _Outcome(drift, self._adoption(seen, had, want))
        entries = [self.memo(bodies.air_set, p) for p in sets] + [bodies.air_delete(s) for s in deletes]
        words = [self.memo(_describe_air, p) for p in sets] + [f"Delete slot {s}" for s in deletes]
        send = _Send(
            self._before(current, want, had),
            self.memo(codec.programs_to_json, want),
            bodies.preconditioning(entries),
            ", ".join(words),
            len(deletes),
        )
        return _Outcome(drift, send=send)

    def _schedule(
        self, part: Part, want: ChargePrograms, had: ChargePrograms | None, seen: ChargePrograms | None
    ) -> _Outcome:
        seen = _days_filled(seen, had, want)
        drift = self._slot_drift(had, seen)
        current = seen if seen is not None else (had or {})
        sets = [p for slot, p in sorted(want.items()) if current.get(slot) != p]
        # The charging API has no Delete: a removed slot is sent disabled.
        disables = [
            replace(current[slot], enabled=False)
            for slot in sorted(had or {})
            if slot not in want and slot in current and current[slot].enabled
        ]
        if not sets and not disables:
            kept = {s: p for s, p in (had or {}).items() if s not in want and s in current}
            return _Outcome(drift, self._adoption(seen, had, {**want, **kept}))
        words = [self.memo(_describe_charge, p) for p in sets] + [f"Disable slot {p.slot}" for p in disables]
        after = {**want, **{p.slot: p for p in disables}} if disables else want
        entries = [self.memo(bodies.charge_program, p) for p in sets + disables]
        send = _Send(
            self._before(current, want, had),
            self.memo(codec.programs_to_json, after),
            bodies.charging_schedule(entries),
            ", ".join(words),
            len(disables),
        )
        return _Outcome(drift, send=send)

    def _preferences(
        self, part: Part, want: ChargingPreferences, had: ChargingPreferences | None, seen: ChargingPreferences | None
    ) -> _Outcome:
        drift: tuple[tuple[str, Any, Any], ...] = ()
        if had is not None and seen is not None and seen != had:
            drift = (("preferences", codec.preferences_to_json(had), codec.preferences_to_json(seen)),)
        current = seen if seen is not None else had
        if current is not None and all(
            w is None or w == c for w, c in ((want.level, current.level), (want.type, current.type))
        ):
            adopt = codec.preferences_to_json(want) if seen is not None and had != want else _NOT_ADOPTED
            return _Outcome(drift, adopt)
        described = " ".join(v for v in (want.level, want.type) if v)
        send = _Send(
            codec.preferences_to_json(current),
            codec.preferences_to_json(want),
            bodies.charging_preferences(want),
            f"set preferences {described}",
        )
        return _Outcome(drift, send=send)

    def _flag(self, part: Part, want: bool, had: bool | None, seen: bool | None) -> _Outcome:
        name = part.field
        drift: tuple[tuple[str, Any, Any], ...] = ()
        if had is not None and seen is not None and seen != had:
            drift = ((name, had, seen),)
        current = seen if seen is not None else had
        if current == want:
            return _Outcome(drift, {name: want} if seen is not None and had != want else _NOT_ADOPTED)
        assert part.body is not None, f"the flag {part.name} has no request body"
        content, summary = part.body(want), part.words[0 if want else 1]
        before = None if current is None else {name: current}
        return _Outcome(drift, send=_Send(before, {name: want}, content, summary))

    def _adoption(self, seen: Mapping[int, Any] | None, had: Mapping[int, Any] | None, after: Mapping[int, Any]) -> Any:
        """What to record when the vehicle already holds ``after`` and the state does not say so."""
        if seen is not None and dict(had or {}) != dict(after):
            return self.memo(codec.programs_to_json, after)
        return _NOT_ADOPTED

    def _before(self, current: Mapping[int, Any], want: Mapping[int, Any], had: Mapping[int, Any] | None) -> Any:
        """The current programs of the slots this address manages (desired or set before)."""
        if not current:
            return []
        managed = {s: p for s, p in current.items() if s in want or (had and s in had)}
        return codec.programs_to_json(managed)

    def _slot_drift(
        self, had: Mapping[int, Any] | None, seen: Mapping[int, Any] | None
    ) -> tuple[tuple[str, Any, Any], ...]:
        if had is None or seen is None:
            return ()
        drift = []
        for slot in sorted(had):
            if seen.get(slot) != had[slot]:
                before = codec.programs_to_json({slot: had[slot]})
                after = codec.programs_to_json({slot: seen[slot]}) if slot in seen else None
                drift.append((f"slot {slot}", before[0] if before else None, after[0] if after else None))
        return tuple(drift)

    def _any_callback(self, remote_type: str) -> str | None:
        for label, cb in self.desired.callbacks.items():
            if remote_type in cb.remote_types:
                return label
        return None


_NOT_ADOPTED: Any = object()  # nothing in place to record


def _before(reported: datetime | None, confirmed: datetime | None) -> bool:
    """Whether a report is older than a confirmation; a time that cannot be read or compared says nothing."""
    if reported is None or confirmed is None:
        return False
    try:
        return reported < confirmed
    except TypeError:  # one of them without a time zone
        return False


def _pending_reason(pending: PendingAction) -> str:
    return f"action {pending.remote_action_id or pending.key} is still {pending.status}; planned again once it ends"


_NO_PROGRAMS: AirPrograms = {}


@dataclass(frozen=True, slots=True)
class _Send:
    """A change to send, but for the vehicle it goes to."""

    before: Any
    after: Any
    content: Any
    summary: str
    removed: int = 0  # slots deleted (or sent disabled)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a section of a vehicle needs, but for the vehicle: drift found, something to adopt, a change."""

    drift: tuple[tuple[str, Any, Any], ...] = ()
    adopt: Any = _NOT_ADOPTED
    send: _Send | None = None


def _managed(config: VehicleConfig) -> tuple[tuple[Part, Any], ...]:
    return tuple(parts.managed(config))


# What each kind of part needs, whatever the vehicle (``parts.Kind``).
_DECIDE: dict[Kind, Callable[[_Planner, Part, Any, Any, Any], _Outcome]] = {
    Kind.AIR_PROGRAMS: _Planner._air,
    Kind.CHARGE_PROGRAMS: _Planner._schedule,
    Kind.PREFERENCES: _Planner._preferences,
    Kind.FLAG: _Planner._flag,
}


class _Target:
    """The vehicle a change is for: VIN, vid if known, its callback routes, sources and capabilities."""

    __slots__ = ("caps", "pruned", "routes", "sources", "vid", "vin")

    def __init__(
        self,
        vin: str,
        vid: str | None,
        routes: Mapping[str, str],
        pruned: bool = False,
        sources: Sources | None = None,
        caps: Capabilities | None = None,
    ) -> None:
        self.vin = vin
        self.vid = vid
        self.routes = routes
        self.pruned = pruned
        self.sources = sources or {}
        self.caps = caps


def _days_filled(seen: Mapping[int, Any] | None, *references: Mapping[int, Any] | None) -> Mapping[int, Any] | None:
    """Programs whose status said nothing of their days take them from the state or the file.

    A status document without ``occurence`` is a gap, not a difference.
    """
    if not seen or all(p.days for p in seen.values()):
        return seen
    filled = dict(seen)
    for slot, program in seen.items():
        if not program.days:
            known = next((r[slot] for r in references if r and slot in r), None)
            if known is not None:
                filled[slot] = replace(program, days=known.days)
    return filled


def _describe_air(p: AirProgram) -> str:
    return f"Set slot {p.slot} ({to_hhmm(p.start)} {describe_days(p.days)})"


def _describe_charge(p: ChargeProgram) -> str:
    return f"Set slot {p.slot} ({to_hhmm(p.start)}–{to_hhmm(p.end)} {describe_days(p.days)})"


def _sensitive_fields(wanted: Callback, current: Callback | None, key: bytes) -> tuple[SensitiveField, ...]:
    """Each secret of ``wanted``, and whether it differs from what ``current`` holds."""
    fields = []
    old = {("target", ""): current.target} if current else {}
    if current:
        old.update({(a.kind, a.key): a.value for a in current.attributes})
    values = [(("target", ""), wanted.target)] + [((a.kind, a.key), a.value) for a in wanted.attributes]
    for (kind, name), value in values:
        if isinstance(value, Secret):
            previous = old.get((kind, name))
            changed = not isinstance(previous, Fingerprint) or previous != seal(value, key)
            where = "webhook.target" if kind == "target" else f"webhook.{_section(kind)}.{name}"
            fields.append(SensitiveField(where, changed))
    return tuple(fields)


def _section(kind: str) -> str:
    return {"Header": "headers", "Query": "query", "Body": "body"}[kind]
