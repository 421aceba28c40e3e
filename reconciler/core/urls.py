"""Which URLs may carry what: the API's base URL, webhook targets, notification targets.

Plain ``http://`` would send credentials and secret headers in clear, so it is
accepted only to this machine (loopback), where the embedded simulator and a
local receiver live.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url(url: str) -> str:
    """``scheme://host[:port]/path``: what of a URL can be printed (a query or user part may be a token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL that cannot be read)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _shape_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not an http(s) URL with a host"
    if any(c.isspace() for c in url):
        return "has spaces in it"
    return None


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the API's base URL, or None."""
    return _private_problem(url, repr(url), "the password and client id")


def notify_url_problem(url: str) -> str | None:
    """Why reconciler will not post notifications to ``url``, or None."""
    return _private_problem(url, "the URL", "notifications (and their headers)")


def _private_problem(url: str, named: str, carried: str) -> str | None:
    """What is wrong with a URL that carries secrets: its shape, or plain http:// off this machine."""
    shape = _shape_problem(url)
    if shape:
        return f"{named} {shape}"
    if url.startswith("http://") and not is_loopback(url):
        return f"{named} is plain http://: {carried} would cross the network in clear"
    return None


def target_problem(url: str, *, local_api: bool) -> str | None:
    """Why the API would refuse ``url`` as a webhook target, or None.

    ``local_api``: the API is the simulator on this machine, which posts to
    loopback ``http://`` targets (the real API takes https:// only).
    """
    shape = _shape_problem(url)
    if shape:
        return f"the target {shape}"
    if url.startswith("http://") and not (local_api and is_loopback(url)):
        return "the target is plain http://; the API posts only to https:// targets"
    return None
