"""The fleets tests/e2e/test_reference_bodies.py checks against the OpenAPI file make every kind of request.

This half needs no reference file: it runs everywhere.
"""

from __future__ import annotations

import os

from support.bodies import changes


def test_planner_covers_every_operation_it_may_call() -> None:
    seen = {(c.request.method, c.request.path.rsplit("/", 1)[-1]) for c in changes()}
    assert ("POST", "callbacks") in seen and ("PUT", "status") in seen and ("POST", "remotes") in seen
    assert os.environ.get("TOKEN") is None
