"""Carrying out callback changes: create (or adopt), update, pause/resume, delete; each journaled."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..api.observe import unlabeled_match
from ..core import spec
from ..core.changes import Change
from ..core.outcomes import Outcome
from ..core.sensitive import reveal, seal_callback
from ..core.vocabulary import Action, Result
from ..errors import (
    ApiError,
    AuthError,
    Cancelled,
    NotFoundError,
    RateLimitedError,
    ReconcilerError,
    UnknownOutcome,
    UnreachableError,
)
from ..state.base import JournalEntry
from .context import RunContext, sealed

_FATAL = (AuthError, UnreachableError)


class CallbackSteps:
    """The callback calls of one run; remembers the ids it made or learnt for the actions that follow."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.ids: dict[str, str] = {}
        self._listed: dict[str, dict[str, Any]] | None = None

    def carry_out(self, change: Change) -> Outcome:
        """Create, update, pause or resume one callback."""
        ctx = self.ctx
        label = _label(change)
        wanted = ctx.desired.callbacks[label]
        body = reveal(change.request.body)
        key = ctx.fingerprint_key
        try:
            if change.action == Action.CREATE:
                existing = self._existing().get(label)
                if existing is not None:
                    return self._adopt(change, label, existing)
                created: list[str] = []

                def record_created(answer: Any) -> None:
                    created.append(str(answer["callbackId"]))
                    ctx.store.record_callback(label, created[0], replace(seal_callback(wanted, key), status="Running"))

                self._journaled(change, "POST", f"{ctx.fleet_api}/remote/callbacks", body, record_created)
                self.ids[label] = created[0]
                return Outcome(change.address, Result.CONFIRMED, f"created {created[0]}")
            adopting = label not in self.ids and label not in ctx.store.callbacks()
            cb_id = self.id_of(label, change)
            if change.action == Action.UPDATE:
                # A PUT keeps the status; a callback adopted now keeps the one the API reported.
                status = str((change.before or {}).get("status") or self._recorded_status(label))

                def record_update(_: Any) -> None:
                    ctx.store.record_callback(label, cb_id, replace(seal_callback(wanted, key), status=status))
                    if adopting:
                        ctx.store.add_history(change.address, "adopted", f"{cb_id}, updated to the fleet file")

                self._journaled(change, "PUT", f"{ctx.fleet_api}/remote/callbacks/{cb_id}", body, record_update)
                if adopting:
                    return Outcome(change.address, Result.CONFIRMED, f"adopted {cb_id} and updated it")
                return Outcome(change.address, Result.CONFIRMED, f"updated {cb_id}")

            def record_status(_: Any) -> None:
                recorded = ctx.store.callbacks().get(label)
                config = recorded.config if recorded else seal_callback(wanted, key)
                ctx.store.record_callback(label, cb_id, replace(config, status=body["status"]))

            self._journaled(change, "PUT", f"{ctx.fleet_api}/remote/callbacks/{cb_id}/status", body, record_status)
            return Outcome(change.address, Result.CONFIRMED, f"{change.action}d {cb_id}")
        except _FATAL:
            raise
        except Cancelled:
            return Outcome(change.address, Result.SKIPPED, "interrupted before it was sent")
        except RateLimitedError as exc:  # a 429 is a refusal: nothing was done
            return Outcome(change.address, Result.SKIPPED, f"not sent: the API's quota is spent ({exc})")
        except (ApiError, UnknownOutcome) as exc:
            ctx.store.add_history(change.address, "failed", str(exc))
            return Outcome(change.address, Result.FAILED, str(exc))

    def delete(self, change: Change) -> Outcome:
        """Delete a callback the file no longer has, once nothing is pending on it."""
        ctx = self.ctx
        label = _label(change)
        pending = [e for e in ctx.store.journal(pending_only=True) if e.callback == label and e.vin]
        if pending:
            return Outcome(change.address, Result.SKIPPED, f"{len(pending)} action(s) still pending on it")
        cb_id = self.id_of(label)
        path = f"{ctx.fleet_api}/remote/callbacks/{cb_id}"
        key = f"{change.address}:DELETE:{time.time_ns()}"
        ctx.store.journal_start(JournalEntry(key, change.address, None, label, None, "DELETE", {"path": path}, None))
        try:
            ctx.api.delete(path)
        except NotFoundError:
            pass  # already gone
        except _FATAL:
            raise
        except Cancelled:
            ctx.store.journal_update(key, "NotSent")
            return Outcome(change.address, Result.SKIPPED, "interrupted before it was sent")
        except ApiError as exc:
            ctx.store.journal_update(key, "Failed", failure_cause=str(exc))
            return Outcome(change.address, Result.FAILED, str(exc))
        with ctx.store.transaction():
            ctx.store.journal_update(key, "Done")
            ctx.store.forget_callback(label)
            ctx.store.add_history(change.address, "delete", cb_id)
        return Outcome(change.address, Result.CONFIRMED, f"deleted {cb_id}")

    def id_of(self, label: str, change: Change | None = None) -> str:
        """The callback's id: made this run, recorded, or (adopting one refresh found) in the planned path."""
        if label not in self.ids:
            recorded = self.ctx.store.callbacks().get(label)
            planned = _cbid_in(change.request.path) if change is not None else None
            if recorded is not None:
                self.ids[label] = recorded.id
            elif planned:
                self.ids[label] = planned
            else:
                raise ReconcilerError(f"callback {label} has no recorded id")
        return self.ids[label]

    def _adopt(self, change: Change, label: str, existing: dict[str, Any]) -> Outcome:
        """A callback with our label exists (an earlier run's answer was lost, or the state): use it."""
        ctx = self.ctx
        cb_id = str(existing["id"])
        self.ids[label] = cb_id
        wanted = ctx.desired.callbacks[label]
        body = reveal(change.request.body)
        status = str(existing.get("status", "Running"))

        def record(_: Any) -> None:
            ctx.store.record_callback(label, cb_id, replace(seal_callback(wanted, ctx.fingerprint_key), status=status))
            ctx.store.add_history(change.address, "adopted", cb_id)

        if existing.get("subscribe") != body:
            self._journaled(change, "PUT", f"{ctx.fleet_api}/remote/callbacks/{cb_id}", body, record)
        else:
            with ctx.store.transaction():
                record(None)
        return Outcome(change.address, Result.CONFIRMED, f"adopted existing {cb_id}")

    def _existing(self) -> dict[str, dict[str, Any]]:
        """The fleet's callbacks by label; one without a label found as a declared one's (``unlabeled_match``)."""
        if self._listed is None:
            listed = list(self.ctx.api.pages(f"{self.ctx.fleet_api}/remote/callbacks", "callbacks"))
            self._listed = {
                str(cb["subscribe"]["label"]): cb for cb in listed if (cb.get("subscribe") or {}).get("label")
            }
            recorded = self.ctx.store.callbacks()
            taken = {str(cb.get("id")) for cb in self._listed.values()} | {cb.id for cb in recorded.values()}
            for label, wanted in self.ctx.desired.callbacks.items():
                found = None if label in self._listed else unlabeled_match(listed, wanted, taken)
                if found is not None:
                    self._listed[label] = found
                    taken.add(str(found.get("id")))
        return self._listed

    def _recorded_status(self, label: str) -> str:
        recorded = self.ctx.store.callbacks().get(label)
        return recorded.config.status if recorded else spec.CALLBACK_RUNNING

    def _journaled(self, change: Change, method: str, path: str, body: Any, record: Callable[[Any], None]) -> Any:
        """Journal, send, then record the answer (``record``) in the transaction that ends the entry."""
        ctx = self.ctx
        key = f"{change.key or change.address}:{method}:{path}:{time.time_ns()}"
        ctx.store.journal_start(
            JournalEntry(
                key,
                change.address,
                None,
                change.callback,
                None,
                method,
                {"path": path, "body": sealed(change.request.body)},
                change.after,
            )
        )
        try:
            answer = ctx.api.put(path, body) if method == "PUT" else ctx.api.post(path, body)
        except Cancelled:
            ctx.store.journal_update(key, "NotSent")
            raise
        except RateLimitedError as exc:
            ctx.store.journal_update(key, "NotSent", failure_cause=str(exc))
            raise
        except (ApiError, UnknownOutcome) as exc:
            ctx.store.journal_update(key, "Failed", failure_cause=str(exc))
            raise
        with ctx.store.transaction():
            ctx.store.journal_update(key, "Done")
            ctx.store.add_history(change.address, change.action, f"{method} {path}")
            record(answer)
        return answer


def _label(change: Change) -> str:
    return change.callback or change.address.split(".", 1)[1]


def _cbid_in(path: str) -> str | None:
    """The id in ``/fleets/F/remote/callbacks/{cbid}[/status]``, unless it is still the placeholder."""
    rest = path.split("/remote/callbacks/", 1)[1] if "/remote/callbacks/" in path else ""
    cb_id = rest.split("/", 1)[0]
    return cb_id if cb_id and cb_id != "{cbid}" else None
