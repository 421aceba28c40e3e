"""apply end to end against the simulator over HTTPS with mutual TLS, counting the calls it receives."""

from __future__ import annotations

from support.runs import VINS


def test_an_action_a_killed_run_left_pending_is_reported_once() -> None:
    from reconciler.core.outcomes import Outcome
    from reconciler.core.vocabulary import Result
    from reconciler.run.session import _one_per_address

    address = f"vehicle.{VINS[0]}.preconditioning"
    settled = [Outcome(address, Result.PENDING, "r1 still Accepted")]
    held = [Outcome(address, Result.PENDING, "action r1 is still Accepted; planned again once it ends")]
    sent = [Outcome(f"vehicle.{VINS[1]}.preconditioning", Result.CONFIRMED, "Success")]
    assert _one_per_address(settled, sent, held) == settled + sent
