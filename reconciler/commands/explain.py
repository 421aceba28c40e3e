"""``reconciler explain VIN``: why a vehicle is (or is not) what the fleet file says, section by section.

For each section: the desired value and where it comes from (group, profile,
vehicle entry), what the state recorded and when, what the vehicle reports
(with refresh), what the next apply would do with it (a change, drift, held and
why, cannot apply), its pending actions and their age, the last statuses and
failure causes. For the vehicle: its group, backoffs, the month's wake-ups and
capabilities. Nothing is written; refresh reads a handful of API resources for
this one vehicle, whatever the fleet's size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, TextIO

from ..core import addresses, groups, parts, rollout, spec
from ..core.changes import Plan
from ..core.model import Capabilities, Desired, DesiredVehicle, Observed, Recorded, VehicleConfig
from ..core.wakeups import asleep, month_of, this_month
from ..errors import AuthError, ReconcilerError, TLSError
from ..fleetfile import loader
from ..run import gcpause, rollouts
from ..state.backends import open_store, state_url
from ..state.base import PENDING_JOURNAL_STATUSES, JournalEntry, StateStore
from .shell import Shell

_RECORDING_EVENTS = ("Success", "AlreadyDone", "adopted")  # history events that mean "recorded as in place"
MAX_EVENTS = 10  # statuses shown per section (the last ones)


def run(
    shell: Shell,
    vin: str,
    fleet_file: str,
    *,
    refresh: bool,
    fmt: str,
) -> int:
    if len(vin) != spec.VIN_LENGTH or not set(vin) <= spec.VIN_ALPHABET:
        raise ReconcilerError(f"{vin!r} is not a VIN: 17 capital letters and digits, never I, O or Q")
    with gcpause.paused():  # as lean as plan: the file, the state and the whole fleet's plan are big and acyclic
        desired = loader.read(fleet_file, shell.env)
    store = open_store(state_url(fleet_file, shell.env), readonly=True, fleet=desired.fleet)
    try:
        with gcpause.paused():
            recorded = store.read()
        group = groups.first_taker(desired.groups, vin)
        if vin not in desired.vehicles and group is None and vin not in recorded.vehicles:
            raise ReconcilerError(
                f"{vin} is not in {desired.source}: no vehicles: entry names it and no group takes it"
                + (" (groups take the vehicles the fleet lists)" if desired.groups else "")
            )
        now = shell.clock()
        observed, refresh_error = _refresh(desired, recorded, vin, fleet_file, shell.env) if refresh else (None, "")
        listing = observed.listing if observed is not None and observed.listing is not None else recorded.listing
        if vin not in desired.vehicles and vin not in recorded.vehicles and listing is not None and vin not in listing:
            # A group would take it, but the fleet does not hold it: there is nothing to explain.
            raise ReconcilerError(
                f"{vin} is not in fleet {desired.fleet}: the API does not list it"
                + ("" if observed is not None else " (as last listed; refresh to list it again)")
                + f", no vehicles: entry in {desired.source} names it and the state records nothing of it"
            )
        target = addresses.vehicle_prefix(vin)
        entries = rollouts.wave_entries(store, recorded.rollout)
        with gcpause.paused():  # the waves are cut from the whole fleet's changes: it is planned whole
            result = rollout.schedule(desired, recorded, observed, entries, now, targets=[target]).plan
        document = _explain(vin, desired, recorded, observed, result, store, now)
    finally:
        store.close()
    document["refresh"] = {"requested": refresh, "ok": refresh and not refresh_error, "error": refresh_error or None}
    if refresh_error:
        shell.stderr.write(f"warning: refresh failed ({refresh_error}); explained from the recorded state only\n")
    if fmt == "json":
        shell.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        write_text(document, shell.stdout)
    return 0


def _refresh(
    desired: Desired, recorded: Recorded, vin: str, fleet_file: str, env: Mapping[str, str]
) -> tuple[Observed | None, str]:
    from ..api import observe
    from ..run import connection

    try:
        with connection.connect(desired, state_url(fleet_file, env), fleet_file, env) as api:
            return observe.refresh_vehicle(api, desired, recorded, vin), ""
    except (AuthError, TLSError):
        raise
    except ReconcilerError as exc:
        return None, str(exc)


def _explain(
    vin: str,
    desired: Desired,
    recorded: Recorded,
    observed: Observed | None,
    plan: Plan,
    store: StateStore,
    now: datetime,
) -> dict[str, Any]:
    listing = observed.listing if observed is not None and observed.listing is not None else recorded.listing
    wanted = groups.members(desired, listing).vehicles.get(vin) or desired.vehicles.get(vin)
    group = groups.first_taker(desired.groups, vin)
    if wanted is None and group is not None:  # the group takes it once the fleet lists it
        wanted = DesiredVehicle(vin, group.config, group.routes, group.sources, explicit=False)
    had = recorded.vehicles.get(vin)
    seen = observed.vehicles.get(vin) if observed is not None else None
    history = store.history(addresses.vehicle_prefix(vin))
    sections = []
    for part in parts.PARTS:
        address = addresses.vehicle(vin, part.name)
        journal = store.journal(address=address)
        sections.append(
            _section(
                address,
                part,
                wanted,
                had.config if had else None,
                seen.config if seen else None,
                plan,
                journal,
                {e.key: store.events(e.key) for e in journal[-3:]},
                [row for row in history if row[2] == address],
                now,
            )
        )
    caps = (observed.capabilities.get(vin) if observed else None) or recorded.capabilities.get(vin)
    return {
        "vin": vin,
        "vid": (seen.vid if seen else None) or (had.vid if had else None) or (listing or {}).get(vin),
        "fleet_file": {
            "entry": vin in desired.vehicles,
            "group": group.name if group is not None else None,
            "managed": wanted is not None,
        },
        "listed": None if listing is None else vin in listing,
        "summary": _summary(sections, wanted is not None),
        "sections": sections,
        "backoffs": [
            {"address": b.address, "cause": b.cause, "until": b.until}
            for address, b in sorted(recorded.backoffs.items())
            if address == addresses.vehicle_prefix(vin) or address.startswith(addresses.vehicle_prefix(vin) + ".")
        ],
        "wakeups": _wakeups(desired, store, vin, now),
        "capabilities": _capabilities(caps),
    }


def _section(
    address: str,
    part: parts.Part,
    wanted: DesiredVehicle | None,
    had: VehicleConfig | None,
    seen: VehicleConfig | None,
    plan: Plan,
    journal: list[JournalEntry],
    events: Mapping[str, list[tuple[str, str, str]]],
    history: list[tuple[str, int, str, str, str]],
    now: datetime,
) -> dict[str, Any]:
    desired_value = part.to_json(part.of(wanted.config)) if wanted else None
    source = wanted.sources.get(part.name) if wanted else None
    recorded_value = part.to_json(part.of(had)) if had else None
    observed_value = part.to_json(part.of(seen)) if seen else None
    recorded_at = next((row[0] for row in reversed(history) if row[3] in _RECORDING_EVENTS), None)
    change = next((c for c in plan.changes if c.address == address), None)
    held = next((h for h in plan.held if h.address == address), None)
    cannot = next((c for c in plan.cannot_apply if c.address == address), None)
    drift = [
        {"field": d.field, "recorded": d.recorded, "observed": d.observed} for d in plan.drift if d.address == address
    ]
    pending = [
        {
            "key": e.key,
            "remote_action_id": e.remote_action_id,
            "status": e.status,
            "sent_at": e.created_at,
            "age_seconds": _age(e.created_at, now),
        }
        for e in journal
        if e.status in PENDING_JOURNAL_STATUSES
    ]
    last = journal[-1] if journal else None
    failure = None
    if last is not None and last.status not in PENDING_JOURNAL_STATUSES and last.status not in spec.SUCCESS_STATUSES:
        failure = {"cause": last.failure_cause or last.status, "at": last.created_at, "key": last.key}
    statuses = [
        {"action": key_, "status": status, "cause": cause or None, "at": at}
        for key_, rows in events.items()
        for status, cause, at in rows
    ][-MAX_EVENTS:]
    section: dict[str, Any] = {
        "address": address,
        "desired": desired_value,
        "source": source.to_json() if source is not None and str(source) else None,
        "recorded": recorded_value,
        "recorded_at": recorded_at,
        "observed": observed_value,
        "change": {"action": change.action, "summary": change.summary} if change else None,
        "drift": drift,
        "held": {"kind": held.kind, "reason": held.reason} if held else None,
        "cannot_apply": cannot.reason if cannot else None,
        "pending": pending,
        "last_failure": failure,
        "last_events": statuses,
    }
    section["status"] = _status(section, managed=wanted is not None and desired_value is not None)
    return section


def _status(section: Mapping[str, Any], *, managed: bool) -> str:
    """One word for the section: what a reader most needs to know first."""
    if section["pending"]:
        return "pending"
    if section["held"]:
        return "held"
    if section["last_failure"] and (section["change"] or section["desired"] != section["recorded"]):
        return "failed"
    if section["drift"]:
        return "drifted"
    if section["cannot_apply"]:
        return "cannot apply"
    if section["change"]:
        return "changes planned"
    if not managed:
        return "not managed"
    if section["desired"] != section["recorded"]:
        return "not applied"  # nothing planned: the vehicle is not listed in the fleet (yet)
    return "converged"


def _summary(sections: list[dict[str, Any]], managed: bool) -> str:
    if not managed:
        return "not managed by the fleet file (it was, once: the state still records it)"
    for word in ("pending", "held", "failed", "drifted", "cannot apply", "changes planned", "not applied"):
        if any(s["status"] == word for s in sections):
            return word
    return "converged"


def _age(created_at: str, now: datetime) -> int | None:
    try:
        return max(0, int((now - datetime.fromisoformat(created_at)).total_seconds()))
    except ValueError:
        return None


def _wakeups(desired: Desired, store: StateStore, vin: str, now: datetime) -> dict[str, Any]:
    policy = desired.wakeups
    use = this_month(store.wakeup_use(vin, month_of(now)), now)
    shown: dict[str, Any] = {**use.to_json(), "asleep": asleep(use, now, policy.awake_for) if policy else None}
    if policy is not None:
        shown.update(per_month=policy.per_month, reserve=policy.reserve, budget=policy.budget)
    return shown


def _capabilities(caps: Capabilities | None) -> dict[str, Any] | None:
    if caps is None:
        return None
    return {name: value for name, value in asdict(caps).items() if value is not None}


# text


def write_text(document: Mapping[str, Any], out: TextIO) -> None:
    where = document["fleet_file"]
    origin = ", ".join(
        part
        for part in (
            "a vehicles: entry" if where["entry"] else "",
            f"group {where['group']}" if where["group"] else "",
        )
        if part
    )
    out.write(f"{document['vin']}: {document['summary']}\n")
    out.write(f"  fleet file: {origin or 'not in it'}")
    if document["listed"] is not None:
        out.write("; listed in the fleet" if document["listed"] else "; NOT listed in the fleet by the API")
    else:
        out.write("; the fleet's listing is not known yet (a refresh reads it)")
    out.write(f"; vid {document['vid'] or 'not known yet'}\n")
    refresh = document["refresh"]
    if not refresh["requested"]:
        out.write("  refresh: not asked for (--no-refresh): what the vehicle reports is not shown\n")
    elif not refresh["ok"]:
        out.write(f"  refresh FAILED: {refresh['error']}; explained from the recorded state only\n")
    for section in document["sections"]:
        if section["status"] == "not managed" and section["recorded"] is None:
            continue
        out.write(f"\n{section['address']}: {section['status']}\n")
        source = section["source"]
        if source:
            named = {"group": f"group {source.get('group')}", "vehicle": "vehicle entry"}
            named["profile"] = f"profile {source.get('profile')}"
            out.write("  from:      " + ", ".join(named[k] for k in source) + "\n")
        out.write(f"  desired:   {_short(section['desired'])}\n")
        when = f" (since {section['recorded_at']})" if section["recorded_at"] else ""
        out.write(f"  recorded:  {_short(section['recorded'])}{when}\n")
        if refresh["ok"]:
            out.write(f"  reported:  {_short(section['observed'])}\n")
        for d in section["drift"]:
            out.write(f"  drift:     {d['field']}: recorded {d['recorded']}, now {d['observed']}\n")
        if section["change"]:
            out.write(f"  next apply: {section['change']['action']} — {section['change']['summary']}\n")
        if section["held"]:
            out.write(f"  held ({section['held']['kind']}): {section['held']['reason']}\n")
        if section["cannot_apply"]:
            out.write(f"  cannot apply: {section['cannot_apply']}\n")
        for p in section["pending"]:
            age = f", {p['age_seconds']} s ago" if p["age_seconds"] is not None else ""
            out.write(f"  pending:   {p['remote_action_id'] or p['key']} {p['status']} (sent {p['sent_at']}{age})\n")
        if section["last_failure"]:
            out.write(f"  last failure: {section['last_failure']['cause']} ({section['last_failure']['at']})\n")
        for e in section["last_events"][-3:]:
            cause = f" {e['cause']}" if e["cause"] else ""
            out.write(f"  event:     {e['at']} {e['status']}{cause}\n")
    for b in document["backoffs"]:
        out.write(f"\nbacked off: {b['address']}: {b['cause']} until {b['until']}\n")
    w = document["wakeups"]
    budget = f" of {w['budget']} (perMonth {w['per_month']}, reserve {w['reserve']})" if "budget" in w else ""
    spent = "; the API said none are left" if w["spent"] else ""
    out.write(f"\nwake-ups in {w['month']}: {w['used']}{budget}{spent}")
    out.write(f"; last contact {w['last_contact']}\n" if w["last_contact"] else "\n")
    caps = document["capabilities"]
    if caps:
        out.write("capabilities: " + ", ".join(f"{k} {json.dumps(v)}" for k, v in caps.items()) + "\n")
    else:
        out.write("capabilities: not read yet (plan or apply read them when something is to be sent)\n")


def _short(value: Any) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "…"
