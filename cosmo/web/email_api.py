"""The e-mail part of the JSON API: messages, cases, and what agents do with them.

``GET /api/emails/{id}`` (headers, text, attachments, problems, its case),
``GET /api/emails/{id}/raw`` (the message as stored, ``message/rfc822``),
``GET /api/emails/{id}/attachments/{n}``,
``POST /api/emails/{id}/accept`` ``{"agent": "1001"}`` (take the offered e-mail),
``POST /api/emails/{id}/decline`` ``{"agent": "1001", "reason": "break"}``,
``GET /api/cases[?status=open&customer=12&limit=100]``, ``GET /api/cases/{id}`` (the thread),
``POST /api/cases/{id}/reply`` ``{"agent": "1001", "body": "...", "template": "thanks", "done": true}``,
``POST /api/cases/{id}/transfer`` ``{"queue": "billing", "agent": "1001"}``,
``POST /api/cases/{id}/close`` ``{"agent": "1001"}``.

A refused action is a 4xx with ``{"error": "..."}`` and changes nothing:
404 for an unknown e-mail or case, 409 when the case is not the agent's to
act on (or not offered to them), 400/422 for a bad body.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from cosmo.email.errors import EmailError
from cosmo.web.api import json_error, json_object_body

__all__ = ["EMAIL", "EmailDesk", "add_email_routes"]

_STATUSES = ("open", "answered", "closed")


class EmailDesk(Protocol):
    """What the API needs of the e-mail channel (:class:`cosmo.email.service.EmailService`)."""

    async def email_view(self, email_id: int) -> dict[str, Any]: ...

    async def case_view(self, case_id: int) -> dict[str, Any]: ...

    async def cases_view(self, *, status: str | None = None, customer_id: int | None = None,
                         limit: int = 100) -> list[dict[str, Any]]: ...

    async def raw(self, email_id: int) -> bytes: ...

    async def attachment(self, email_id: int, index: int) -> tuple[bytes, str, str]: ...

    async def accept(self, email_id: int, agent: str) -> dict[str, Any]: ...

    async def decline(self, email_id: int, agent: str, reason: str | None = None) -> None: ...

    async def reply(self, case_id: int, agent: str, body: str, *, template: str | None = None,
                    done: bool = True) -> dict[str, Any]: ...

    async def transfer(self, case_id: int, queue: str, agent: str | None = None) -> dict[str, Any]: ...

    async def close_case(self, case_id: int, agent: str | None = None) -> dict[str, Any]: ...


EMAIL = web.AppKey("email", EmailDesk)


def _error(exc: EmailError) -> web.Response:
    status = exc.status if 400 <= exc.status < 500 else 400
    return json_error(status, str(exc))


def _id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not text.isdigit():
        raise web.HTTPNotFound(text=json.dumps({"error": f"no such id {text!r}"}), content_type="application/json")
    return int(text)


def _text(body: dict[str, object], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=json.dumps({"error": f"'{name}' must be a non-empty string"}),
                                 content_type="application/json")
    return value


async def get_email(request: web.Request) -> web.Response:
    """``GET /api/emails/{id}``."""
    try:
        return web.json_response(await request.app[EMAIL].email_view(_id(request, "id")))
    except EmailError as exc:
        return _error(exc)


async def get_raw(request: web.Request) -> web.Response:
    """``GET /api/emails/{id}/raw``: the bytes as stored."""
    try:
        data = await request.app[EMAIL].raw(_id(request, "id"))
    except EmailError as exc:
        return _error(exc)
    return web.Response(body=data, content_type="message/rfc822")


async def get_attachment(request: web.Request) -> web.Response:
    """``GET /api/emails/{id}/attachments/{n}``: always offered as a download, never shown inline."""
    try:
        data, content_type, filename = await request.app[EMAIL].attachment(_id(request, "id"), _id(request, "n"))
    except EmailError as exc:
        return _error(exc)
    safe = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\') or "attachment"
    return web.Response(body=data, content_type=content_type if "/" in content_type else "application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{safe}"',
                                 "X-Content-Type-Options": "nosniff"})


async def accept_email(request: web.Request) -> web.Response:
    """``POST /api/emails/{id}/accept`` ``{"agent": ext}``: the agent takes the offered e-mail; its case."""
    body = await json_object_body(request)
    agent = _text(body, "agent")
    assert agent is not None
    try:
        return web.json_response(await request.app[EMAIL].accept(_id(request, "id"), agent))
    except EmailError as exc:
        return _error(exc)


async def decline_email(request: web.Request) -> web.Response:
    """``POST /api/emails/{id}/decline`` ``{"agent": ext, "reason": code}``."""
    body = await json_object_body(request)
    agent = _text(body, "agent")
    reason = _text(body, "reason", required=False)
    assert agent is not None
    try:
        await request.app[EMAIL].decline(_id(request, "id"), agent, reason)
    except EmailError as exc:
        return _error(exc)
    return web.json_response({"declined": True})


async def list_cases(request: web.Request) -> web.Response:
    """``GET /api/cases[?status=&customer=&limit=]``."""
    status = request.query.get("status") or None
    if status is not None and status not in _STATUSES:
        return json_error(400, f"'status' must be one of {', '.join(_STATUSES)}")
    customer = request.query.get("customer")
    limit = request.query.get("limit", "100")
    if (customer is not None and not customer.isdigit()) or not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return json_error(400, "'customer' must be an id and 'limit' 1-1000")
    cases = await request.app[EMAIL].cases_view(status=status, customer_id=int(customer) if customer else None,
                                                limit=int(limit))
    return web.json_response({"cases": cases})


async def get_case(request: web.Request) -> web.Response:
    """``GET /api/cases/{id}``: the case and its thread."""
    try:
        return web.json_response(await request.app[EMAIL].case_view(_id(request, "id")))
    except EmailError as exc:
        return _error(exc)


async def reply_case(request: web.Request) -> web.Response:
    """``POST /api/cases/{id}/reply``: 202 with the queued message (its ``status`` shows the sending)."""
    body = await json_object_body(request)
    agent = _text(body, "agent")
    template = _text(body, "template", required=False)
    text = body.get("body", "")
    done = body.get("done", True)
    if not isinstance(text, str):
        return json_error(400, "'body' must be a string")
    if not isinstance(done, bool):
        return json_error(400, "'done' must be true or false")
    if template is None and not text.strip():
        return json_error(400, "'body' must be a non-empty string (or name a 'template')")
    assert agent is not None
    try:
        sent = await request.app[EMAIL].reply(_id(request, "id"), agent, text, template=template, done=done)
    except EmailError as exc:
        return _error(exc)
    return web.json_response(sent, status=202)


async def transfer_case(request: web.Request) -> web.Response:
    """``POST /api/cases/{id}/transfer`` ``{"queue": name, "agent": ext}``."""
    body = await json_object_body(request)
    queue = _text(body, "queue")
    agent = _text(body, "agent", required=False)
    assert queue is not None
    try:
        return web.json_response(await request.app[EMAIL].transfer(_id(request, "id"), queue, agent))
    except EmailError as exc:
        return _error(exc)


async def close_case(request: web.Request) -> web.Response:
    """``POST /api/cases/{id}/close`` ``{"agent": ext}``."""
    body = await json_object_body(request) if request.can_read_body else {}
    agent = _text(body, "agent", required=False)
    try:
        return web.json_response(await request.app[EMAIL].close_case(_id(request, "id"), agent))
    except EmailError as exc:
        return _error(exc)


def add_email_routes(app: web.Application, email: EmailDesk) -> None:
    """Mount the e-mail endpoints on ``app``."""
    app[EMAIL] = email
    app.router.add_get("/api/emails/{id}", get_email)
    app.router.add_get("/api/emails/{id}/raw", get_raw)
    app.router.add_get("/api/emails/{id}/attachments/{n}", get_attachment)
    app.router.add_post("/api/emails/{id}/accept", accept_email)
    app.router.add_post("/api/emails/{id}/decline", decline_email)
    app.router.add_get("/api/cases", list_cases)
    app.router.add_get("/api/cases/{id}", get_case)
    app.router.add_post("/api/cases/{id}/reply", reply_case)
    app.router.add_post("/api/cases/{id}/transfer", transfer_case)
    app.router.add_post("/api/cases/{id}/close", close_case)
