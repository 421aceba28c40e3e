"""Reaching the API for a fleet file: the embedded sandbox or the real one, and refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from ..api import observe
from ..api.client import FleetApi
from ..api.settings import from_environment, http_timeout
from ..core.model import Desired, Observed, Recorded
from ..errors import AuthError, ReconcilerError
from ..fleetfile import loader
from . import sandbox


@contextmanager
def connect(
    desired: Desired,
    state_url: str,
    fleet_path: str,
    env: Mapping[str, str],
    *,
    cancel: threading.Event | None = None,
) -> Iterator[FleetApi]:
    """The API client: for the embedded sandbox, or for the API at ``api.url``.

    ``cancel``, once set, makes the client send nothing more (Ctrl-C during apply).
    """
    if desired.api_url == loader.SANDBOX:
        folder = sandbox.directory(state_url, fleet_path)
        timeout = http_timeout(env)
        with (
            sandbox.running(desired, folder) as settings,
            FleetApi(replace(settings, timeout=timeout), cancel=cancel) as api,
        ):
            yield api
        return
    with FleetApi(from_environment(desired.api_url, env), cancel=cancel) as api:
        yield api


def refresh_for_apply(api: FleetApi, desired: Desired, recorded: Recorded, parallelism: int = 8) -> Observed:
    """Refresh before applying; a failure ends the run before anything is sent.

    Applying blind would miss drift and adopt nothing: the user decides, with
    ``--no-refresh``, whether to go on against the recorded state alone.
    """
    try:
        return observe.refresh(api, desired, recorded, parallelism=parallelism)
    except AuthError:
        raise
    except ReconcilerError as exc:
        raise ReconcilerError(
            f"refresh failed, nothing was sent: {exc}. Retry, or pass --no-refresh to apply against the "
            "recorded state only (drift is then not seen)"
        ) from exc


def observe_for_plan(
    desired: Desired, recorded: Recorded, state_url: str, fleet_path: str, env: Mapping[str, str]
) -> tuple[Observed | None, str]:
    """Refresh for ``plan``: what the API reports, or why it could not be read.

    Refused credentials are an error; any other failure costs the refresh, and
    the plan says so where its reader looks.
    """
    try:
        with connect(desired, state_url, fleet_path, env) as api:
            return observe.refresh(api, desired, recorded), ""
    except AuthError:
        raise
    except ReconcilerError as exc:
        return None, str(exc)
