"""Every request body the planner builds validates against the official OpenAPI file.

Reads ../shared/reference/ when it is there (never copied into the project);
skipped where it is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft4Validator
from support.bodies import changes
from support.paths import REFERENCE

from reconciler.core.changes import Change
from reconciler.core.sensitive import reveal
from reconciler.fleetfile.yaml_source import load

SPEC = REFERENCE / "stellantis-fleet-api-b2b.yaml"
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="the reference OpenAPI file is not beside the project")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load(SPEC.read_text(), SPEC.name).data  # type: ignore[no-any-return]


def operation_schema(spec: dict[str, Any], change: Change) -> dict[str, Any]:
    """The request schema of the operation ``change`` calls, looked up by path and method."""
    path = change.request.path.split("/", 3)[3]  # after /fleets/{fid}/
    template = {
        "remote/callbacks": "/fleets/{fid}/remote/callbacks",
        "status": "/fleets/{fid}/remote/callbacks/{cbid}/status",
        "remotes": "/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes",
    }
    if path == "remote/callbacks":
        key = template["remote/callbacks"]
    elif path.endswith("/status"):
        key = template["status"]
    elif path.endswith("/remotes"):
        key = template["remotes"]
    else:
        key = "/fleets/{fid}/remote/callbacks/{cbid}"
    operation = (spec["paths"].get(key) or spec["paths"][f"'{key}'"])[change.request.method.lower()]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {"$ref": ref, "components": spec["components"]}


def known_keys_error(spec: dict[str, Any], schemas: list[dict[str, Any]], body: Any, where: str) -> str | None:
    """A key of ``body`` that none of ``schemas`` declares there (a misspelling the spec would let pass)."""
    parts = [part for schema in schemas for part in _merged(spec, schema)]
    if isinstance(body, list):
        items = [part["items"] for part in parts if "items" in part]
        for index, item in enumerate(body):
            error = known_keys_error(spec, items, item, f"{where}[{index}]")
            if error:
                return error
        return None
    if not isinstance(body, dict) or not parts:
        return None
    properties: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for name, sub in part.get("properties", {}).items():
            properties.setdefault(name, []).append(sub)
    for key, value in body.items():
        if key not in properties:
            return f"{where}.{key}"
        error = known_keys_error(spec, properties[key], value, f"{where}.{key}")
        if error:
            return error
    return None


def _merged(spec: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "$ref" in schema:
        target: Any = spec
        for step in schema["$ref"].lstrip("#/").split("/"):
            target = target[step]
        yield from _merged(spec, target)
        return
    yield schema
    for combined in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from _merged(spec, combined)


@pytest.mark.parametrize("change", list(changes()), ids=lambda c: f"{c.address}:{c.action}")
def test_request_body_validates_against_the_operation_schema(spec: dict[str, Any], change: Change) -> None:
    if change.request.body is None:
        assert change.request.method == "DELETE"
        return
    body = reveal(change.request.body)
    schema = operation_schema(spec, change)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft4Validator(schema).iter_errors(body)]
    assert errors == []
    assert known_keys_error(spec, [schema], body, "body") is None
