"""A fleet that makes every kind of request the planner builds: the example and a rich variant of MINIMAL."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.core.changes import Change
from reconciler.core.planner import plan
from reconciler.fleetfile import loader
from reconciler.state.base import fresh_recorded
from support.paths import EXAMPLE, MINIMAL

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
