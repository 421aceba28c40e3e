"""Reaching the API for a fleet file: the embedded sandbox or the real one, and refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..api import observe
from ..api.client import MAX_RETRY_AFTER, FleetApi
from ..api.settings import from_environment, http_timeout
from ..core import addresses, groups, planner
from ..core.model import Desired, Observed, Recorded
from ..errors import AuthError, ReconcilerError, SettingsError, TLSError
from ..fleetfile import loader
from ..state.base import StateStore
from . import sandbox


@contextmanager
def connect(
    desired: Desired,
    state_url: str,
    fleet_file: str,
    env: Mapping[str, str],
    *,
    cancel: threading.Event | None = None,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> Iterator[FleetApi]:
    """The API client: for the embedded sandbox, or for the API at ``api.url``.

    ``cancel``, once set, makes the client send nothing more (Ctrl-C during apply);
    a 429 asking to wait longer than ``max_retry_after`` is a spent quota.
    """
    if desired.api_url == loader.SANDBOX:
        folder = sandbox.directory(state_url, fleet_file)
        timeout = http_timeout(env)
        with (
            sandbox.running(desired, folder) as settings,
            FleetApi(replace(settings, timeout=timeout), cancel=cancel, max_retry_after=max_retry_after) as api,
        ):
            yield api
        return
    with FleetApi(from_environment(desired.api_url, env), cancel=cancel, max_retry_after=max_retry_after) as api:
        yield api


@dataclass(frozen=True)
class Looking:
    """How a refresh looks: which addresses the plan is for, when, and whether to read capabilities again."""

    targets: tuple[str, ...] = ()
    now: str = ""
    refresh_capabilities: bool = False
    parallelism: int = 8
    pending: bool = False  # read the pending actions' status too (a read-only plan cannot settle them)
    told: observe.Told | None = None  # how the refresh goes: for a progress line
    all_capabilities: bool = False  # read the capabilities of every managed vehicle not known yet (refresh)


def observe_fleet(api: FleetApi, desired: Desired, recorded: Recorded, looking: Looking) -> Observed:
    """What the API reports now: callbacks, the fleet's listing, the managed vehicles' status and,
    for the vehicles with something to send whose capabilities are not known yet, their capabilities.
    """
    told = looking.told or observe.quiet
    observed = observe.refresh(api, desired, recorded, parallelism=looking.parallelism, told=told)
    if looking.pending and recorded.pending:
        observed = replace(observed, actions=observe.read_actions(api, recorded.pending.values(), looking.parallelism))
    managed = set(groups.members(desired, observed.listing).vehicles) & set(observed.listing or {})
    if looking.all_capabilities:
        vins = managed
    else:
        draft = planner.plan(desired, recorded, observed, targets=looking.targets, now=looking.now)
        vins = {c.vin for c in draft.changes if c.vin}
        if looking.refresh_capabilities:
            vins |= managed
    if not looking.refresh_capabilities:
        vins -= set(recorded.capabilities)
    if not vins:
        return observed
    found = observe.read_capabilities(api, vins, looking.parallelism, told=told)
    return replace(observed, capabilities=found)


def record_observed(store: StateStore, observed: Observed | None) -> tuple[list[str], list[str]]:
    """Keep what refresh learnt: the fleet's listing and capabilities; the VINs that joined and left the fleet."""
    joined: list[str] = []
    left: list[str] = []
    if observed is None:
        return joined, left
    if observed.listing is not None:
        joined, left = store.record_listing(observed.listing)
        for vin in joined:
            store.add_history(addresses.vehicle_prefix(vin), "joined", "listed in the fleet by the API")
        for vin in left:
            store.add_history(addresses.vehicle_prefix(vin), "left", "no longer listed in the fleet: not managed")
    if observed.capabilities:
        store.record_capabilities(observed.capabilities)
    return joined, left


NO_REFRESH = "Retry, or pass --no-refresh to apply against the recorded state only (drift is then not seen)"


def refresh_for_apply(
    api: FleetApi, desired: Desired, recorded: Recorded, looking: Looking, *, then: str = NO_REFRESH
) -> Observed:
    """Refresh before applying; a failure ends the run before anything is sent.

    Applying blind would miss drift and adopt nothing: the user decides, with
    ``--no-refresh``, whether to go on against the recorded state alone.
    ``then`` says what to do next, in the caller's words (``watch`` has no such flag).
    """
    try:
        return observe_fleet(api, desired, recorded, looking)
    except (AuthError, SettingsError, TLSError):
        raise  # refused credentials or certificates: retrying or --no-refresh would not help
    except ReconcilerError as exc:
        raise ReconcilerError(f"refresh failed, nothing was sent: {exc}. {then}") from exc


def observe_for_plan(
    desired: Desired, recorded: Recorded, state_url: str, fleet_file: str, env: Mapping[str, str], looking: Looking
) -> tuple[Observed | None, str]:
    """Refresh for ``plan``: what the API reports, or why it could not be read.

    Refused credentials are an error; any other failure costs the refresh, and
    the plan says so where its reader looks.
    """
    try:
        with connect(desired, state_url, fleet_file, env) as api:
            return observe_fleet(api, desired, recorded, looking), ""
    except (AuthError, SettingsError, TLSError):
        raise  # refused credentials or certificates, a malformed setting: errors, not a refresh that failed
    except ReconcilerError as exc:
        return None, str(exc)
