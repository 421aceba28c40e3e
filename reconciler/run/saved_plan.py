"""Saved plans (``plan --out``): the JSON plan plus what apply needs to check it."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..core.changes import Plan
from ..errors import PlanFileError, ReconcilerError
from ..render.json_plan import dumps, plan_document

KIND = "reconciler-plan"


def write(path: str | Path, plan: Plan, fleet_file: str | Path) -> None:
    """Write ``plan`` to ``path`` atomically (a temp file, then ``os.replace``)."""
    source = Path(fleet_file).resolve()
    document: dict[str, Any] = {
        "kind": KIND,
        **plan_document(plan),
        "source": {"file": str(source), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()},
    }
    target = Path(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.resolve().parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(dumps(document) + "\n")
        os.replace(temp, target)
    except OSError as exc:
        raise ReconcilerError(f"cannot write the plan to {path}: {exc}") from exc


def read(path: str | Path) -> dict[str, Any]:
    """The saved plan at ``path``, checked to be one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path} is not a saved plan: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise PlanFileError(f"{path} is not a plan saved by reconciler plan --out")
    return document
