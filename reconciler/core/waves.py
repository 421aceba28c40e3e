"""Wave arithmetic of a rollout (DESIGN §9.3): pure, and the same canaries every time.

The vehicles with changes are ordered by the SHA-256 of their VIN — stable,
and unrelated to the fleet file's order — and wave k covers the first
ceil(share * N) of them (at least one, never fewer than the wave before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .durations import Share


def order(vins: Iterable[str]) -> list[str]:
    """``vins`` in rollout order: by the SHA-256 of the VIN."""
    return sorted(set(vins), key=lambda vin: hashlib.sha256(vin.encode()).digest())


def ends(waves: Sequence[Share], count: int) -> tuple[int, ...]:
    """Where each wave ends in the ordered vehicles: cumulative, each at least 1, the last ``count``."""
    if count <= 0:
        return ()
    result: list[int] = []
    for share in waves:
        end = min(count, max(1, share.of(count), result[-1] if result else 0))
        if result and end == result[-1]:
            continue  # an empty wave: nothing would happen in it
        result.append(end)
    if not result or result[-1] < count:
        result.append(count)
    return tuple(result)


def budget(max_failures: Share | None, wave_size: int) -> int:
    """How many of a wave's vehicles may fail before the rollout halts.

    A percentage is of the wave's own vehicles, rounded down, and never below
    one vehicle (a 5% canary wave of 2 is not halted by its first failure); a
    number is taken as it is (``maxFailures: 0``: any failure halts). Without
    ``maxFailures``, no failure halts.
    """
    if max_failures is None:
        return wave_size
    if not max_failures.percent:
        return int(max_failures.value)
    return max(1, int(max_failures.value * wave_size / 100 + 1e-9))


def breached(failed: int, max_failures: Share | None, wave_size: int) -> bool:
    """Whether ``failed`` vehicles of a wave of ``wave_size`` exceed the failure budget."""
    return failed > budget(max_failures, wave_size)


def members(vins: Sequence[str], wave_ends: Sequence[int], wave: int) -> list[str]:
    """The vehicles of wave ``wave`` alone."""
    start = wave_ends[wave - 1] if wave else 0
    return list(vins[start : wave_ends[wave]])


@dataclass(frozen=True)
class Judgement:
    """What is known of a wave: its vehicles that failed (and why), and those whose outcome is not known."""

    failed: Mapping[str, str]
    unknown: frozenset[str]

    @property
    def complete(self) -> bool:
        return not self.unknown


def judge(
    wave: Iterable[str], entries: Iterable[tuple[str, str, str, str]], to_send: Collection[tuple[str, str]] = ()
) -> Judgement:
    """A wave's outcome, from outcomes only.

    ``entries`` are its vehicles' actions since it began, (vin, address,
    status, cause), oldest first: the latest of each address counts. A vehicle
    fails when one of its addresses ended failed; its outcome is not known
    while one is under way, was not sent (``NotSent``: a spent quota, an
    interrupt), or is among ``to_send`` — (vin, address) it still has to send —
    with nothing journaled since the wave began.
    """
    members = set(wave)
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for vin, address, status, cause in entries:
        if vin in members:
            latest[(vin, address)] = (status, cause)
    failed: dict[str, str] = {}
    unknown: set[str] = set()
    for (vin, _), (status, cause) in latest.items():
        if status in UNDER_WAY or status == NOT_SENT:
            unknown.add(vin)
        elif status not in ENDED_WELL:
            failed.setdefault(vin, cause or status)
    unknown |= {vin for vin, address in to_send if vin in members and (vin, address) not in latest}
    return Judgement(failed, frozenset(unknown - set(failed)))


UNDER_WAY = ("Sending", "Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle")
ENDED_WELL = ("Success", "AlreadyDone")
NOT_SENT = "NotSent"  # journaled, then not sent: a spent quota, an interrupt
