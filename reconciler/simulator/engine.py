"""The simulated fleet: vehicles, callbacks and remote actions, and how actions play out.

All state changes go through ``Engine`` under one lock. Time comes from an
injected clock: an action moves Accepted → (WakingUpVehicle) → SentToVehicle →
Success / AlreadyDone / Failed, one step per ``latency`` seconds, whenever the
engine is asked anything after that time has come (``tick``). Every step is
an event for the action's callback.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import spec, validation
from .clock import Clock, iso
from .validation import Invalid

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


class NotFound(LookupError):
    """No such fleet, vehicle, callback or action (404)."""


class Refused(ValueError):
    """The request is well formed but cannot be done now (400)."""


@dataclass
class Vehicle:
    vid: str
    vin: str
    motorization: str = "Electric"  # Electric, Hybrid or Thermic: a thermal car has no remote charging
    air_slots: int = 4  # the most preconditioning programs it holds (onboard capabilities)
    charge_slots: int = 4
    charge_level: bool = True  # takes a charging level preference
    charge_type: bool = True
    asleep: bool = False  # asleep now: the next message wakes it, at the cost of one wake-up
    sleeps: bool = False  # falls asleep again ``awake_for`` seconds after its last contact
    awake_until: float = 0.0
    wakeup_budget: int = 20  # wake-ups a calendar month (UTC) before TooManyWakeUpsOverMonth
    wakeups_left: int = 20  # left this month
    wakeups_used: int = 0  # used this month
    wakeup_month: str = ""  # the month the two counts are for (YYYY-MM)
    air: dict[str, dict[str, Any]] = field(default_factory=dict)  # slot (as text) -> program
    charge: dict[str, dict[str, Any]] = field(default_factory=dict)
    preferences: dict[str, str] = field(default_factory=dict)
    immobilized: bool = False
    stolen: bool = False
    stolen_since: float = 0.0
    locked: bool = True
    fail_cause: str = ""  # every action on this vehicle fails with this cause
    quirks: list[str] = field(default_factory=list)
    updated_at: float = 0.0
    # What the vehicle held at each change of what its status reports: [time, {air, charge, …}].
    # With a report lag, the status shows what it held that long ago (a car that reports late).
    reports: list[list[Any]] = field(default_factory=list)


REPORTED = ("air", "charge", "preferences", "stolen", "stolen_since")  # what a status document shows


@dataclass
class Callback:
    id: str
    subscribe: dict[str, Any]
    status: str = "Running"
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class Action:
    id: str
    vid: str
    cbid: str
    remote_type: str
    remote: dict[str, Any]
    status: str = spec.ACCEPTED
    failure_cause: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    due: float = 0.0
    blocked_by: str = ""  # another action of the same type in flight when this one came
    history: list[tuple[str, float]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status in spec.FINAL_STATUSES


Event = tuple[Callback, Action, Vehicle]  # a status change to notify
EventSink = Callable[[Callback, dict[str, Any]], None]


MIXED = ("Electric", "Electric", "Hybrid", "Electric", "Thermic")  # a mixed fleet, in turn


def generated_vins(count: int, seed: int = 1) -> list[str]:
    """``count`` VINs, the same ones for the same seed."""
    rng = random.Random(seed)
    prefixes = ("VF3", "VF7", "VR3", "W0V", "VXK")
    return [
        prefixes[i % len(prefixes)] + "".join(rng.choice(VIN_ALPHABET) for _ in range(8)) + f"{i:06d}"
        for i in range(count)
    ]


def vid_of(vin: str) -> str:
    """The opaque vehicle id the API uses instead of the VIN."""
    return hashlib.sha256(f"vid:{vin}".encode()).hexdigest()[:48]


class Engine:
    """One fleet's remote API state."""

    def __init__(
        self,
        fleet_id: str,
        clock: Clock,
        *,
        vins: Iterable[str] = (),
        directory: Path | None = None,
        latency: float = 0.2,
        fail_rate: float = 0.0,
        seed: int = 0,
        sleeping: bool = False,
        awake_for: float = 180.0,
        wakeup_budget: int = 20,
        report_lag: float = 0.0,
    ) -> None:
        self.fleet_id = fleet_id
        self.clock = clock
        self.latency = latency
        self.report_lag = report_lag  # seconds by which status documents lag behind the vehicles
        self.sleeping = sleeping  # vehicles added from now on sleep between contacts
        self.awake_for = awake_for
        self.wakeup_budget = wakeup_budget
        self.fail_rate = fail_rate
        self.lock = threading.RLock()
        self.vehicles: dict[str, Vehicle] = {}
        self.callbacks: dict[str, Callback] = {}
        self.actions: dict[str, Action] = {}
        self._active: set[str] = set()
        self._rng = random.Random(seed)
        self._dirty: set[tuple[str, str]] = set()
        self.sinks: list[EventSink] = []
        self._db = _open(directory) if directory else None
        if self._db is not None:
            self._load()
        for vehicle in self.vehicles.values() if sleeping else ():  # a fleet kept from before sleeps too
            if not vehicle.sleeps:
                vehicle.sleeps = True
                self._touch("vehicle", vehicle.vid)
        for vin in vins:
            self.add_vehicle(vin)

    # vehicles

    def add_vehicle(self, vin: str, motorization: str = "Electric") -> Vehicle:
        with self.lock:
            vid = vid_of(vin)
            if vid not in self.vehicles:
                vehicle = Vehicle(vid, vin, motorization, updated_at=self.clock.now())
                self._reported(vehicle, vehicle.updated_at)
                vehicle.asleep = vehicle.sleeps = self.sleeping
                vehicle.wakeup_budget = vehicle.wakeups_left = self.wakeup_budget
                if motorization == "Hybrid":  # a plug-in hybrid: fewer programs, no charging type
                    vehicle.charge_slots, vehicle.charge_type = 2, False
                self.vehicles[vid] = vehicle
                self._touch("vehicle", vid)
                self._flush()
            return self.vehicles[vid]

    def remove_vehicle(self, vin: str) -> None:
        """The vehicle leaves the fleet (sold, moved to another fleet)."""
        with self.lock:
            vehicle = self.by_vin(vin)
            del self.vehicles[vehicle.vid]
            self._touch("vehicle", vehicle.vid)
            self._flush()

    def by_vin(self, vin: str) -> Vehicle:
        with self.lock:
            vehicle = self.vehicles.get(vid_of(vin))
            if vehicle is None or vehicle.vin != vin:
                raise NotFound(f"no vehicle with VIN {vin} in fleet {self.fleet_id}")
            return vehicle

    def vehicle(self, vid: str) -> Vehicle:
        with self.lock:
            self.tick()
            if vid not in self.vehicles:
                raise NotFound(f"vehicle {vid} is not in fleet {self.fleet_id}")
            return self.vehicles[vid]

    def report(self, vehicle: Vehicle) -> tuple[Vehicle, float]:
        """What the vehicle's status reports now, and when the vehicle reported it.

        Without a report lag, what it holds, reported now; with one, what it held
        ``report_lag`` seconds ago, reported then.
        """
        with self.lock:
            now = self.clock.now()
            if not self.report_lag:
                return vehicle, now
            at = now - self.report_lag
            shown = next((state for when, state in reversed(vehicle.reports) if when <= at), None)
            if shown is None:
                return vehicle, at
            return Vehicle(**{**asdict(vehicle), **shown}), at

    def _reported(self, vehicle: Vehicle, at: float) -> None:
        """Keep what the vehicle holds from ``at`` on, for late reports (only those a report may still show)."""
        state = json.loads(json.dumps({name: getattr(vehicle, name) for name in REPORTED}))
        horizon = at - self.report_lag
        kept = [r for r in vehicle.reports if r[0] >= horizon]
        older = [r for r in vehicle.reports if r[0] < horizon]
        vehicle.reports = older[-1:] + kept + [[at, state]]

    def list_vehicles(self, vin_prefix: str = "") -> list[Vehicle]:
        with self.lock:
            self.tick()
            found = [v for v in self.vehicles.values() if v.vin.startswith(vin_prefix)]
            return sorted(found, key=lambda v: v.vin)

    # callbacks

    def list_callbacks(self, remote_type: str = "") -> list[Callback]:
        with self.lock:
            self.tick()
            found = list(self.callbacks.values())
            if remote_type:
                found = [c for c in found if remote_type in c.subscribe.get("remoteTypes", [])]
            return sorted(found, key=lambda c: (c.created_at, c.id))

    def callback(self, cbid: str) -> Callback:
        with self.lock:
            if cbid not in self.callbacks:
                raise NotFound(f"callback {cbid} does not exist")
            return self.callbacks[cbid]

    def create_callback(self, body: Any) -> Callback:
        validation.callback_subscribe(body)
        with self.lock:
            now = self.clock.now()
            callback = Callback(uuid.uuid4().hex, body, "Running", now, now)
            self.callbacks[callback.id] = callback
            self._touch("callback", callback.id)
            self._flush()
            return callback

    def update_callback(self, cbid: str, body: Any) -> Callback:
        validation.callback_subscribe(body)
        with self.lock:
            callback = self.callback(cbid)
            callback.subscribe = body
            callback.updated_at = self.clock.now()
            self._touch("callback", cbid)
            self._flush()
            return callback

    def set_callback_status(self, cbid: str, body: Any) -> Callback:
        status = validation.callback_status(body)
        with self.lock:
            callback = self.callback(cbid)
            callback.status = status
            callback.updated_at = self.clock.now()
            self._touch("callback", cbid)
            self._flush()
            return callback

    def delete_callback(self, cbid: str) -> None:
        with self.lock:
            self.tick()
            self.callback(cbid)
            pending = [a.id for a in self.actions.values() if a.cbid == cbid and not a.final]
            if pending:
                raise Refused(f"callback {cbid} has {len(pending)} pending remote action(s); delete it once they end")
            del self.callbacks[cbid]
            self._touch("callback", cbid)
            self._flush()

    # remote actions

    def post_remote(self, vid: str, cbid: str, body: Any) -> Action:
        remote_type = validation.remote(body)
        with self.lock:
            self.tick()
            vehicle = self.vehicle(vid)
            callback = self.callback(cbid)
            if remote_type not in callback.subscribe.get("remoteTypes", []):
                raise Invalid(f"callback {cbid} does not subscribe to {remote_type}")
            _check_capable(vehicle, body)
            now = self.clock.now()
            busy = [
                a.id for a in self.actions.values() if a.vid == vid and a.remote_type == remote_type and not a.final
            ]
            action = Action(
                uuid.uuid4().hex,
                vehicle.vid,
                cbid,
                remote_type,
                body,
                spec.ACCEPTED,
                "",
                now,
                now,
                now + self.latency,
                busy[0] if busy else "",
                [(spec.ACCEPTED, now)],
            )
            self.actions[action.id] = action
            self._active.add(action.id)
            self._touch("action", action.id)
            self._emit(action)
            self._flush()
            return action

    def list_actions(self, vid: str, cbid: str) -> list[Action]:
        with self.lock:
            self.tick()
            self.vehicle(vid)
            self.callback(cbid)
            found = [a for a in self.actions.values() if a.vid == vid and a.cbid == cbid]
            return sorted(found, key=lambda a: (a.created_at, a.id))

    def action(self, vid: str, cbid: str, rid: str) -> Action:
        with self.lock:
            self.tick()
            action = self.actions.get(rid)
            if action is None or action.vid != vid or action.cbid != cbid:
                raise NotFound(f"remote action {rid} does not exist for this vehicle and callback")
            return action

    # the lifecycle

    def tick(self) -> None:
        """Move every action whose next step is due."""
        with self.lock:
            now = self.clock.now()
            for rid in sorted(self._active, key=lambda r: self.actions[r].due):
                action = self.actions[rid]
                while not action.final and action.due <= now:
                    self._step(action)
                if action.final:
                    self._active.discard(rid)
            self._flush()

    def _step(self, action: Action) -> None:
        vehicle = self.vehicles[action.vid]
        at = action.due
        if action.status == spec.ACCEPTED:
            self._roll_month(vehicle, at)
            if action.blocked_by:
                self._finish(action, spec.FAILED, "SameActionInProgress", at)
            elif self._asleep(vehicle, at) and vehicle.wakeups_left <= 0:
                self._finish(action, spec.FAILED, "TooManyWakeUpsOverMonth", at)
            elif self._asleep(vehicle, at):
                vehicle.wakeups_left -= 1
                vehicle.wakeups_used += 1
                vehicle.asleep = False  # waking: later messages find it awake
                self._contact(vehicle, at + self.latency)
                self._move(action, spec.WAKING_UP, at)
            else:
                self._contact(vehicle, at)
                self._move(action, spec.SENT, at)
        elif action.status == spec.WAKING_UP:
            self._contact(vehicle, at)
            self._move(action, spec.SENT, at)
        elif vehicle.fail_cause:
            self._finish(action, spec.FAILED, vehicle.fail_cause, at)
        elif self.fail_rate and self._rng.random() < self.fail_rate:
            self._finish(action, spec.FAILED, "VehicleConnectionTimeout", at)
        else:
            changed = _apply(vehicle, action.remote, at)
            if changed:
                self._reported(vehicle, at)
            self._contact(vehicle, at)
            self._finish(action, spec.SUCCESS if changed else spec.ALREADY_DONE, "", at)

    def _asleep(self, vehicle: Vehicle, at: float) -> bool:
        if vehicle.sleeps and not vehicle.asleep and at >= vehicle.awake_until:
            vehicle.asleep = True
            self._touch("vehicle", vehicle.vid)
        return vehicle.asleep

    def _contact(self, vehicle: Vehicle, at: float) -> None:
        """The vehicle talked to the server at ``at``: it stays awake ``awake_for`` after."""
        vehicle.awake_until = max(vehicle.awake_until, at + self.awake_for)
        self._touch("vehicle", vehicle.vid)

    def _roll_month(self, vehicle: Vehicle, at: float) -> None:
        month = iso(at)[:7]
        if vehicle.wakeup_month and vehicle.wakeup_month != month:  # a new month: a full budget
            vehicle.wakeups_left, vehicle.wakeups_used = vehicle.wakeup_budget, 0
        if vehicle.wakeup_month != month:
            vehicle.wakeup_month = month
            self._touch("vehicle", vehicle.vid)

    def wakeups(self, vin: str) -> int:
        """How many times the vehicle was woken up this month (what tests look at)."""
        with self.lock:
            self.tick()
            vehicle = self.by_vin(vin)
            return vehicle.wakeups_used if vehicle.wakeup_month == iso(self.clock.now())[:7] else 0

    def _move(self, action: Action, status: str, at: float) -> None:
        action.status = status
        action.updated_at = at
        action.due = at + self.latency
        action.history.append((status, at))
        self._touch("action", action.id)
        self._emit(action)

    def _finish(self, action: Action, status: str, cause: str, at: float) -> None:
        action.failure_cause = cause
        self._move(action, status, at)

    def _emit(self, action: Action) -> None:
        callback = self.callbacks.get(action.cbid)
        if callback is None or callback.status != "Running":
            return  # a paused callback posts nothing
        vehicle = self.vehicles[action.vid]
        status: dict[str, Any] = {"type": "Done" if action.final else "Pending", "status": action.status}
        if action.failure_cause:
            status["failureCause"] = action.failure_cause
        event = {
            "remoteActionId": action.id,
            "vin": vehicle.vin,
            "eventDate": iso(action.updated_at),
            "remoteType": action.remote_type,
            "eventStatus": status,
        }
        for sink in self.sinks:
            sink(callback, event)

    # out-of-band changes, for tests and the sandbox

    def drift(self, vin: str, slot: int, program: dict[str, Any] | None, *, charging: bool = False) -> None:
        """Change a program on the vehicle as a driver would in the car's app."""
        with self.lock:
            vehicle = self.by_vin(vin)
            programs = vehicle.charge if charging else vehicle.air
            if program is None:
                programs.pop(str(slot), None)
            else:
                programs[str(slot)] = {"slot": slot, **program}
            vehicle.updated_at = self.clock.now()
            self._reported(vehicle, vehicle.updated_at)
            self._touch("vehicle", vehicle.vid)
            self._flush()

    def configure_vehicle(self, vin: str, **changes: Any) -> Vehicle:
        """Set ``asleep``, ``sleeps``, ``wakeups_left``, ``fail_cause``, ``quirks`` … on a vehicle.

        Putting a vehicle to sleep (``asleep=True``) ends its awake time now.
        """
        with self.lock:
            vehicle = self.by_vin(vin)
            for name, value in changes.items():
                if not hasattr(vehicle, name):
                    raise AttributeError(name)
                setattr(vehicle, name, value)
            if changes.get("asleep"):
                vehicle.awake_until = 0.0
            if "wakeup_budget" in changes and "wakeups_left" not in changes:
                vehicle.wakeups_left = max(0, vehicle.wakeup_budget - vehicle.wakeups_used)
            self._touch("vehicle", vehicle.vid)
            self._flush()
            return vehicle

    # persistence

    def _touch(self, kind: str, key: str) -> None:
        self._dirty.add((kind, key))

    def _flush(self) -> None:
        if self._db is None or not self._dirty:
            self._dirty.clear()
            return
        tables: dict[str, dict[str, Any]] = {
            "vehicle": self.vehicles,
            "callback": self.callbacks,
            "action": self.actions,
        }
        with self._db:
            for kind, key in self._dirty:
                item = tables[kind].get(key)
                if item is None:
                    self._db.execute("DELETE FROM items WHERE kind = ? AND key = ?", (kind, key))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO items (kind, key, doc) VALUES (?, ?, ?)",
                        (kind, key, json.dumps(asdict(item))),
                    )
        self._dirty.clear()

    def _load(self) -> None:
        assert self._db is not None
        for kind, doc in self._db.execute("SELECT kind, doc FROM items ORDER BY rowid"):
            data = json.loads(doc)
            if kind == "vehicle":
                self.vehicles[data["vid"]] = Vehicle(**data)
            elif kind == "callback":
                self.callbacks[data["id"]] = Callback(**data)
            else:
                data["history"] = [tuple(h) for h in data["history"]]
                action = Action(**data)
                self.actions[action.id] = action
                if not action.final:
                    self._active.add(action.id)

    def close(self) -> None:
        with self.lock:
            self._flush()
            if self._db is not None:
                self._db.close()
                self._db = None


def _open(directory: Path) -> sqlite3.Connection:
    directory.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(directory / "simulator.db", check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS items (kind TEXT, key TEXT, doc TEXT, PRIMARY KEY (kind, key))")
    return db


def _check_capable(vehicle: Vehicle, remote: dict[str, Any]) -> None:
    """Refuse what the vehicle cannot take, as its onboard capabilities say."""
    if "charging" in remote:
        charging = remote["charging"]
        if vehicle.motorization == "Thermic":
            raise Invalid(f"vehicle {vehicle.vid} has no remote charging (motorization Thermic)")
        programs = (charging.get("schedule") or {}).get("programs") or []
        if any(int(p.get("slot", 0)) > vehicle.charge_slots for p in programs):
            raise Invalid(f"vehicle {vehicle.vid} holds {vehicle.charge_slots} charging programs")
        preferences = charging.get("preferences") or {}
        if ("level" in preferences and not vehicle.charge_level) or ("type" in preferences and not vehicle.charge_type):
            raise Invalid(f"vehicle {vehicle.vid} does not take that charging preference")
    if "preconditioning" in remote:
        programs = remote["preconditioning"]["airConditioning"].get("programs") or []
        if any(int(p.get("slot", 0)) > vehicle.air_slots for p in programs):
            raise Invalid(f"vehicle {vehicle.vid} holds {vehicle.air_slots} preconditioning programs")


def _apply(vehicle: Vehicle, remote: dict[str, Any], at: float) -> bool:
    """Carry out a remote action on the vehicle; False when it changed nothing (AlreadyDone)."""
    before = json.dumps(asdict(vehicle), sort_keys=True)
    if "preconditioning" in remote:
        for program in remote["preconditioning"]["airConditioning"].get("programs", []):
            slot = str(program["slot"])
            if program.get("actionsType", "Set") == "Delete":
                vehicle.air.pop(slot, None)
            else:
                kept = {k: program[k] for k in ("slot", "enabled", "start", "occurence") if k in program}
                vehicle.air[slot] = {**kept, "recurrence": program.get("recurrence", "Daily")}
    elif "charging" in remote:
        charging = remote["charging"]
        for program in charging.get("schedule", {}).get("programs", []):
            vehicle.charge[str(program["slot"])] = {"enabled": True, **program}
        vehicle.preferences.update(charging.get("preferences", {}))
        if charging.get("immediate") is not None or "nextDelayedTime" in charging.get("schedule", {}):
            return True
    elif "immobilization" in remote:
        vehicle.immobilized = remote["immobilization"]["activate"]
    elif "stolen" in remote:
        stolen = remote["stolen"]
        if "stolen" in stolen:
            if stolen["stolen"] and not vehicle.stolen:
                vehicle.stolen_since = at
            vehicle.stolen = stolen["stolen"]
        if "immobilization" in stolen:
            vehicle.immobilized = stolen["immobilization"]["activate"]
        if "trackingPeriod" in stolen:
            return True
    elif "door" in remote:
        vehicle.locked = remote["door"]["state"] == "Locked"
    else:
        return True  # horn, lights, wake-up, navigation: nothing stays, always done anew
    changed = json.dumps(asdict(vehicle), sort_keys=True) != before
    if changed:
        vehicle.updated_at = at
    return changed
