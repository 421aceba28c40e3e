"""Saved plans (``plan --out``): the JSON plan plus what apply needs to check it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..core.changes import Plan
from ..errors import PlanFileError, ReconcilerError
from ..render import json_plan

KIND = "reconciler-plan"


def write(path: str | Path, plan: Plan, fleet_file: str | Path) -> None:
    """Write ``plan`` to ``path`` atomically (a temp file beside it, then ``os.replace``).

    Only a new file or an earlier saved plan is replaced: never the fleet file,
    a device, a directory, a symlink or any other file that happens to be there.
    """
    source = Path(fleet_file).resolve()
    target = Path(path)
    check_writable(target, source)
    origin = {"file": str(source), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    # Streamed into the file change by change: a 100,000-vehicle plan is never one string in memory.
    write_atomically(
        target, lambda out: json_plan.write(plan, out, first={"kind": KIND}, last={"source": origin}), what="the plan"
    )


def check_writable(target: Path, source: Path) -> None:
    """Refuse to save a plan over anything but a plan."""
    try:
        info = target.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ReconcilerError(f"--out {target}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise ReconcilerError(f"--out {target} exists and is not a regular file; choose another name")
    if target.resolve() == source:
        raise ReconcilerError(f"--out {target} is the fleet file itself; choose another name")
    if not _is_plan(target):
        raise ReconcilerError(f"--out {target} exists and is not a saved plan; remove it first or choose another name")


def write_atomically(target: Path, text: str | Callable[[TextIO], None], *, what: str, mode: int = 0o644) -> None:
    """Write ``text`` (or what ``text`` writes to the stream it is given) to a temp file beside
    ``target``, then rename it over: never half a file."""
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.resolve().parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            if isinstance(text, str):
                out.write(text)
            else:
                text(out)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise ReconcilerError(f"cannot write {what} to {target}: {exc.strerror or exc}") from exc


def _is_plan(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    return head == b"" or b'"kind": "reconciler-plan"' in head or b'"kind":"reconciler-plan"' in head


def read(path: str | Path) -> dict[str, Any]:
    """The saved plan at ``path``, checked to be one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file") from None
    except json.JSONDecodeError as exc:
        if _looks_like_a_fleet_file(text):
            raise PlanFileError(
                f"{path} is a fleet file, not a saved plan; did you mean `reconciler apply -f {path}`? "
                f"(apply PLAN takes a plan saved by `reconciler plan -f {path} --out PLAN`)"
            ) from None
        raise PlanFileError(f"{path} is not a saved plan (reconciler plan --out writes those): {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"{path} is not a saved plan: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise PlanFileError(f"{path} is not a plan saved by reconciler plan --out")
    return document


def _looks_like_a_fleet_file(text: str) -> bool:
    """A YAML document with the keys every fleet file starts with."""
    keys = {line.split(":", 1)[0].strip() for line in text.splitlines()[:50] if ":" in line and not line[:1].isspace()}
    return bool(keys & {"apiVersion", "fleet"}) and bool(
        keys & {"vehicles", "callbacks", "groups", "profiles", "fleet"}
    )
