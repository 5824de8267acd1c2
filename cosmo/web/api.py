"""The JSON API under ``/api`` (bearer-token authenticated).

Handlers ask services for plain data; they never see SIP or RTP objects.
Errors are JSON too: ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TelephonyApi(Protocol):
    """What the API needs of the telephony side (``cosmo.calls.service.TelephonyService``)."""

    def calls(self) -> list[dict[str, object]]: ...

    async def originate(self, target: str, caller: str = "cosmo") -> dict[str, object]: ...

    async def hangup(self, call_id: str) -> bool: ...

    def registrations(self, extension: str | None = None) -> list[dict[str, object]]: ...

    def sip_stats(self) -> dict[str, object]: ...


TELEPHONY = web.AppKey("telephony", TelephonyApi)


def json_error(status: int, message: str) -> web.Response:
    """A JSON error body with ``status``."""
    return web.json_response({"error": message}, status=status)


def bearer_auth(tokens: Callable[[], Iterable[str]]) -> Middleware:
    """Middleware: every ``/api/`` request needs ``Authorization: Bearer <token>``.

    ``tokens()`` gives the accepted tokens at each request, so a reload applies at once.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            given = token.strip().encode()
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(given, t.encode()) for t in tokens()):
                return json_error(401, "missing or invalid bearer token")
        return await handler(request)

    return middleware


async def json_object_body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not valid JSON"}),
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return body


async def list_calls(request: web.Request) -> web.Response:
    """``GET /api/calls``: calls in progress."""
    return web.json_response({"calls": request.app[TELEPHONY].calls()})


async def create_call(request: web.Request) -> web.Response:
    """``POST /api/calls`` with ``{"to": "1001" | "+15550123", "caller": "..."}``: place a call."""
    body = await json_object_body(request)
    target = body.get("to")
    caller = body.get("caller", "cosmo")
    if not isinstance(target, str) or not target.strip():
        return json_error(400, "'to' must be a non-empty string (an extension or a number)")
    if not isinstance(caller, str):
        return json_error(400, "'caller' must be a string")
    result = await request.app[TELEPHONY].originate(target.strip(), caller)
    return web.json_response(result, status=201 if result.get("answered") else 200)


async def hangup_call(request: web.Request) -> web.Response:
    """``POST /api/calls/{id}/hangup``: hang up every leg of a call."""
    call_id = request.match_info["call_id"]
    if not await request.app[TELEPHONY].hangup(call_id):
        return json_error(404, f"no call {call_id}")
    return web.json_response({"id": call_id, "hangup": True})


async def list_registrations(request: web.Request) -> web.Response:
    """``GET /api/registrations[?extension=1001]``: phones registered now."""
    extension = request.query.get("extension")
    return web.json_response({"registrations": request.app[TELEPHONY].registrations(extension)})


async def sip_stats(request: web.Request) -> web.Response:
    """``GET /api/sip/stats``: counters of the SIP stack."""
    return web.json_response(request.app[TELEPHONY].sip_stats())


def add_telephony_routes(app: web.Application, telephony: TelephonyApi) -> None:
    """Mount the telephony endpoints on ``app``."""
    app[TELEPHONY] = telephony
    app.router.add_get("/api/calls", list_calls)
    app.router.add_post("/api/calls", create_call)
    app.router.add_post("/api/calls/{call_id}/hangup", hangup_call)
    app.router.add_get("/api/registrations", list_registrations)
    app.router.add_get("/api/sip/stats", sip_stats)
