"""The agent desktop's e-mail: reading the e-mail offered or in hand, replying, transferring, closing.

JSON under ``/ui/`` for the desktop (cookie session; the gate checks
``X-CSRF-Token`` on every state-changing request):

=====================================  ===============================================================
``GET /ui/items/{item_id}/email``      the e-mail of a work item offered to or held by the agent
``GET /ui/emails/{id}``                the message (text, headers, attachments, problems), its case and
                                       the case's thread
``GET /ui/emails/{id}/attachments/{n}`` an attachment (always a download)
``GET /ui/cases/{id}``                 the case and its thread
``GET /ui/email/templates``            the reply templates (``email.reply.templates``)
``POST /ui/cases/{id}/reply``          ``{"body": "...", "template": "thanks", "done": true}``
``POST /ui/cases/{id}/transfer``       ``{"queue": "billing"}``
``POST /ui/cases/{id}/close``          (no body)
=====================================  ===============================================================

An agent acts as their own extension only, and only on a case whose work
item is offered to them (reading) or in their hands (reading and acting):
anything else is 403, acting on an offer not yet accepted is 409, and a
refusal changes nothing.  Supervisors and admins may read every case, not act.
Errors are ``{"error": "..."}``: 400 a bad body, 403 not yours, 404 unknown,
409 not now (the e-mail channel's own conflicts too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
)

from cosmo.acd.model import Channel, ItemState
from cosmo.email.errors import EmailError
from cosmo.web.auth import PRINCIPAL, Principal, require
from cosmo.web.email_api import EmailDesk
from cosmo.web.services import AcdDesk
from cosmo.web.settings import Role

__all__ = ["AGENT_EMAIL", "AgentEmail", "add_email_desk"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_REPLY_CHARS = 100_000
"""The longest reply the desktop may send (the editor's text, before the template and signature)."""


@dataclass(frozen=True, slots=True)
class AgentEmail:
    """What the desktop's e-mail endpoints use: the e-mail channel, the ACD (whose item is whose),
    and the reply templates (read at each use, so a configuration reload applies)."""

    email: EmailDesk
    acd: AcdDesk
    templates: Callable[[], Mapping[str, str]]


AGENT_EMAIL = web.AppKey("agent_email", AgentEmail)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: StrictStr = Field(default="", max_length=MAX_REPLY_CHARS)
    template: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    done: StrictBool = True


class _Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    queue: StrictStr = Field(min_length=1, max_length=100)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _Refused(Exception):
    """A request refused before anything changed; answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _id(request: web.Request, name: str = "id") -> int:
    return int(request.match_info[name])  # the routes only match digits


def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def _holding(case: Mapping[str, Any], extension: str | None) -> str | None:
    """``"held"`` or ``"offered"`` when the case's work item is with agent ``extension``, else ``None``."""
    item = case.get("item")
    if extension is None or not isinstance(item, Mapping) or item.get("agent") != extension:
        return None
    state = item.get("state")
    if state == ItemState.ASSIGNED:
        return "held"
    if state == ItemState.OFFERED:
        return "offered"
    return None


def _may_read(principal: Principal, case: Mapping[str, Any] | None, what: str) -> None:
    if principal.role != Role.AGENT:
        return
    if case is None or _holding(case, principal.extension) is None:
        raise _Refused(403, f"{what} is not offered to you or in your hands")


def _may_act(principal: Principal, case: Mapping[str, Any]) -> str:
    """The agent's extension, once the case's item is in their hands."""
    extension = principal.extension
    holding = _holding(case, extension)
    if extension is None or holding is None:
        raise _Refused(403, f"case {case['id']} is not in your hands")
    if holding == "offered":
        raise _Refused(409, f"case {case['id']} is offered to you: accept it first")
    return extension


def _local_urls(message: dict[str, Any]) -> None:
    """Attachment links the desktop can follow (the session's, not the integrations' ``/api/``)."""
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict) and "index" in attachment:
            attachment["url"] = f"/ui/emails/{message['id']}/attachments/{attachment['index']}"
    message.pop("raw_url", None)


def _local_case(case: dict[str, Any]) -> dict[str, Any]:
    for message in case.get("messages") or []:
        if isinstance(message, dict):
            _local_urls(message)
    return case


async def _case(room: AgentEmail, case_id: int) -> dict[str, Any]:
    return _local_case(await room.email.case_view(case_id))


async def _email_with_thread(request: web.Request, email_id: int) -> dict[str, Any]:
    """The message with its case and the case's thread, once the principal may read it."""
    room = request.app[AGENT_EMAIL]
    view = await room.email.email_view(email_id)
    summary = view.get("case")
    case = await _case(room, int(summary["id"])) if isinstance(summary, Mapping) else None
    _may_read(_principal(request), case, f"e-mail {email_id}")
    _local_urls(view)
    view["case"] = case
    return view


def _answer(handler: Handler) -> Handler:
    """Turn refusals and the e-mail channel's errors into ``{"error": ...}`` answers."""

    async def answered(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Refused as exc:
            return _error(exc.status, exc.message)
        except EmailError as exc:
            return _error(exc.status if 400 <= exc.status < 500 else 400, str(exc))

    answered.__name__ = handler.__name__
    answered.__doc__ = handler.__doc__
    return answered


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Refused(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Refused(400, "body must be a JSON object")
    return body


def _invalid(exc: ValidationError) -> _Refused:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return _Refused(400, f"{where}: {first['msg']}" if where else first["msg"])


# ---- reading -------------------------------------------------------------------------------------


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
@_answer
async def item_email(request: web.Request) -> web.StreamResponse:
    """``GET /ui/items/{item_id}/email``: the e-mail a work item is about (the customer's latest)."""
    room = request.app[AGENT_EMAIL]
    principal = _principal(request)
    item_id = request.match_info["item_id"]
    item = room.acd.item(item_id)
    if item is None or item.channel is not Channel.EMAIL:
        raise _Refused(404, f"no e-mail item {item_id}")
    if principal.role == Role.AGENT and (
            item.agent != principal.extension or item.state not in (ItemState.OFFERED, ItemState.ASSIGNED)):
        raise _Refused(403, f"item {item_id} is not offered to you or in your hands")
    email_id = item.data.get("email_id")
    if not isinstance(email_id, int):
        raise _Refused(404, f"item {item_id} names no e-mail")
    return web.json_response(await _email_with_thread(request, email_id))


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
@_answer
async def get_email(request: web.Request) -> web.StreamResponse:
    """``GET /ui/emails/{id}``: the message, its case and the case's thread."""
    return web.json_response(await _email_with_thread(request, _id(request)))


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
@_answer
async def get_attachment(request: web.Request) -> web.StreamResponse:
    """``GET /ui/emails/{id}/attachments/{n}``: always a download, never shown inline."""
    room = request.app[AGENT_EMAIL]
    email_id = _id(request)
    view = await room.email.email_view(email_id)
    summary = view.get("case")
    case = await room.email.case_view(int(summary["id"])) if isinstance(summary, Mapping) else None
    _may_read(_principal(request), case, f"e-mail {email_id}")
    data, content_type, filename = await room.email.attachment(email_id, _id(request, "n"))
    safe = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\') or "attachment"
    return web.Response(body=data, content_type=content_type if "/" in content_type else "application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{safe}"',
                                 "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
@_answer
async def get_case(request: web.Request) -> web.StreamResponse:
    """``GET /ui/cases/{id}``: the case, its work item now, and its thread."""
    case_id = _id(request)
    case = await _case(request.app[AGENT_EMAIL], case_id)
    _may_read(_principal(request), case, f"case {case_id}")
    return web.json_response(case)


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def list_templates(request: web.Request) -> web.StreamResponse:
    """``GET /ui/email/templates``: ``{"templates": [{"name", "text"}]}`` by name."""
    templates = request.app[AGENT_EMAIL].templates()
    return web.json_response({"templates": [{"name": name, "text": templates[name]} for name in sorted(templates)]})


# ---- acting ----------------------------------------------------------------------------------------


@require(Role.AGENT)
@_answer
async def reply(request: web.Request) -> web.StreamResponse:
    """``POST /ui/cases/{id}/reply`` ``{"body", "template", "done"}``: 202 with the queued message."""
    try:
        body = _Reply.model_validate(await _body(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    if body.template is None and not body.body.strip():
        raise _Refused(400, "write a reply (or pick a template)")
    room = request.app[AGENT_EMAIL]
    case_id = _id(request)
    extension = _may_act(_principal(request), await room.email.case_view(case_id))
    sent = await room.email.reply(case_id, extension, body.body, template=body.template, done=body.done)
    log.info("web: agent %s replied on case %d%s", extension, case_id, " (done)" if body.done else "")
    _local_urls(sent)
    return web.json_response(sent, status=202)


@require(Role.AGENT)
@_answer
async def transfer(request: web.Request) -> web.StreamResponse:
    """``POST /ui/cases/{id}/transfer`` ``{"queue"}``: the case waits in that queue; the agent's item ends."""
    try:
        body = _Transfer.model_validate(await _body(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    room = request.app[AGENT_EMAIL]
    case_id = _id(request)
    case = await room.email.case_view(case_id)
    extension = _may_act(_principal(request), case)
    if case.get("queue") == body.queue:
        raise _Refused(409, f"case {case_id} is in queue {body.queue} already")
    moved = await room.email.transfer(case_id, body.queue, extension)
    log.info("web: agent %s transferred case %d to %s", extension, case_id, body.queue)
    return web.json_response(_local_case(moved))


@require(Role.AGENT)
@_answer
async def close(request: web.Request) -> web.StreamResponse:
    """``POST /ui/cases/{id}/close``: nothing more to do; the agent's item ends."""
    if await _body(request):
        raise _Refused(400, "close takes no body")
    room = request.app[AGENT_EMAIL]
    case_id = _id(request)
    extension = _may_act(_principal(request), await room.email.case_view(case_id))
    closed = await room.email.close_case(case_id, extension)
    log.info("web: agent %s closed case %d", extension, case_id)
    return web.json_response(_local_case(closed))


def add_email_desk(app: web.Application, room: AgentEmail) -> None:
    """Mount the desktop's e-mail endpoints on ``app`` (behind the gate of :func:`cosmo.web.desktop.add_web`)."""
    app[AGENT_EMAIL] = room
    router = app.router
    router.add_get("/ui/items/{item_id}/email", item_email)
    router.add_get("/ui/emails/{id:\\d{1,9}}", get_email)
    router.add_get("/ui/emails/{id:\\d{1,9}}/attachments/{n:\\d{1,4}}", get_attachment)
    router.add_get("/ui/cases/{id:\\d{1,9}}", get_case)
    router.add_get("/ui/email/templates", list_templates)
    router.add_post("/ui/cases/{id:\\d{1,9}}/reply", reply)
    router.add_post("/ui/cases/{id:\\d{1,9}}/transfer", transfer)
    router.add_post("/ui/cases/{id:\\d{1,9}}/close", close)
