"""How to reach the API: from the environment (DESIGN §5) or from the embedded sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReconcilerError, SettingsError


@dataclass(frozen=True)
class ApiSettings:
    base_url: str
    client_id: str
    username: str
    password: str = field(repr=False)
    client_cert: str | None = None
    client_key: str | None = None
    ca_bundle: str | None = None
    timeout: float = 30.0


def from_environment(base_url: str, env: Mapping[str, str]) -> ApiSettings:
    """Settings for ``base_url`` from RECONCILER_* variables; say which are missing."""
    names = ("RECONCILER_CLIENT_ID", "RECONCILER_USERNAME", "RECONCILER_PASSWORD")
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise ReconcilerError(
            f"{', '.join(missing)} not set: the API at {base_url} needs a client id and HTTP Basic credentials "
            "(or use api.url: sandbox to try the embedded simulator)"
        )
    cert, key = env.get("RECONCILER_CLIENT_CERT"), env.get("RECONCILER_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise ReconcilerError("set both RECONCILER_CLIENT_CERT and RECONCILER_CLIENT_KEY, or neither")
    for name in ("RECONCILER_CLIENT_CERT", "RECONCILER_CLIENT_KEY", "RECONCILER_CA_BUNDLE"):
        path = env.get(name)
        if path and not Path(path).is_file():
            raise ReconcilerError(f"{name}: no such file {path}")
    timeout = http_timeout(env)
    return ApiSettings(
        base_url=base_url.rstrip("/"),
        client_id=env["RECONCILER_CLIENT_ID"],
        username=env["RECONCILER_USERNAME"],
        password=env["RECONCILER_PASSWORD"],
        client_cert=cert,
        client_key=key,
        ca_bundle=env.get("RECONCILER_CA_BUNDLE"),
        timeout=timeout,
    )


DEFAULT_TIMEOUT = 30.0


def http_timeout(env: Mapping[str, str]) -> float:
    """``RECONCILER_HTTP_TIMEOUT``: seconds to wait for an answer, more than zero (default 30)."""
    text = env.get("RECONCILER_HTTP_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise SettingsError(f"RECONCILER_HTTP_TIMEOUT={text!r}: write a number of seconds above zero, such as 30")
    return value
