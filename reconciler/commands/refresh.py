"""``reconciler refresh``: record what the API reports (listing, capabilities, status), sending nothing."""

from __future__ import annotations

from ..core.vocabulary import Result
from ..render.report import RefreshLine
from ..run.refreshing import refresh_fleet
from .shell import Shell


def run(shell: Shell, fleet_file: str, *, lock_timeout: float, parallelism: int, refresh_capabilities: bool) -> int:
    line = RefreshLine(shell.stderr) if shell.terminal else None
    try:
        done = refresh_fleet(
            fleet_file,
            shell.env,
            lock_timeout=lock_timeout,
            parallelism=parallelism,
            refresh_capabilities=refresh_capabilities,
            told=line,
        )
    finally:
        if line is not None:
            line.close()
    out = shell.stdout
    out.write(f"Refreshed fleet {done.fleet} from the API (the state locked, nothing sent):\n")
    out.write(f"  listing: {done.listed:,} vehicles ({done.joined:,} joined, {done.left:,} left since)\n")
    out.write(f"  status: {done.statuses:,} managed vehicles read\n")
    known = f", {done.capabilities_known:,} known already" if done.capabilities_known else ""
    out.write(f"  capabilities: {done.capabilities_read:,} read and recorded{known}\n")
    if done.settled:
        said = ", ".join(f"{n:,} {result}" for result, n in sorted(done.settled.items()))
        out.write(f"  actions earlier runs left pending: {said}\n")
    out.write(f"  already in place: {done.adopted:,} address(es) recorded\n")
    if done.drift:
        out.write(f"  drift: {done.drift:,} address(es) changed outside reconciler (reconciler plan puts them back)\n")
    out.write("Plans now read no capabilities for the vehicles recorded here.\n")
    return 4 if done.settled.get(Result.PENDING) else 0
