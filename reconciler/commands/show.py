"""``reconciler show PLAN``: render a saved plan again (text, JSON or Markdown), as `terraform show` does."""

from __future__ import annotations

from pathlib import Path

from ..errors import PlanFileError
from ..render import plans, reading
from ..run import saved_plan
from .shell import Shell


def run(shell: Shell, plan_file: str, fmt: str) -> int:
    document = saved_plan.read(plan_file)
    if fmt == "json":  # the plan as saved, byte for byte: what apply will check
        shell.stdout.write(Path(plan_file).read_text(encoding="utf-8"))
        return 0
    try:
        plan = reading.plan_of(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{plan_file} is not a plan this version can show: {type(exc).__name__} {exc}") from exc
    source = document.get("source") or {}
    if fmt == "text" and source.get("file"):
        shell.stdout.write(f"Saved plan of {source['file']} (sha256 {str(source.get('sha256', ''))[:12]}…)\n\n")
    plans.write(plan, fmt, shell.stdout, color=shell.color, env=shell.env)
    return 0
