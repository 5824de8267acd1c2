"""The ACD part of the JSON API: queues, agents and their states, waiting work items.

``GET /api/queues``, ``GET /api/agents``, ``GET /api/agents/{ext}``,
``POST /api/agents/{ext}/state`` with ``{"state": "available" | "not_ready" |
"logged_out", "reason": "break"}``, ``GET /api/items[?queue=support]``.
A refused state change is a 4xx with ``{"error": "..."}`` and changes nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from cosmo.acd.errors import AcdError
from cosmo.web.api import json_error, json_object_body

__all__ = ["ACD", "AcdApi", "add_acd_routes"]

AGENT_STATES = ("available", "not_ready", "logged_out")


class AcdApi(Protocol):
    """What the API needs of the ACD (``cosmo.acd.service.AcdService``)."""

    def queues_view(self) -> list[dict[str, Any]]: ...

    def agents_view(self) -> list[dict[str, Any]]: ...

    def agent_view(self, extension: str) -> dict[str, Any]: ...

    def items_view(self, queue: str | None = None) -> list[dict[str, Any]]: ...

    def set_agent_state(self, extension: str, state: str, reason: str | None = None) -> object: ...

    async def flush(self) -> None: ...


ACD = web.AppKey("acd", AcdApi)


def _acd_error(exc: Exception) -> web.Response:
    status = getattr(exc, "status", 400)
    return json_error(status if isinstance(status, int) and 400 <= status < 500 else 400, str(exc))


async def list_queues(request: web.Request) -> web.Response:
    """``GET /api/queues``: each queue's waiting items, agents, service level and estimated wait."""
    return web.json_response({"queues": request.app[ACD].queues_view()})


async def list_agents(request: web.Request) -> web.Response:
    """``GET /api/agents``: every agent's state."""
    return web.json_response({"agents": request.app[ACD].agents_view()})


async def get_agent(request: web.Request) -> web.Response:
    """``GET /api/agents/{ext}``."""
    try:
        return web.json_response(request.app[ACD].agent_view(request.match_info["ext"]))
    except AcdError as exc:
        return _acd_error(exc)


async def set_agent_state(request: web.Request) -> web.Response:
    """``POST /api/agents/{ext}/state``: log in (available), pause (not_ready + reason), log out."""
    body = await json_object_body(request)
    state, reason = body.get("state"), body.get("reason")
    if state not in AGENT_STATES:
        return json_error(400, f"'state' must be one of {', '.join(AGENT_STATES)}, got {state!r}")
    if reason is not None and not isinstance(reason, str):
        return json_error(400, "'reason' must be a string")
    extension = request.match_info["ext"]
    acd = request.app[ACD]
    try:
        acd.set_agent_state(extension, str(state), reason)
    except AcdError as exc:
        return _acd_error(exc)
    await acd.flush()  # the state answered is the state stored
    return web.json_response(acd.agent_view(extension))


async def list_items(request: web.Request) -> web.Response:
    """``GET /api/items[?queue=name]``: waiting work items in routing order."""
    queue = request.query.get("queue") or None
    try:
        return web.json_response({"items": request.app[ACD].items_view(queue)})
    except AcdError as exc:
        return _acd_error(exc)


def add_acd_routes(app: web.Application, acd: AcdApi) -> None:
    """Mount the ACD endpoints on ``app``."""
    app[ACD] = acd
    app.router.add_get("/api/queues", list_queues)
    app.router.add_get("/api/agents", list_agents)
    app.router.add_get("/api/agents/{ext}", get_agent)
    app.router.add_post("/api/agents/{ext}/state", set_agent_state)
    app.router.add_get("/api/items", list_items)
