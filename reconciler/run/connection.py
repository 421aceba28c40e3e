"""Reaching the API for a fleet file: the embedded sandbox or the real one, and refresh."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TextIO

from ..api import observe
from ..api.client import FleetApi
from ..api.settings import ApiSettings, from_environment
from ..core.model import Desired, Observed, Recorded
from ..errors import AuthError, ReconcilerError, UnreachableError
from ..fleetfile import loader
from . import sandbox


@contextmanager
def connect(desired: Desired, state_url: str, fleet_path: str, env: Mapping[str, str]) -> Iterator[FleetApi]:
    """The API client: for the embedded sandbox, or for the API at ``api.url``."""
    if desired.api_url == loader.SANDBOX:
        folder = sandbox.directory(state_url, fleet_path)
        with sandbox.running(desired, folder) as settings, FleetApi(_with_timeout(settings, env)) as api:
            yield api
        return
    with FleetApi(from_environment(desired.api_url, env)) as api:
        yield api


def refresh_or_warn(
    api: FleetApi, desired: Desired, recorded: Recorded, stderr: TextIO, parallelism: int = 8
) -> Observed | None:
    """Refresh; when the API cannot be reached, say so and plan against the recorded state.

    Refused credentials are an error, not a reason to plan blind.
    """
    try:
        return observe.refresh(api, desired, recorded, parallelism=parallelism)
    except AuthError:
        raise
    except UnreachableError as exc:
        stderr.write(f"warning: refresh skipped, the API is unreachable ({exc}); planning against the state\n")
        return None


def observe_for_plan(
    desired: Desired, recorded: Recorded, state_url: str, fleet_path: str, env: Mapping[str, str], stderr: TextIO
) -> Observed | None:
    """Refresh for ``plan``: any failure but refused credentials only costs the refresh."""
    try:
        with connect(desired, state_url, fleet_path, env) as api:
            return observe.refresh(api, desired, recorded)
    except AuthError:
        raise
    except ReconcilerError as exc:
        stderr.write(f"warning: refresh skipped ({exc}); planning against the recorded state\n")
        return None


def _with_timeout(settings: ApiSettings, env: Mapping[str, str]) -> ApiSettings:
    timeout = env.get("RECONCILER_HTTP_TIMEOUT")
    return replace(settings, timeout=float(timeout)) if timeout else settings
