"""``reconciler import``: bring a fleet that is already configured under management (DESIGN §9.1).

It reads the fleet as the API has it — callbacks, the vehicle list and the
status documents, page by page (about ⌈N/60⌉ calls each, never one per
vehicle) — and sends nothing. What it read becomes a fleet file (profiles
factored out, secrets as ``${VAR}``) and, in the state, the configuration
recorded as applied, so that the next plan has nothing to do.

Before anything is written, the file it made is read back as any fleet file
is, and planned against what was read: an import whose file would not plan
zero changes writes nothing and says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..api import observe, status_doc
from ..api.client import FleetApi
from ..core import parts, planner, profiles, spec
from ..core.model import (
    Callback,
    ChargingPreferences,
    Desired,
    Observed,
    ObservedCallback,
    ObservedVehicle,
    Recorded,
    RecordedCallback,
    RecordedVehicle,
    Secret,
    Value,
    VehicleConfig,
)
from ..core.sensitive import seal_callback
from ..errors import ConfigError, ReconcilerError
from ..fleetfile import loader, writer

# Keys whose values are written as ${VAR}, never in clear (any case, anywhere in the key).
SECRET_KEY = re.compile(r"authori[sz]ation|token|secret|key|passw|signature|credential|cookie|session", re.IGNORECASE)
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


@dataclass(frozen=True)
class ImportedCallback:
    label: str
    id: str
    config: Callback  # secrets as Secret(variable, value): written ${variable}
    status: str  # as the API reports it (Failed included)
    notes: tuple[str, ...] = ()


@dataclass
class Imported:
    """The fleet as read, in the fleet file's terms."""

    fleet: str
    api_url: str
    callbacks: list[ImportedCallback]
    vehicles: dict[str, VehicleConfig]  # what each vehicle holds that the file manages
    vids: dict[str, str]  # every vehicle listed, configured or not
    routes: dict[str, str]  # vin -> callback label, where more than one callback could carry its actions
    notes: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def variables(self) -> dict[str, tuple[str, str]]:
        """variable → (secret value, what it is) for every ``${VAR}`` the file uses."""
        found: dict[str, tuple[str, str]] = {}
        for callback in self.callbacks:
            if isinstance(callback.config.target, Secret):
                found[callback.config.target.variable] = (callback.config.target.value, f"{callback.label}: target")
            for a in callback.config.attributes:
                if isinstance(a.value, Secret):
                    found[a.value.variable] = (a.value.value, f"{callback.label}: {a.kind.lower()} {a.key}")
        return found


def read(api: FleetApi, fleet: str, api_url: str, prefixes: Sequence[str]) -> Imported:
    """Read the fleet from the API: callbacks, vehicles (those of ``prefixes``), their status."""
    path = f"/fleets/{fleet}"
    before = api.calls
    callbacks = _callbacks(list(api.pages(f"{path}/remote/callbacks", "callbacks")))
    vids = observe.list_vehicles(api, path, prefixes)
    statuses = observe.read_statuses(api, path, set(vids), vids) if vids else {}
    imported = Imported(fleet, api_url, callbacks.kept, {}, vids, {}, callbacks.notes)
    for vin in sorted(vids):
        doc = statuses.get(vin, (None, None))[1]
        config = _vehicle(doc) if doc is not None else VehicleConfig()
        if doc is None:
            imported.notes.append(f"{vin}: the API gave no status; nothing of it is managed")
        imported.vehicles[vin] = config
    _route(imported)
    imported.requests = api.calls - before
    return imported


# callbacks


@dataclass
class _Callbacks:
    kept: list[ImportedCallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _callbacks(items: list[dict[str, Any]]) -> _Callbacks:
    result = _Callbacks()
    labels: set[str] = set()
    variables: set[str] = set()
    for number, item in enumerate(items, 1):
        subscribe = item.get("subscribe") or {}
        webhook = (subscribe.get("callback") or {}).get("webhook") or {}
        label, note = _label(subscribe.get("label"), webhook.get("name"), number, labels)
        labels.add(label)
        types = [t for t in subscribe.get("remoteTypes") or [] if t in spec.REMOTE_TYPES]
        unknown = [t for t in subscribe.get("remoteTypes") or [] if t not in spec.REMOTE_TYPES]
        if not types:
            result.notes.append(f"callback {item.get('id')} subscribes to no remote type reconciler knows: left out")
            continue
        notes = [note] if note else []
        if unknown:
            notes.append(f"remote types {', '.join(map(str, unknown))} left out: reconciler does not know them")
        status = str(item.get("status", spec.CALLBACK_RUNNING))
        if status not in spec.CALLBACK_STATUSES:
            notes.append(f"the API reports it {status}; the file says Running, which is how reconciler reads it")
        config = observe.callback_from_api(label, {**subscribe, "remoteTypes": types}, status, None, b"")
        config = _with_variables(config, label, variables)
        result.kept.append(ImportedCallback(label, str(item["id"]), config, status, tuple(notes)))
    return result


def _label(given: Any, name: Any, number: int, taken: set[str]) -> tuple[str, str]:
    """The callback's label in the file, and a note when it is not the API's own."""
    if isinstance(given, str) and _LABEL.match(given) and given not in taken:
        return given, ""
    base = _slug(str(given)) if isinstance(given, str) and given else _slug(str(name or "")) or f"callback-{number}"
    label = base
    suffix = 2
    while label in taken:
        label = f"{base}-{suffix}"
        suffix += 1
    if isinstance(given, str) and given:
        return label, f"labelled {given!r} in the API, which is not a usable label (or is used twice): {label!r} here"
    return label, f"no label in the API: {label!r} here, from its name {str(name or '')!r}"


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-._")[:64]
    return slug if slug and slug[0].isalnum() else ""


def _with_variables(config: Callback, label: str, taken: set[str]) -> Callback:
    """``config`` with every value that must not be written in clear made a ``${VAR}`` secret."""

    def secret(value: Value, what: str) -> Value:
        if not isinstance(value, str):
            return value
        name = _variable(label, what, taken)
        taken.add(name)
        return Secret(name, value)

    target = config.target
    if isinstance(target, str) and _target_is_secret(target):
        target = secret(target, "target")
    attributes = []
    for attribute in config.attributes:
        value = attribute.value
        api_variable = isinstance(value, str) and value.startswith("$") and value[1:] in spec.ATTRIBUTE_VARIABLES
        # Any other $ is written $$ (a literal $), so a value such as $tag or ${X} reads back as itself.
        if isinstance(value, str) and not api_variable and SECRET_KEY.search(attribute.key):
            value = secret(value, attribute.key)
        attributes.append(replace(attribute, value=value))
    return replace(config, target=target, attributes=tuple(attributes))


def _target_is_secret(url: str) -> bool:
    """A target URL carrying credentials (userinfo, a token in its query) is a secret."""
    parts = urlsplit(url)
    return bool(parts.username or parts.password) or any(SECRET_KEY.search(k) for k, _ in parse_qsl(parts.query))


def _variable(label: str, what: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Z0-9]+", "_", f"{label}_{what}".upper()).strip("_")
    if not base or base[0].isdigit():
        base = f"CB_{base}"
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


# vehicles


def _vehicle(doc: dict[str, Any]) -> VehicleConfig:
    """What the status says the vehicle holds, as the file can write it (immobilization is not reported)."""
    seen = status_doc.vehicle_config(doc)
    return VehicleConfig(**{part.field: _writable(part, value) for part, value in parts.managed(seen)})


def _writable(part: parts.Part, value: Any) -> Any:
    """What of a part's reported value the file can hold and plan nothing for."""
    if part.programs:
        return _programs(value, charging=part.kind == parts.Kind.CHARGE_PROGRAMS)
    if part.kind == parts.Kind.PREFERENCES:
        level = value.level if value.level in spec.CHARGING_LEVELS else None
        kind = value.type if value.type in spec.CHARGING_TYPES else None
        return ChargingPreferences(level, kind) if level or kind else None
    return True if value else None  # a flag set is worth saying (a stolen vehicle); one clear is not


def _programs(programs: Mapping[int, Any] | None, *, charging: bool = False) -> Any:
    """Programs the file can hold: slots 1 to 4, days known (else every day: what was not said is no drift)."""
    if not programs:
        return None
    kept = {}
    for slot, program in programs.items():
        if slot not in spec.SLOTS or (charging and program.start == program.end):
            continue
        kept[slot] = program if program.days else replace(program, days=spec.DAYS)
    return kept or None


def _route(imported: Imported) -> None:
    """Leave out what no callback can carry; name the callback where several could."""
    carriers: dict[str, list[str]] = {}
    for callback in imported.callbacks:
        for remote_type in callback.config.remote_types:
            carriers.setdefault(remote_type, []).append(callback.label)
    dropped: dict[str, int] = {}
    for vin, config in list(imported.vehicles.items()):
        for part, _ in list(parts.managed(config)):
            if part.remote_type not in carriers:
                config = part.into(config, None)
                dropped[part.remote_type] = dropped.get(part.remote_type, 0) + 1
        imported.vehicles[vin] = config
        needed = {part.remote_type for part, _ in parts.managed(config)}
        if any(len(carriers[t]) > 1 for t in needed):
            # The vehicle's callback must carry each type it needs that several could.
            choices = [c.label for c in imported.callbacks if needed <= set(c.config.remote_types)]
            if choices:
                imported.routes[vin] = choices[0]
    for remote_type, count in sorted(dropped.items()):
        imported.notes.append(
            f"{count} vehicle(s) hold what only a {remote_type} action can set, and no callback subscribes "
            f"to {remote_type}: left out (add such a callback to manage it)"
        )


# the self-check and what the state records


def self_check(imported: Imported, desired: Desired, key: bytes) -> Recorded:
    """The state import records; ``ReconcilerError`` unless ``desired`` plans no change against it."""
    recorded = recorded_state(imported, desired, key)
    observed = Observed(
        callbacks={
            cb.label: ObservedCallback(cb.id, replace(seal_callback(cb.config, key), status=_status(cb.status)))
            for cb in imported.callbacks
        },
        vehicles={vin: ObservedVehicle(vin, imported.vids.get(vin), c) for vin, c in imported.vehicles.items()},
    )
    result = planner.plan(desired, recorded, observed)
    if result.changes or result.drift:
        first = (result.changes or result.drift)[0]
        raise ReconcilerError(
            f"import could not write a file that plans no change ({first.address} would still change); "
            "nothing was written. This is a bug: please report it with the address"
        )
    return recorded


def recorded_state(imported: Imported, desired: Desired, key: bytes) -> Recorded:
    """What the state holds after import: every callback and vehicle as applied."""
    callbacks = {
        cb.label: RecordedCallback(
            cb.label, cb.id, replace(seal_callback(desired.callbacks[cb.label], key), status=_status(cb.status))
        )
        for cb in imported.callbacks
    }
    vehicles = {
        vin: RecordedVehicle(vin, vid, desired.vehicles[vin].config if vin in desired.vehicles else VehicleConfig())
        for vin, vid in imported.vids.items()
    }
    return Recorded(lineage="", fingerprint_key=key, callbacks=callbacks, vehicles=vehicles)


def _status(status: str) -> str:
    return status if status in spec.CALLBACK_STATUSES else spec.CALLBACK_RUNNING


# the file


def fleet_text(imported: Imported, now: datetime) -> tuple[str, profiles.Factoring]:
    """The fleet file's text, and how its vehicles were factored into profiles."""
    configured = {vin: c for vin, c in imported.vehicles.items() if c != VehicleConfig()}
    factoring = profiles.factor(configured)
    variables = imported.variables
    header = [
        f"Imported by reconciler import on {now.isoformat(timespec='seconds')} from",
        f"{imported.api_url} (fleet {imported.fleet}): {count(len(imported.callbacks), 'callback')}, "
        f"{count(len(configured), 'configured vehicle')}, {count(len(factoring.profiles), 'profile')}.",
    ]
    if len(configured) < len(imported.vids):
        header.append(
            f"{len(imported.vids) - len(configured):,} more vehicle(s) hold nothing reconciler manages: not listed."
        )
    if variables:
        header.append("Secrets are read from the environment; set before plan or apply:")
        header += [f"  {name}  ({what})" for name, (_, what) in sorted(variables.items())]
    header.append("Immobilization is not reported by the API: it is left out (not managed).")
    header += [f"Note: {note}" for note in imported.notes]
    text = writer.render(
        header=header,
        fleet=imported.fleet,
        api_url=imported.api_url,
        callbacks=[(cb.config, list(cb.notes)) for cb in imported.callbacks],
        factoring=factoring,
        routes=imported.routes,
    )
    return text, factoring


def read_back(text: str, name: str, imported: Imported, env: Mapping[str, str]) -> Desired:
    """The file as plan and apply will read it (secrets from the environment they will have)."""
    secrets = {name: value for name, (value, _) in imported.variables.items()}
    try:
        return loader.parse(text, name, {**env, **secrets, "RECONCILER_FLEET": imported.fleet})
    except ConfigError as exc:
        raise ReconcilerError(
            f"import made a file reconciler refuses; nothing was written. This is a bug: please report it.\n{exc}"
        ) from exc


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
