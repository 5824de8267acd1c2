"""The configuration part of the JSON API: reload, and agents and queues changed at run time.

``POST /api/reload`` re-reads the configuration file; ``PUT /api/agents/{ext}``,
``DELETE /api/agents/{ext}``, ``PUT /api/queues/{name}`` and
``DELETE /api/queues/{name}`` change one agent or queue.  Every change is
validated whole (the same checks as the file) and applied without dropping a
call or a waiting item; a refused one changes nothing and answers 4xx with
``{"error": ..., "problems": [...]}``: 422 for an invalid definition, 409 for a
change the current work forbids (removing a logged-in agent, or a queue that
still holds items), 404 for an unknown name.

Changes made through the API last until the next reload or restart, which
take the file as it is: make lasting changes in the file.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from cosmo.web.api import json_object_body

__all__ = ["CONFIGURATION", "ConfigChange", "ConfigChangeRefused", "Configuration", "add_config_routes"]


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """What a reload or an API change did."""

    changes: list[str] = field(default_factory=list)
    """What changed, in words (``agent 1006 added``, ``queue billing changed``)."""
    restart_needed: list[str] = field(default_factory=list)
    """Sections that differ but apply only at the next start (listeners, database...)."""


class ConfigChangeRefused(Exception):
    """A configuration change was refused; nothing changed."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


class Configuration(Protocol):
    """What the API needs of the node's configuration (``cosmo.server.CosmoServer``)."""

    async def reload(self) -> ConfigChange: ...

    async def put_agent(self, extension: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...

    async def delete_agent(self, extension: str) -> ConfigChange: ...

    async def put_queue(self, name: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...

    async def delete_queue(self, name: str) -> ConfigChange: ...


CONFIGURATION = web.AppKey("configuration", Configuration)


async def _respond(action: Awaitable[ConfigChange | tuple[bool, dict[str, Any]]]) -> web.Response:
    try:
        result = await action
    except ConfigChangeRefused as exc:
        return web.json_response({"error": str(exc), "problems": exc.problems}, status=exc.status)
    if isinstance(result, ConfigChange):
        return web.json_response({"changes": result.changes, "restart_needed": result.restart_needed})
    created, view = result
    return web.json_response(view, status=201 if created else 200)


async def reload(request: web.Request) -> web.Response:
    """``POST /api/reload``: re-read the configuration file and apply it."""
    return await _respond(request.app[CONFIGURATION].reload())


async def put_agent(request: web.Request) -> web.Response:
    """``PUT /api/agents/{ext}``: add or change an agent (``name``, ``password``, ``skills``...)."""
    body = await json_object_body(request)
    return await _respond(request.app[CONFIGURATION].put_agent(request.match_info["ext"], body))


async def delete_agent(request: web.Request) -> web.Response:
    """``DELETE /api/agents/{ext}``: remove a logged-out agent."""
    return await _respond(request.app[CONFIGURATION].delete_agent(request.match_info["ext"]))


async def put_queue(request: web.Request) -> web.Response:
    """``PUT /api/queues/{name}``: add or replace a queue (the fields of a ``queues:`` entry)."""
    body = await json_object_body(request)
    return await _respond(request.app[CONFIGURATION].put_queue(request.match_info["name"], body))


async def delete_queue(request: web.Request) -> web.Response:
    """``DELETE /api/queues/{name}``: remove a queue that holds no items."""
    return await _respond(request.app[CONFIGURATION].delete_queue(request.match_info["name"]))


def add_config_routes(app: web.Application, configuration: Configuration) -> None:
    """Mount the configuration endpoints on ``app``."""
    app[CONFIGURATION] = configuration
    app.router.add_post("/api/reload", reload)
    app.router.add_put("/api/agents/{ext}", put_agent)
    app.router.add_delete("/api/agents/{ext}", delete_agent)
    app.router.add_put("/api/queues/{name}", put_queue)
    app.router.add_delete("/api/queues/{name}", delete_queue)
