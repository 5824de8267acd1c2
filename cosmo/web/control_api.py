"""Agents' call control in the JSON API (integrations; the desktop uses the CTI socket).

``GET /api/agents/{ext}/calls``; ``POST /api/agents/{ext}/calls/{call}/hangup``;
``POST /api/agents/{ext}/calls/{call}/hold`` with ``{"on": true|false}``;
``POST /api/agents/{ext}/calls/{call}/transfer`` with ``{"kind": "queue" | "agent" |
"number", "target": "billing"}``; ``POST /api/agents/{ext}/dial`` with
``{"number": "+15550123"}``.  A refused command is a 4xx with ``{"error": ...}``
(403 not the agent's call, 404 unknown call, queue, agent or route, 409 not
possible now) and changes nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from cosmo.calls.control import CallControlError
from cosmo.web.api import json_error, json_object_body

__all__ = ["CALL_CONTROL", "CallControl", "add_control_routes"]

TRANSFER_KINDS = ("queue", "agent", "number")


class CallControl(Protocol):
    """What the API needs of call control (``cosmo.calls.control.AgentCallControl``)."""

    def calls_of(self, extension: str) -> list[dict[str, Any]]: ...

    async def hangup(self, extension: str, call_id: str) -> None: ...

    async def hold(self, extension: str, call_id: str, on: bool) -> None: ...

    async def transfer(self, extension: str, call_id: str, kind: Any, target: str) -> None: ...

    async def consult(self, extension: str, call_id: str, kind: Any, target: str) -> None: ...

    async def complete_transfer(self, extension: str, call_id: str) -> None: ...

    async def cancel_transfer(self, extension: str, call_id: str) -> None: ...

    async def dial(self, extension: str, number: str) -> str: ...


CALL_CONTROL = web.AppKey("call_control", CallControl)


async def _run(request: web.Request, action: str, body: dict[str, object]) -> web.Response:
    control = request.app[CALL_CONTROL]
    extension, call_id = request.match_info["ext"], request.match_info["call"]
    try:
        if action == "hangup":
            await control.hangup(extension, call_id)
        elif action == "hold":
            on = body.get("on", True)
            if not isinstance(on, bool):
                return json_error(400, "'on' must be true or false")
            await control.hold(extension, call_id, on)
        elif action == "complete":
            await control.complete_transfer(extension, call_id)
        elif action == "cancel":
            await control.cancel_transfer(extension, call_id)
        else:
            kind, target = body.get("kind"), body.get("target")
            if kind not in TRANSFER_KINDS:
                return json_error(400, f"'kind' must be one of {', '.join(TRANSFER_KINDS)}, got {kind!r}")
            if not isinstance(target, str) or not target:
                return json_error(400, "'target' must be a non-empty string")
            verb = control.transfer if action == "transfer" else control.consult
            await verb(extension, call_id, kind, target)
    except CallControlError as exc:
        return json_error(exc.status, exc.message)
    return web.json_response({"call_id": call_id, "done": action})


async def call_action(request: web.Request) -> web.Response:
    """``POST /api/agents/{ext}/calls/{call}/{hangup|hold|transfer|consult|complete|cancel}``."""
    action = request.match_info["action"]
    body = await json_object_body(request) if request.can_read_body else {}
    return await _run(request, action, body)


async def agent_calls(request: web.Request) -> web.Response:
    """``GET /api/agents/{ext}/calls``: the calls the agent's phone is in."""
    return web.json_response({"calls": request.app[CALL_CONTROL].calls_of(request.match_info["ext"])})


async def dial(request: web.Request) -> web.Response:
    """``POST /api/agents/{ext}/dial``: ring the agent's phone, then the number."""
    body = await json_object_body(request)
    number = body.get("number")
    if not isinstance(number, str) or not number:
        return json_error(400, "'number' must be a non-empty string")
    try:
        call_id = await request.app[CALL_CONTROL].dial(request.match_info["ext"], number)
    except CallControlError as exc:
        return json_error(exc.status, exc.message)
    return web.json_response({"call_id": call_id}, status=202)


def add_control_routes(app: web.Application, control: CallControl) -> None:
    """Mount the call-control endpoints on ``app``."""
    app[CALL_CONTROL] = control
    app.router.add_get("/api/agents/{ext}/calls", agent_calls)
    app.router.add_post("/api/agents/{ext}/calls/{call}/{action:hangup|hold|transfer|consult|complete|cancel}", call_action)
    app.router.add_post("/api/agents/{ext}/dial", dial)
