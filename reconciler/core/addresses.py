"""Plan addresses (DESIGN §4): how each managed thing is named, and ``--target``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .parts import BY_NAME, PARTS, Part

# A vehicle's parts, and each first word of a part's name (``vehicle.VIN.charging`` is both charging parts).
_NAMES = sorted({n for part in PARTS for n in (part.name, part.name.split(".")[0])}, key=len, reverse=True)
_TARGET = re.compile(
    r"callback\.[A-Za-z0-9][A-Za-z0-9_.-]*\Z"
    r"|vehicle\.[A-Z0-9]{17}(\.(" + "|".join(re.escape(n) for n in _NAMES) + r"))?\Z"
)


def callback(label: str) -> str:
    return f"callback.{label}"


def vehicle(vin: str, part: str) -> str:
    return f"vehicle.{vin}.{part}"


def vehicle_prefix(vin: str) -> str:
    """``vehicle.<VIN>``: what a vehicle-wide backoff is recorded under."""
    return f"vehicle.{vin}"


def vin_of(address: str) -> str | None:
    """The VIN in a vehicle address, None for a callback address."""
    if address.startswith("vehicle."):
        return address.split(".", 2)[1]
    return None


def part_of(address: str) -> Part | None:
    """The part a vehicle address names (``vehicle.<VIN>.<part>``); None for any other address."""
    if not address.startswith("vehicle.") or address.count(".") < 2:
        return None
    return BY_NAME.get(address.split(".", 2)[2])


def remote_type_of(address: str) -> str:
    """The remote type a vehicle address's actions have; "" for a callback address."""
    part = part_of(address)
    return part.remote_type if part is not None else ""


def is_urgent(address: str) -> bool:
    """Whether the address's changes never wait (immobilization, stolen: DESIGN §9.3)."""
    part = part_of(address)
    return part is not None and part.urgent


def is_valid_target(target: str) -> bool:
    """Whether ``target`` names a callback, a vehicle, or one part of a vehicle."""
    return bool(_TARGET.match(target))


def matches(address: str, targets: Iterable[str]) -> bool:
    """True when ``address`` is one of ``targets`` or lies under one of them."""
    return any(address == t or address.startswith(t + ".") for t in targets)
