"""A rollout's bookkeeping in the state: how its wave stands (from the journal), and its history."""

from __future__ import annotations

from ..core import rollout as rollout_
from ..core.model import Rollout
from ..core.vocabulary import RolloutState
from ..state.base import StateStore


def wave_entries(store: StateStore, rollout: Rollout | None) -> list[rollout_.Entry]:
    """The journal's remote actions of the vehicles of the wave under way, since it began."""
    if rollout is None or rollout.state != RolloutState.RUNNING or not rollout.wave_started_at:
        return []
    positions = rollout.positions()
    return [e for e in store.actions_since(rollout.wave_started_at) if rollout.wave_of(e[0], positions) == rollout.wave]


def save(store: StateStore, before: Rollout | None, after: Rollout) -> None:
    """Record where the rollout stands, and say in the history what changed."""
    store.save_rollout(after)
    where = f"rollout {after.id}"
    if before is None or before.id != after.id:
        if before is not None and before.state in (RolloutState.RUNNING, RolloutState.HALTED):
            store.add_history(None, "rollout replaced", f"rollout {before.id}: the fleet file changed")
        store.add_history(None, "rollout started", f"{where}: {len(after.vins)} vehicles in {after.waves} waves")
        return
    if after.state == RolloutState.HALTED and before.state != RolloutState.HALTED:
        store.add_history(None, "rollout halted", f"{where}: {after.halt}")
    elif before.state == RolloutState.HALTED and after.state == RolloutState.RUNNING:
        store.add_history(None, "rollout continued", f"{where}: wave {after.wave + 1}, failed vehicles retried")
    elif after.state == RolloutState.DONE and before.state != RolloutState.DONE:
        store.add_history(None, "rollout done", f"{where}: all {after.waves} waves")
    elif after.wave != before.wave:
        store.add_history(None, "rollout wave", f"{where}: wave {after.wave + 1} of {after.waves}")
