"""Secrets: keyed fingerprints, and rendering bodies with or without them.

A secret's value never leaves the process except in the request that needs it.
Plans and the state store keep an HMAC-SHA256 of it under the state's own
random key: equal values give equal fingerprints, so a plan can say whether a
secret changed without anyone being able to read it back or test guesses
against a plan file alone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import Any

from .model import Attribute, Callback, Fingerprint, Secret, Value

SHOWN = "(sensitive)"


def fingerprint(key: bytes, value: str) -> Fingerprint:
    """The keyed digest the state and plans keep instead of ``value``."""
    return Fingerprint(hmac.new(key, value.encode(), hashlib.sha256).hexdigest())


def seal(value: Value, key: bytes) -> Value:
    """A secret becomes its fingerprint; anything else is kept."""
    return fingerprint(key, value.value) if isinstance(value, Secret) else value


def seal_callback(callback: Callback, key: bytes) -> Callback:
    """``callback`` as the state records it: every secret replaced by its fingerprint."""
    if not any(isinstance(a.value, Secret) for a in callback.attributes) and not isinstance(callback.target, Secret):
        return callback
    return replace(
        callback,
        target=seal(callback.target, key),
        attributes=tuple(Attribute(a.kind, a.key, seal(a.value, key)) for a in callback.attributes),
    )


def json_default(value: Any) -> str:
    """The ``default`` hook of ``json.dumps`` for output: a secret is ``(sensitive)``."""
    if isinstance(value, (Secret, Fingerprint)):
        return SHOWN
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def reveal(body: Any) -> Any:
    """``body`` with secrets in clear: only for the request that is sent."""
    if isinstance(body, Secret):
        return body.value
    if isinstance(body, Fingerprint):
        raise ValueError("a fingerprint cannot be sent; the secret must be read again")
    if isinstance(body, dict):
        return {k: reveal(v) for k, v in body.items()}
    if isinstance(body, list):
        return [reveal(v) for v in body]
    return body
