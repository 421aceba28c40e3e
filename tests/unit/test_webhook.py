"""The webhook receiver: the simulator's deliveries resolve pending actions; duplicates and strangers."""

from __future__ import annotations


def test_an_empty_secret_never_authenticates() -> None:
    from reconciler.service.webhook_receiver import _carries

    assert not _carries({}, {"x-token": ""})
    assert not _carries({"x-token": ""}, {"x-token": ""})
    assert _carries({"x-token": "s"}, {"x-token": "s"})
