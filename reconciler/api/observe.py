"""Refresh: read what the API reports now into ``Observed`` (DESIGN §6).

The callback list gives each callback's id, body and status; the paged fleet
status (or, where the API refuses it, each vehicle's status, read concurrently
within the rate limits) gives what every managed vehicle holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core import groups, spec
from ..core.model import (
    Attribute,
    BatchNotify,
    Callback,
    Capabilities,
    Desired,
    Observed,
    ObservedCallback,
    ObservedVehicle,
    PendingAction,
    Recorded,
    RetryPolicy,
    Secret,
    Value,
)
from ..core.sensitive import fingerprint, reveal
from ..errors import ApiError, AuthError, NotFoundError, RateLimitedError
from . import capabilities, status_doc
from .client import FleetApi

_KINDS = (spec.ATTRIBUTE_HEADER, spec.ATTRIBUTE_QUERY, spec.ATTRIBUTE_BODY)
# Told how a refresh goes: what it reads ("listing", "status", "capabilities"), how many read, of how many (0: unknown).
Told = Callable[[str, int, int], None]


def quiet(what: str, done: int, total: int) -> None:
    pass


def refresh(
    api: FleetApi, desired: Desired, recorded: Recorded, *, parallelism: int = 8, told: Told = quiet
) -> Observed:
    """What the API reports now for the callbacks and vehicles this fleet file manages."""
    fleet = f"/fleets/{desired.fleet}"
    callbacks = _callbacks(api, desired, recorded)
    listing = list_vehicles(api, fleet, told=told)
    managed = groups.members(desired, listing).vehicles
    vins = (set(managed) | (set(recorded.vehicles) if desired.prune else set())) & set(listing)
    statuses = read_statuses(api, fleet, vins, listing, parallelism, told=told)
    vehicles = {vin: _observed_vehicle(vin, vid, doc) for vin, (vid, doc) in statuses.items()}
    return Observed(callbacks=callbacks, vehicles=vehicles, listing=listing)


def _observed_vehicle(vin: str, vid: str | None, doc: Any) -> ObservedVehicle:
    document = doc if isinstance(doc, dict) else {}
    return ObservedVehicle(vin, vid, status_doc.vehicle_config(document), status_doc.reported_at(document))


def read_actions(api: FleetApi, pending: Iterable[PendingAction], parallelism: int = 8) -> dict[str, tuple[str, str]]:
    """key -> (status, failure cause) of pending actions, as the API reports them now.

    For a read-only plan, which cannot settle them in the state: an action of
    ours that ended is then planned as ended, not as drift. One that cannot be
    read now stays pending.
    """

    def one(action: PendingAction) -> tuple[str, tuple[str, str] | None]:
        try:
            found = api.get(f"{action.path}/{action.remote_action_id}")
        except (NotFoundError, RateLimitedError):
            return action.key, None
        if not isinstance(found, dict) or not isinstance(found.get("status"), str):
            return action.key, None
        return action.key, (found["status"], str(found.get("failureCause") or ""))

    chosen = [a for a in pending if a.remote_action_id and a.path]
    if not chosen:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return {key: seen for key, seen in pool.map(one, chosen) if seen is not None}


def refresh_vehicle(api: FleetApi, desired: Desired, recorded: Recorded, vin: str) -> Observed:
    """What the API reports now for one vehicle (``explain``): a few requests, whatever the fleet's size.

    The listing is the recorded one with this vehicle as the API lists it now.
    """
    fleet = f"/fleets/{desired.fleet}"
    callbacks = _callbacks(api, desired, recorded)
    vid = list_vehicles(api, fleet, [vin]).get(vin)
    listing = {v: i for v, i in (recorded.listing or {}).items() if v != vin}
    if vid is None:
        return Observed(callbacks=callbacks, listing=listing)
    listing[vin] = vid
    status = api.get(f"{fleet}/vehicles/{vid}/status")
    vehicle = _observed_vehicle(vin, vid, status)
    mine = [p for p in recorded.pending.values() if p.address.startswith(f"vehicle.{vin}.")]
    return Observed(
        callbacks=callbacks,
        vehicles={vin: vehicle},
        listing=listing,
        capabilities=read_capabilities(api, [vin], 1),
        actions=read_actions(api, mine, 1),
    )


def _callbacks(api: FleetApi, desired: Desired, recorded: Recorded) -> dict[str, ObservedCallback]:
    """The callbacks of the fleet file or the state, as the API lists them now (by label)."""
    fleet = f"/fleets/{desired.fleet}"
    labels = set(desired.callbacks) | set(recorded.callbacks)
    recorded_ids = {cb.id: label for label, cb in recorded.callbacks.items()}
    callbacks: dict[str, ObservedCallback] = {}
    listed = list(api.pages(f"{fleet}/remote/callbacks", "callbacks"))
    for item in listed:
        subscribe = item.get("subscribe") or {}
        label = subscribe.get("label")
        if label not in labels or label in callbacks:
            continue
        callbacks[label] = _observed_callback(label, item, desired, recorded)
    for item in listed:  # one recorded under a label the API does not carry (imported without one)
        label = recorded_ids.get(str(item.get("id")))
        if label is not None and label not in callbacks:
            callbacks[label] = _observed_callback(label, item, desired, recorded)
    taken = {cb.id for cb in callbacks.values()}
    for label, wanted in desired.callbacks.items():  # the state lost: one imported without a label
        if label in callbacks or label in recorded.callbacks:
            continue
        found = unlabeled_match(listed, wanted, taken)
        if found is not None:
            callbacks[label] = _observed_callback(label, found, desired, recorded)
            taken.add(str(found.get("id")))
    return callbacks


def unlabeled_match(listed: Iterable[dict[str, Any]], wanted: Callback, taken: set[str]) -> dict[str, Any] | None:
    """The callback of ``listed`` that carries no label and is ``wanted``'s: same webhook target and remote types.

    A callback created without a label (by hand, by another tool) and imported
    has its label only in the fleet file and the state; with the state lost,
    this is how it is found again instead of being created twice. It gets its
    label with its next update.
    """
    target = reveal(wanted.target)
    for item in listed:
        subscribe = item.get("subscribe") or {}
        if str(item.get("id")) in taken or subscribe.get("label"):
            continue
        webhook = (subscribe.get("callback") or {}).get("webhook") or {}
        if webhook.get("target") == target and set(subscribe.get("remoteTypes") or ()) == set(wanted.remote_types):
            return item
    return None


def _observed_callback(label: str, item: dict[str, Any], desired: Desired, recorded: Recorded) -> ObservedCallback:
    subscribe = item.get("subscribe") or {}
    guide = desired.callbacks.get(label)
    status = str(item.get("status", "Running"))
    return ObservedCallback(
        str(item["id"]), callback_from_api(label, subscribe, status, guide, recorded.fingerprint_key)
    )


def list_vehicles(api: FleetApi, fleet: str, prefixes: Iterable[str] = (), *, told: Told = quiet) -> dict[str, str]:
    """VIN → vid of the whole fleet, or of the VINs starting with ``prefixes`` (a page per 60 vehicles)."""
    found: dict[str, str] = {}
    queries: list[dict[str, Any] | None] = [{"vinPrefix": p} for p in sorted(set(prefixes))] or [None]
    for query in queries:
        for item in api.pages(f"{fleet}/vehicles", "vehicles", query):
            vin = item.get("vin")
            if isinstance(vin, str) and item.get("id") is not None:
                found[vin] = str(item["id"])
                if len(found) % 60 == 0:
                    told("listing", len(found), 0)
    return found


def read_capabilities(
    api: FleetApi, vins: Iterable[str], parallelism: int = 8, *, told: Told = quiet
) -> dict[str, Capabilities]:
    """What each vehicle can take (``GET /vehicles/{vin}`` with its onboard capabilities).

    A vehicle the capability service does not know (404) is left out: unknown,
    its changes planned as possible.
    """

    def one(vin: str) -> tuple[str, Capabilities | None]:
        try:
            document = api.get(f"/vehicles/{vin}", {"extension": "onboardCapabilities"})
        except NotFoundError:
            return vin, None
        return vin, capabilities.from_api(document)

    chosen = sorted(vins)
    found: dict[str, Capabilities] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for done, (vin, caps) in enumerate(pool.map(one, chosen), 1):
            if caps is not None:
                found[vin] = caps
            told("capabilities", done, len(chosen))
    return found


def read_statuses(
    api: FleetApi, fleet: str, vins: set[str], vids: dict[str, str], parallelism: int = 8, *, told: Told = quiet
) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """VIN → (vid, status document) for ``vins``: from the paged fleet status, or each vehicle's.

    ``vids`` are the vehicle ids already known; the fleet status, when the API
    serves it, costs a page per 60 vehicles instead of a call per vehicle.
    """
    if not vins:
        return {}
    vids = dict(vids)
    try:
        found: dict[str, tuple[str | None, dict[str, Any]]] = {}
        for doc in api.pages(f"{fleet}/status", "status"):
            vin = doc.get("vin")
            if vin in vins:
                found[vin] = (vids.get(vin) or _vid_from_links(doc), doc)
                if len(found) % 60 == 0:
                    told("status", len(found), len(vins))
        told("status", len(found), len(vins))
        return found
    except AuthError:
        raise
    except ApiError:
        pass  # the fleet status is deprecated: read each vehicle's instead
    missing = vins - set(vids)
    if missing:
        for vin, vid in list_vehicles(api, fleet).items():
            if vin in missing:
                vids[vin] = vid
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        known = sorted(vin for vin in vids if vin in vins)
        docs = pool.map(lambda vin: (vin, api.get(f"{fleet}/vehicles/{vids[vin]}/status")), known)
        read: dict[str, tuple[str | None, dict[str, Any]]] = {}
        for vin, doc in docs:
            read[vin] = (vids[vin], doc)
            told("status", len(read), len(known))
        return read


def _vid_from_links(doc: dict[str, Any]) -> str | None:
    href = ((doc.get("_links") or {}).get("vehicle") or {}).get("href", "")
    return href.rstrip("/").rsplit("/", 1)[-1] or None if href else None


def callback_from_api(
    label: str, subscribe: dict[str, Any], status: str, guide: Callback | None, key: bytes
) -> Callback:
    """A callback as the API lists it, in the model's terms.

    Values the fleet file takes from the environment are fingerprinted at once,
    so that they are compared, never kept; API defaults are filled in as the
    loader fills them, so that an omitted default is no difference.
    """
    secret_places = _secret_places(guide)
    webhook = (subscribe.get("callback") or {}).get("webhook") or {}
    attributes = []
    for item in webhook.get("attributes") or []:
        if isinstance(item, dict) and item.get("type") in _KINDS:
            place = (str(item["type"]), str(item.get("key", "")))
            attributes.append(Attribute(*place, _value(str(item.get("value", "")), place, secret_places, key)))
    attributes.sort(key=lambda a: (a.kind, a.key))
    order = {t: i for i, t in enumerate(spec.REMOTE_TYPES)}
    types = sorted((t for t in subscribe.get("remoteTypes") or [] if t in order), key=order.__getitem__)
    return Callback(
        label=label,
        target=_value(str(webhook.get("target", "")), ("target", ""), secret_places, key),
        name=str(webhook.get("name", label)),
        remote_types=tuple(types),
        attributes=tuple(attributes),
        retry_policy=_retry(subscribe.get("retryPolicy")),
        batch_notify=_batch(subscribe.get("batchNotify")),
        status=status if status in spec.CALLBACK_STATUSES else spec.CALLBACK_RUNNING,
    )


def _secret_places(guide: Callback | None) -> set[tuple[str, str]]:
    if guide is None:
        return set()
    places = {(a.kind, a.key) for a in guide.attributes if isinstance(a.value, Secret)}
    if isinstance(guide.target, Secret):
        places.add(("target", ""))
    return places


def _value(text: str, place: tuple[str, str], secret_places: Iterable[tuple[str, str]], key: bytes) -> Value:
    return fingerprint(key, text) if place in secret_places else text


def _retry(raw: Any) -> RetryPolicy | None:
    if not isinstance(raw, dict) or "policy" not in raw:
        return None
    policy = str(raw["policy"])
    if policy == "None":
        return RetryPolicy(policy)
    number = raw.get("retryNumber", spec.DEFAULT_RETRY_NUMBER) if policy == "Bounded" else None
    return RetryPolicy(policy, number, raw.get("retryDelay", spec.DEFAULT_RETRY_DELAY))


def _batch(raw: Any) -> BatchNotify | None:
    if not isinstance(raw, dict) or "size" not in raw:
        return None
    return BatchNotify(int(raw["size"]), int(raw.get("timeWindow", spec.DEFAULT_BATCH_TIME_WINDOW)))
