"""A plain httpx client for the simulator: what any API client would do, no reconciler code."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from reconciler.simulator.server import Connection


def client(connection: Connection, *, cert: bool = True, auth: httpx.Auth | None = None, **kwargs: Any) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(connection.material.ca_cert))
    if cert:
        context.load_cert_chain(str(connection.material.client_cert), str(connection.material.client_key))
    credentials = connection.credentials
    return httpx.Client(
        base_url=f"{connection.url}/fleets/{connection.fleet}",
        verify=context,
        auth=auth or ClientAuth(credentials.username, credentials.password, credentials.client_id),
        **kwargs,
    )


class ClientAuth(httpx.BasicAuth):
    """HTTP Basic plus ``client_id`` added to the query, keeping the query a URL already has.

    (A client-level ``params=`` would replace the query of the ``_links.next`` hrefs.)
    """

    def __init__(self, username: str, password: str, client_id: str) -> None:
        super().__init__(username, password)
        self.client_id = client_id

    def auth_flow(self, request: httpx.Request) -> Any:
        if "client_id" not in request.url.params:
            request.url = request.url.copy_merge_params({"client_id": self.client_id})
        yield from super().auth_flow(request)


def callback_body(
    target: str = "https://hooks.example.com/x", types: tuple[str, ...] = ("ThermalPreconditioning",), **extra: Any
) -> dict[str, Any]:
    return {"label": "t", "callback": {"webhook": {"target": target, "name": "t"}}, "remoteTypes": list(types), **extra}


def air_set(slot: int, start: str = "PT7H30M", days: tuple[str, ...] = ("Mon", "Tue")) -> dict[str, Any]:
    return {
        "actionsType": "Set",
        "slot": slot,
        "enabled": True,
        "recurrence": "Daily",
        "start": start,
        "occurence": {"day": list(days)},
    }
