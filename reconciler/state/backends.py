"""Which state store a URL names, opened: the one module that knows every backend.

The backends import the store's interface (``base``) and statements (``sql``);
this module imports the backends, and nothing imports it from below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import StateError
from .base import DEFAULT_STATE, StateStore
from .urls import redact


def state_url(fleet_file: str | Path, env: Mapping[str, str]) -> str:
    """``RECONCILER_STATE``, else ``sqlite:///`` + ``.reconciler/state.db`` beside the fleet file."""
    url = env.get("RECONCILER_STATE")
    if url:
        return url
    path = Path(fleet_file).resolve().parent / DEFAULT_STATE
    return f"sqlite:///{path}"


def open_store(url: str, *, readonly: bool = False, fleet: str = "") -> StateStore:
    """The backend for ``url``; ``readonly`` opens without creating or migrating anything.

    ``fleet`` is the fleet file's id: a state recorded for another fleet is
    refused; it also keys PostgreSQL's advisory lock.
    """
    if url.startswith("sqlite:///"):
        from .sqlite import open_sqlite  # each backend's driver loads only when it is used

        return open_sqlite(url, readonly=readonly, fleet=fleet)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import open_postgres

        return open_postgres(url, readonly=readonly, fleet=fleet)
    raise StateError(f"unsupported state URL {redact(url)!r}; use sqlite:///PATH or postgresql://…")
