"""watch: one run for cron, drift corrected within an interval, a clean stop on SIGTERM."""

from __future__ import annotations

import pytest

from reconciler.commands.watch import parse_interval
from reconciler.errors import ReconcilerError


def test_intervals() -> None:
    assert (parse_interval("90"), parse_interval("30s"), parse_interval("15m"), parse_interval("1h")) == (
        90,
        30,
        900,
        3600,
    )
    with pytest.raises(ReconcilerError):
        parse_interval("soon")
    with pytest.raises(ReconcilerError, match="longer than a year"):
        parse_interval("9" * 30)
