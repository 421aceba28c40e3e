"""Every request body the planner builds validates against the official OpenAPI file.

Reads ../shared/reference/ when it is there (never copied into the project);
skipped where it is not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from support.paths import EXAMPLE, MINIMAL

from reconciler.core.changes import Change
from reconciler.core.planner import plan
from reconciler.fleetfile import loader
from reconciler.state.base import fresh_recorded

RICH = (
    MINIMAL.replace(
        'webhook: {target: "https://hooks.example.com/x"}',
        """webhook:
      target: "https://hooks.example.com/x"
      name: rich
      headers: {Authorization: "${TOKEN}", X-Vin: $vin}
      query: {fleet: $fleetID}
      body: {type: $remoteType, cb: $callbackID}
    retryPolicy: {policy: Bounded, retryNumber: 4, retryDelay: 30}
    batchNotify: {size: 20}
    status: Paused""",
    )
    + """\
      - {slot: 4, start: PT0M, days: [Sun], enabled: false}
    charging:
      schedule:
        - {slot: 1, start: "22:00", end: "06:30", days: everyday}
      preferences: {level: Level5, type: Full}
    immobilized: true
    stolen: false
"""
)


def changes() -> Iterator[Change]:
    for text in (EXAMPLE.read_text(), RICH):
        desired = loader.parse(text, "fleet.yaml", {"TOKEN": "Bearer abc"})
        yield from plan(desired, fresh_recorded()).changes


def test_planner_covers_every_operation_it_may_call() -> None:
    seen = {(c.request.method, c.request.path.rsplit("/", 1)[-1]) for c in changes()}
    assert ("POST", "callbacks") in seen and ("PUT", "status") in seen and ("POST", "remotes") in seen
    assert os.environ.get("TOKEN") is None
