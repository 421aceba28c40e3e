"""State store URLs: where the password is, as libpq reads it, so that no form or piece of it is ever shown.

libpq reads ``postgresql://user:password@host/db?password=…`` like this: the
user information ends at the first ``@`` that comes before any ``/``; the host
list runs to the next ``/`` or ``?``; query values are percent-decoded. A
password written with an unencoded ``@`` or ``/`` is therefore split: part of
it lands in the host name, and libpq's own error ("failed to resolve host
'Kx9@127.0.0.1'") would print it. Such a URL is refused before libpq sees it
(``ambiguity``), and every message is scrubbed of every form of the password.
A conninfo string (``host=… password=…``) is read by its ``password=`` keyword.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

SHOWN = "***"
_CONNINFO_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
_PIECES = re.compile(r"[@/:?&=#%\s]+")
MIN_PIECE = 3  # shorter pieces of a password are too common in any message to be told apart


@dataclass(frozen=True)
class _Uri:
    scheme: str
    userinfo: str  # "" when there is none
    rest: str  # host list, database and query
    ambiguous: bool  # libpq would read part of the user information as the host


_KEY = re.compile(r"[A-Za-z_]+\Z")  # libpq's connection keywords
_HOST = re.compile(r"(\[[0-9A-Fa-f:.%\w]*\]|[^:\[\]]*)(:\d*)?\Z")  # name or [IPv6], and a numeric port


def _uri(url: str) -> _Uri | None:
    scheme, sep, after = url.partition("://")
    if not sep:
        return None
    if scheme not in ("postgresql", "postgres"):
        return _Uri(scheme, "", after, False)  # a file path: no password in it
    at, slash = after.find("@"), after.find("/")
    if at >= 0 and (slash < 0 or at < slash):  # libpq: the user information ends at this @
        userinfo, rest = after[:at], after[at + 1 :]
    else:
        userinfo, rest = "", after
    netloc = re.split(r"[/?]", rest, maxsplit=1)[0]
    database = rest[len(netloc) :].split("?", 1)[0]
    query = rest.split("?", 1)[1] if "?" in rest else ""
    # An @ left in the host list or the database name (the password held one), an @ before the
    # query with no user information found (the password held a /), a port that is not a number
    # (the password's start read as one), a query whose keys are no keywords (the password held
    # a ?): libpq would print a piece of the password in its error.
    ambiguous = (
        "@" in netloc
        or (not userinfo and "@" in after.split("?", 1)[0])
        or any(not _HOST.match(host) for host in netloc.split(","))
        or "@" in database
        or database.count("/") > 1
        or any(not _KEY.match(item.split("=", 1)[0]) for item in query.split("&") if query)
    )
    return _Uri(scheme, userinfo, rest, ambiguous)


def passwords(url: str) -> list[str]:
    """Every password ``url`` carries, as written (user information, ``password=`` in the query or conninfo).

    For a URL libpq would misread, everything between ``://`` and its last ``@``
    is taken for the user information too.
    """
    found = []
    uri = _uri(url)
    if uri is not None and ":" in uri.userinfo:
        found.append(uri.userinfo.split(":", 1)[1])
    if uri is not None and uri.ambiguous:
        whole = url.partition("://")[2]
        found += [part for part in whole[: whole.rfind("@")].split(":", 1)[1:]]
    pattern = _QUERY_PASSWORD if uri is not None else _CONNINFO_PASSWORD
    for match in pattern.finditer(url if uri is None else uri.rest):
        value = match.group(2)
        found.append(value[1:-1] if value.startswith("'") and value.endswith("'") else value)
    return [p for p in found if p]


def redact(url: str) -> str:
    """``url`` with its password shown as ``***``, whatever the way it was written.

    A URL libpq would misread shows nothing but its scheme: which part of it is
    the password cannot be told for sure.
    """
    uri = _uri(url)
    if uri is None:
        return _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + SHOWN, url)
    if uri.ambiguous:
        return f"{uri.scheme}://{SHOWN}"
    rest = _QUERY_PASSWORD.sub(lambda m: m.group(1) + SHOWN, uri.rest)
    if not uri.userinfo:
        return f"{uri.scheme}://{rest}"
    user = uri.userinfo.split(":", 1)[0]
    return f"{uri.scheme}://{user}{':' + SHOWN if ':' in uri.userinfo else ''}@{rest}"


def ambiguity(url: str) -> str:
    """Why libpq would misread ``url`` (a password split into the host name), or ""."""
    uri = _uri(url)
    if uri is None or not uri.ambiguous:
        return ""
    return (
        "its user name or password holds '@' or '/', which the PostgreSQL client would read as part of the "
        "host: write them percent-encoded (@ as %40, / as %2F)"
    )


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) without any form or piece of the passwords in ``url``."""
    for password in passwords(url):
        forms = {password, unquote(password), quote(password, safe=""), quote(unquote(password), safe="")}
        pieces = {piece for form in forms for piece in _PIECES.split(form) if len(piece) >= MIN_PIECE}
        for secret in sorted(forms | pieces, key=len, reverse=True):
            if secret:
                text = text.replace(secret, SHOWN)
    return text
