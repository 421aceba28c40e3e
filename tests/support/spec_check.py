"""Validation of simulator responses against the official OpenAPI file, when it is beside the project."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator

from reconciler.fleetfile.yaml_source import load

BASE = "/connectedcar/v3"


class SpecChecker:
    """Finds the response schema of the operation a response answers, and validates the body."""

    def __init__(self, path: Path) -> None:
        # Read as YAML 1.2: under PyYAML's YAML 1.1 the spec's own `enum: [ No, Slow, Quick ]`
        # (chargingMode) would list False instead of "No".
        self.spec: dict[str, Any] = load(path.read_text(), path.name).data
        self.routes = []
        for template, operations in self.spec["paths"].items():
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", template.strip().strip("'"))
            self.routes.append((re.compile(pattern + r"\Z"), template, operations))
        # Most specific first: /remotes/{rid} before /remotes.
        self.routes.sort(key=lambda r: -len(r[1]))
        self.checked = 0

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        for pattern, _, operations in self.routes:
            if pattern.match(path):
                responses = operations[method.lower()]["responses"]
                response = responses.get(status) or responses.get(str(status)) or responses.get("default")
                if response is None:
                    raise AssertionError(f"{method} {path}: status {status} is not documented")
                response = self._resolve(response)
                content = response.get("content") or {}
                for media, body in content.items():
                    if media.strip().endswith("json"):
                        return body["schema"]  # type: ignore[no-any-return]
                return None
        raise AssertionError(f"{method} {path} is not an operation of the API")

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for step in node["$ref"].lstrip("#/").split("/"):
                target = target[step]
            node = target
        return node

    def check(self, response: httpx.Response) -> None:
        response.read()
        path = response.request.url.path.removeprefix(BASE)
        schema = self.schema_for(response.request.method, path, response.status_code)
        if schema is None or not response.content:
            return
        root = {**schema, "components": self.spec["components"], "x-fragment": self.spec.get("x-fragment")}
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft4Validator(root).iter_errors(response.json())]
        if errors:
            raise AssertionError(f"{response.request.method} {path} {response.status_code}: {errors[:5]}")
        self.checked += 1
