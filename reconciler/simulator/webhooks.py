"""Webhook delivery as the API does it: attributes, batch notify, retry policy.

Events wait in a queue per callback. A callback without ``batchNotify`` posts
each event alone; with it, events go out when ``size`` are waiting or the
oldest has waited ``timeWindow`` seconds ($vin as a header or query attribute
makes every event go alone, as the API documents). A non-2xx answer or a
connection failure is retried: policy None once, Bounded ``retryNumber`` times,
Always for three days, ``retryDelay`` seconds apart.

Only loopback targets are ever contacted: the simulator runs on developers'
machines and in CI, and must never post to a real host. Events for other
targets are logged as undeliverable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import spec
from .clock import Clock
from .engine import Callback
from .validation import is_loopback

DEFAULT_RETRY_DELAY = 10
DEFAULT_TIME_WINDOW = 60


@dataclass
class Delivery:
    """One batch of events for one callback, and how its attempts went."""

    callback_id: str
    events: list[dict[str, Any]]
    first_queued: float
    attempts: int = 0
    next_attempt: float = 0.0
    outcome: str = "queued"  # queued, delivered, failed, undeliverable
    answers: list[str] = field(default_factory=list)


class Deliverer:
    """Queues events from the engine and posts them when due."""

    def __init__(self, clock: Clock, fleet_id: str, transport: httpx.BaseTransport | None = None) -> None:
        self.clock = clock
        self.fleet_id = fleet_id
        self._queues: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self._callbacks: dict[str, Callback] = {}
        self._retrying: list[Delivery] = []
        self.log: list[Delivery] = []
        self._lock = threading.RLock()
        self._client = httpx.Client(timeout=5.0, transport=transport)

    def enqueue(self, callback: Callback, event: dict[str, Any]) -> None:
        with self._lock:
            self._callbacks[callback.id] = callback
            self._queues.setdefault(callback.id, []).append((event, self.clock.now()))

    def deliver_due(self) -> None:
        """Post every batch whose time has come, and every retry that is due."""
        now = self.clock.now()
        with self._lock:
            batches = self._due_batches(now)
            retries = [d for d in self._retrying if d.next_attempt <= now]
            self._retrying = [d for d in self._retrying if d.next_attempt > now]
        for delivery in batches + retries:
            self._attempt(delivery)

    def _due_batches(self, now: float) -> list[Delivery]:
        due = []
        for cbid, queue in self._queues.items():
            callback = self._callbacks[cbid]
            size, window = _batching(callback)
            while queue and (len(queue) >= size or now - queue[0][1] >= window):
                taken, queue[:] = queue[:size], queue[size:]
                due.append(Delivery(cbid, [event for event, _ in taken], taken[0][1]))
        return due

    def _attempt(self, delivery: Delivery) -> None:
        callback = self._callbacks[delivery.callback_id]
        delivery.attempts += 1
        request = self._request(callback, delivery.events)
        if request is None:
            delivery.outcome = "undeliverable"
            delivery.answers.append("target is not on this machine: not sent")
            self._record(delivery)
            return
        try:
            answer = self._client.send(request)
            ok = 200 <= answer.status_code < 300
            delivery.answers.append(str(answer.status_code))
        except httpx.HTTPError as exc:
            ok = False
            delivery.answers.append(type(exc).__name__)
        if ok:
            delivery.outcome = "delivered"
        elif self._may_retry(callback, delivery):
            delivery.outcome = "retrying"
            delivery.next_attempt = self.clock.now() + _retry_delay(callback)
            with self._lock:
                self._retrying.append(delivery)
            return
        else:
            delivery.outcome = "failed"
        self._record(delivery)

    def _may_retry(self, callback: Callback, delivery: Delivery) -> bool:
        policy = callback.subscribe.get("retryPolicy") or {"policy": "None"}
        retries_done = delivery.attempts - 1
        if policy["policy"] == "Always":
            return self.clock.now() - delivery.first_queued < spec.ALWAYS_RETRY_FOR
        if policy["policy"] == "Bounded":
            return retries_done < int(policy.get("retryNumber", 3))
        return retries_done < 1  # None: a single retry

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.log.append(delivery)

    def _request(self, callback: Callback, events: list[dict[str, Any]]) -> httpx.Request | None:
        webhook = callback.subscribe["callback"]["webhook"]
        url = webhook["target"]
        if not is_loopback(url):
            return None
        first = events[0]
        variables = {
            "$vin": first["vin"],
            "$callbackID": callback.id,
            "$remoteType": first["remoteType"],
            "$fleetID": self.fleet_id,
        }
        headers: dict[str, str] = {}
        params: dict[str, str] = {}
        body_attributes = []
        for attribute in webhook.get("attributes", []):
            value = variables.get(attribute["value"], attribute["value"])
            if attribute["type"] == "Header":
                headers[attribute["key"]] = value
            elif attribute["type"] == "Query":
                params[attribute["key"]] = value
            else:
                body_attributes.append({"key": attribute["key"], "value": value})
        body = {"callbackId": callback.id, "attributes": body_attributes, "events": events}
        return self._client.build_request("POST", url, params=params, headers=headers, json=body)

    def close(self) -> None:
        self._client.close()


def _batching(callback: Callback) -> tuple[int, float]:
    batch = callback.subscribe.get("batchNotify")
    attributes = callback.subscribe["callback"]["webhook"].get("attributes", [])
    per_vehicle = any(a["value"] == "$vin" and a["type"] in ("Header", "Query") for a in attributes)
    if not batch or per_vehicle:
        return 1, 0.0
    return int(batch["size"]), float(batch.get("timeWindow", DEFAULT_TIME_WINDOW))


def _retry_delay(callback: Callback) -> float:
    policy = callback.subscribe.get("retryPolicy") or {}
    return float(policy.get("retryDelay", DEFAULT_RETRY_DELAY))
