"""What the parts of the fleet file's reader share: the file being read, and where its problems go.

``loader`` reads the file and implements ``Reading``; ``vehicles`` (groups and
vehicle entries) and ``brakes`` (rollout, windows, wake-ups, notify) are handed
one, so that they never reach into the loader, and the loader imports them.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..core.model import Secret, VehicleConfig
from .schema import SchemaReport
from .yaml_source import Path, Source

# What a ${VAR} reads as with --offline: a plain word, so that the text around it is still checked (a URL's
# host); a value that starts with it (the whole URL from the environment) is not checked.
OFFLINE_VALUE = "offline-value"


def unknown(value: str | Secret) -> bool:
    """Whether ``value`` is read from the environment offline, so that nothing can be said of it."""
    return isinstance(value, Secret) and value.value.startswith(OFFLINE_VALUE)


class Reading(Protocol):
    """A fleet file being read: its data, its schema verdict, and how to say what is wrong at a place."""

    source: Source
    data: dict[str, Any]
    report: SchemaReport

    def problem(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> None:
        """A problem at ``path`` (its key with ``key``): the file is refused, every problem said."""
        ...

    def warning(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> None:
        """Something valid but worth knowing, at ``path``."""
        ...

    def read_value(self, text: str, path: Path) -> str | Secret:
        """A literal, or a secret from ``${VAR}`` (set and not empty); ``$$`` is a literal ``$``."""
        ...

    def sections(self, body: Any, path: Path, base: VehicleConfig) -> VehicleConfig:
        """``base`` with the vehicle sections ``body`` gives replacing its own."""
        ...
