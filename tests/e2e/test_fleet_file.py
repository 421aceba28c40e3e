"""Loading fleet.yaml: what a valid file means, and a located error for every kind of mistake."""

from __future__ import annotations

from support.paths import EXAMPLE

from reconciler.fleetfile import loader


def test_example_is_valid_and_fully_resolved() -> None:
    desired = loader.read(EXAMPLE, {})
    assert desired.fleet == "0a123bc5d1e873066454b4d9"
    assert desired.api_url == "sandbox"
    assert set(desired.callbacks) == {"ops", "security", "driver-desk"}
    assert len(desired.vehicles) == 6
    override = desired.vehicles["VF7XYZAB1CD234567"].config
    assert set(override.preconditioning or {}) == {1, 3}
    assert override.charging_schedule == desired.vehicles["VF3ABCDE0FG123456"].config.charging_schedule
    immobilized = desired.vehicles["VR3KLMNP2RS345679"]
    assert immobilized.config.immobilized is True
    assert immobilized.routes["Immobilization"] == "security"
