"""A plan in the format asked for: what ``plan`` and ``show`` print."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from ..core.changes import Plan
from . import json_plan, markdown, text


def write(plan: Plan, fmt: str, out: TextIO, *, color: bool = False, env: Mapping[str, str] | None = None) -> None:
    """The plan in ``fmt`` (text, json, markdown); ``env`` says which commit and CI run made it (Markdown's footer)."""
    if fmt == "json":
        json_plan.write(plan, out)
    elif fmt == "markdown":
        out.write(markdown.render(plan, ci=env))
    else:
        text.write(plan, out, color=color)
