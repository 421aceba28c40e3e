"""Keeping the state small: finished actions and history older than a while are dropped (DESIGN §10.3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..core.vocabulary import RolloutState
from ..state.base import Pruned, StateStore

DEFAULT_OLDER_THAN = 90 * 86400.0


def prune(store: StateStore, older_than: float, now: datetime) -> tuple[Pruned, str]:
    """Drop what is older than ``older_than`` seconds before ``now``; what was dropped, and the cut-off.

    The caller holds the state lock. What the rollout's wave under way is
    judged on is kept whatever its age.
    """
    cutoff = (now - timedelta(seconds=older_than)).isoformat(timespec="seconds")
    rollout = store.read().rollout
    keep_since = ""
    if rollout is not None and rollout.state == RolloutState.RUNNING and rollout.wave_started_at:
        keep_since = rollout.wave_started_at
    return store.prune(cutoff, keep_since=keep_since), cutoff


def said(pruned: Pruned, cutoff: str) -> str:
    """``Pruned the state of what ended before …: 1,200 actions (4,800 statuses), 3,000 history entries; kept …``."""
    kept = f"; kept {pruned.kept:,} older action(s): still pending, or the last of their address" if pruned.kept else ""
    return (
        f"Pruned what ended before {cutoff}: {pruned.actions:,} finished action(s) ({pruned.events:,} statuses), "
        f"{pruned.history:,} history entr{'y' if pruned.history == 1 else 'ies'}{kept}."
    )
