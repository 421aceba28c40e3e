"""``reconciler refresh``: read what the API reports and record it, sending nothing (DESIGN §10.3).

The fleet's listing, the managed vehicles' capabilities and their status are
read under the state lock; the listing (vehicles that joined or left), the
capabilities and what is already in place (adoptions) are recorded, and the
actions earlier runs left pending are looked at once and settled. Plans made
afterwards, including read-only ones in pull requests, read no capabilities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..api import observe
from ..core import groups, planner
from ..core.vocabulary import Result
from ..fleetfile import loader
from ..state.backends import open_store, state_url
from . import connection, gcpause
from .executor import Executor
from .session import lock_owner


@dataclass(frozen=True)
class Refreshed:
    """What a refresh read and recorded."""

    fleet: str
    listed: int
    joined: int
    left: int
    statuses: int  # managed vehicles whose status was read
    capabilities_read: int
    capabilities_known: int  # managed vehicles whose capabilities were recorded already (not read again)
    adopted: int  # addresses found already as desired, recorded
    drift: int  # addresses changed outside reconciler (a plan puts them back)
    settled: Mapping[Result, int]  # earlier runs' pending actions, by what became of them


def refresh_fleet(
    fleet_file: str,
    env: Mapping[str, str],
    *,
    lock_timeout: float = 0.0,
    parallelism: int = 8,
    refresh_capabilities: bool = False,
    told: observe.Told | None = None,
) -> Refreshed:
    with gcpause.paused():
        desired = loader.read(fleet_file, env)
    url = state_url(fleet_file, env)
    store = open_store(url, fleet=desired.fleet)
    try:
        lock_id = store.acquire_lock(lock_owner("reconciler refresh"), lock_timeout)
        try:
            recorded = store.read()
            store.initialize(recorded)
            now = datetime.now(UTC).isoformat(timespec="seconds")
            looking = connection.Looking(
                now=now,
                refresh_capabilities=refresh_capabilities,
                parallelism=parallelism,
                told=told,
                all_capabilities=True,
            )
            with connection.connect(desired, url, fleet_file, env) as api:
                executor = Executor(
                    api, store, desired, fingerprint_key=recorded.fingerprint_key, parallelism=parallelism, wait=False
                )
                settled: Counter[Result] = Counter(o.result for o in executor.settle() if o.result != Result.SKIPPED)
                recorded = store.read()
                observed = connection.observe_fleet(api, desired, recorded, looking)
                listing = observed.listing or {}
                joined, left = connection.record_observed(store, observed)
                plan = planner.plan(desired, recorded, observed, now=now)
                executor.run(replace(plan, changes=()))  # records what is in place; sends nothing
            managed = set(groups.members(desired, listing).vehicles) & set(listing)
        finally:
            store.release_lock(lock_id)
    finally:
        store.close()
    return Refreshed(
        desired.fleet,
        len(listing),
        len(joined),
        len(left),
        len(observed.vehicles),
        len(observed.capabilities),
        len(managed & set(recorded.capabilities)) if not refresh_capabilities else 0,
        len(plan.adoptions),
        len({d.address for d in plan.drift}),
        dict(settled),
    )
