"""The people's side of the web room: sign-in, the agent desktop, the supervisor
wallboard, the admin pages and their JSON, and the CTI socket.

Entry point for the composition root::

    desk = add_web(app, WebServices(...))     # routes, the gate, start/stop with the app
    voice_queue.pop = desk.hub.pop            # awaited before an agent's phone rings
    ...
    await desk.reload()                       # after a configuration reload (users changed)

Pages (HTML, one per role):

==================  =============================  ==========================
``/login``          sign-in                        anyone
``/desk``           agent desktop                  agent
``/wallboard``      supervisor wallboard           supervisor, admin
``/admin``          knowledge-base editing         admin
``/customers/{id}`` a customer's whole history     agent, supervisor, admin
==================  =============================  ==========================

JSON under ``/ui/`` for the pages (cookie session; ``X-CSRF-Token`` on every
state-changing request), the desktop's e-mail among them when the server has
an e-mail channel (:mod:`cosmo.web.email_desk`), and ``/cti``, the WebSocket
(docs/CTI.md).  ``/api/``
stays the bearer-token API of integrations.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cosmo.store.errors import StoreError
from cosmo.web.auth import (
    CSRF_HEADER,
    PRINCIPAL,
    SESSION_COOKIE,
    Gate,
    LoginThrottle,
    Principal,
    SessionManager,
    UserDirectory,
    require,
    same_origin,
)
from cosmo.web.cti import CtiHub
from cosmo.web.cti_desks import history_entry
from cosmo.web.email_desk import AgentEmail, add_email_desk
from cosmo.web.knowledge import KnowledgeIndex
from cosmo.web.services import WebServices
from cosmo.web.settings import Role

__all__ = ["DESK", "STATIC_DIR", "WebDesk", "WebServices", "add_web"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""HTML, CSS and JavaScript of the pages (plain ES modules, no build step)."""

HOME = {str(Role.AGENT): "/desk", str(Role.SUPERVISOR): "/wallboard", str(Role.ADMIN): "/wallboard"}
"""Where each role lands after signing in."""

PAGES: dict[str, tuple[str, frozenset[str]]] = {
    "/desk": ("desk.html", frozenset({str(Role.AGENT)})),
    "/wallboard": ("wallboard.html", frozenset({str(Role.SUPERVISOR), str(Role.ADMIN)})),
    "/admin": ("admin.html", frozenset({str(Role.ADMIN)})),
    "/customers": ("customer.html", frozenset({str(Role.AGENT), str(Role.SUPERVISOR), str(Role.ADMIN)})),
}

GUARDED = ("/ui/", "/cti", "/desk", "/wallboard", "/admin", "/customers")
"""Paths the gate requires a principal for (``/login``, ``/static/`` and ``/api/`` are not among them)."""
OPEN = frozenset({"/ui/login"})

PREFERRED_CHANNELS = ("voice", "email", "callback", "webcall")

SECURITY_HEADERS = {
    # Everything the pages load is their own; the socket is same-origin (CSP3 'self' covers ws:).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebDesk:
    """The desktop's services: users, sessions, the knowledge base and the CTI hub.

    ``start()`` (sync users, seed the knowledge base, start the hub) and
    ``close()`` are idempotent; :func:`add_web` ties them to the application.
    """

    def __init__(self, services: WebServices) -> None:
        self.services = services
        settings = services.settings
        self.users = UserDirectory(services.users)
        self.sessions = SessionManager(services.sessions, clock=services.clock)
        self.gate = Gate(self.users, self.sessions, services.api_tokens)
        self.throttle = LoginThrottle(lambda: settings().login_max_failures, lambda: settings().login_block_s)
        self.knowledge = KnowledgeIndex()
        self.hub = CtiHub(
            acd=services.acd, bus=services.bus, customers=services.customers, controls=services.controls,
            dispositions=services.dispositions, knowledge=self.knowledge, users=self.users,
            settings=settings, reasons=services.reasons, clock=services.clock,
        )
        self.sessions.listeners.append(self.hub.end_session)
        self._started = False

    async def start(self) -> None:
        """Load the users (hashing plain passwords), seed and index the knowledge base, start the hub."""
        if self._started:
            return
        self._started = True
        settings = self.services.settings()
        await self.users.load(settings.users)
        if settings.knowledge_file is not None:
            seeded = await self.services.knowledge.seed(settings.knowledge_file)
            if seeded:
                log.info("%d knowledge-base articles loaded from %s", seeded, settings.knowledge_file)
        await self.refresh_knowledge()
        expired = await self.sessions.purge()
        if expired:
            log.info("web: %d expired sessions forgotten", expired)
        await self.hub.start()

    async def reload(self) -> list[str]:
        """Follow the current settings after a configuration reload; returns the users removed.

        A removed user's sessions end; a user whose role or extension changed has their
        sockets closed (the next sign-in, or the page's reconnect, sees the new role).
        """
        settings = self.services.settings()
        before = {u.username: (u.role, u.extension) for u in self.users.all()}
        removed = await self.users.load(settings.users)
        changed = [u.username for u in self.users.all()
                   if u.username in before and before[u.username] != (u.role, u.extension)]
        for username in removed + changed:
            self.sessions.end_user(username)
            self.hub.end_user(username)
        self.hub.resize(settings.replay_messages, settings.replay_bytes)
        return removed

    async def refresh_knowledge(self) -> None:
        """Re-read the articles into the suggestion index (after an edit)."""
        self.knowledge.replace(await self.services.knowledge.all())

    async def close(self) -> None:
        """Close the sockets and stop the hub."""
        if not self._started:
            return
        self._started = False
        await self.hub.close()


DESK = web.AppKey("web_desk", WebDesk)


def add_web(app: web.Application, services: WebServices) -> WebDesk:
    """Mount sign-in, the pages, their JSON and ``/cti`` on ``app``; returns the :class:`WebDesk`.

    The desk starts with the application (``on_startup``) unless started
    before, and closes with it.  Install after ``bearer_auth``: ``/api/``
    stays the integrations' and is left alone here.
    """
    desk = WebDesk(services)
    app[DESK] = desk
    app.middlewares.append(_gate_middleware(desk.gate))

    async def on_startup(_: web.Application) -> None:
        await desk.start()

    async def on_shutdown(_: web.Application) -> None:
        await desk.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    router = app.router
    router.add_get("/", index)
    router.add_get("/login", login_page)
    for path in ("/desk", "/wallboard", "/admin"):
        router.add_get(path, page)
    router.add_get("/customers/{id:\\d+}", page)
    router.add_static("/static/", STATIC_DIR, name="static")
    router.add_post("/ui/login", login)
    router.add_post("/ui/logout", logout)
    router.add_get("/ui/me", me)
    router.add_get("/ui/customers", find_customers)
    router.add_get("/ui/customers/{id:\\d+}", get_customer)
    router.add_patch("/ui/customers/{id:\\d+}", patch_customer)
    router.add_get("/ui/kb", list_articles)
    router.add_post("/ui/kb", add_article)
    router.add_put("/ui/kb/{id:\\d+}", put_article)
    router.add_delete("/ui/kb/{id:\\d+}", delete_article)
    router.add_get("/cti", cti)
    if services.email is not None:
        add_email_desk(app, AgentEmail(services.email, services.acd, services.email_templates))
    return desk


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guarded(path: str) -> bool:
    return path == "/" or any(path == p.rstrip("/") or path.startswith(p) for p in GUARDED)


def _is_page(request: web.Request) -> bool:
    return request.method == "GET" and not request.path.startswith(("/ui/", "/cti"))


def _gate_middleware(gate: Gate) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(("/api/", "/static/")) or not (_guarded(path) or path == "/login" or path in OPEN):
            return await handler(request)
        principal = await gate.principal(request)
        if principal is not None:
            request[PRINCIPAL] = principal
        elif _guarded(path) and path not in OPEN and path != "/":
            if _is_page(request):
                raise web.HTTPSeeOther(f"/login?next={request.rel_url.path}")
            return _json_error(401, "sign in first")
        if principal is not None and not gate.csrf_ok(request, principal):
            return _json_error(403, f"missing or invalid CSRF token (send the {CSRF_HEADER} header)")
        response = await handler(request)
        if _is_page(request) and not isinstance(response, web.WebSocketResponse):
            response.headers.update(SECURITY_HEADERS)
        return response

    return middleware


def _desk(request: web.Request) -> WebDesk:
    return request.app[DESK]


def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


# ---- pages ---------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    """``GET /``: the signed-in person's home page, else the sign-in page."""
    principal = request.get(PRINCIPAL)
    if principal is None or not principal.is_person:
        raise web.HTTPSeeOther("/login")
    raise web.HTTPSeeOther(HOME.get(principal.role, "/login"))


async def login_page(request: web.Request) -> web.StreamResponse:
    """``GET /login``."""
    return web.FileResponse(STATIC_DIR / "login.html")


async def page(request: web.Request) -> web.StreamResponse:
    """A role's page; another role gets 403 with a way back home."""
    principal = _principal(request)
    key = "/customers" if request.path.startswith("/customers/") else request.path
    name, roles = PAGES[key]
    if principal.role not in roles:
        home = HOME.get(principal.role, "/login")
        return web.Response(status=403, content_type="text/html", text=_FORBIDDEN.format(home=home))
    return web.FileResponse(STATIC_DIR / name)


_FORBIDDEN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not allowed · Cosmo</title>
<link rel="stylesheet" href="/static/cosmo.css"></head><body class="plain"><main class="notice">
<h1>Not allowed</h1><p>Your role does not open this page.</p><p><a href="{home}">Back to your page</a></p>
</main></body></html>"""


# ---- sign-in -----------------------------------------------------------------------------------


class _Credentials(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": "body is not valid JSON"}', content_type="application/json") \
            from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return body


def _cookie(response: web.StreamResponse, request: web.Request, value: str, max_age: int) -> None:
    secure = _desk(request).services.settings().cookie_secure
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=secure)


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /ui/login`` with ``{"username", "password"}``: a session cookie and the CSRF token."""
    if not same_origin(request):
        return _json_error(403, "cross-site sign-in refused")
    desk = _desk(request)
    address = request.remote or "?"
    wait = desk.throttle.blocked_for(address)
    if wait > 0:
        response = _json_error(429, f"too many failed sign-ins; try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        credentials = _Credentials.model_validate(await _body(request))
    except ValidationError:
        return _json_error(400, "give a user name and a password")
    user = await desk.users.verify(credentials.username, credentials.password)
    if user is None:
        desk.throttle.failed(address)
        log.info("web: failed sign-in as %r from %s", credentials.username[:64], address)
        return _json_error(401, "wrong user name or password")
    desk.throttle.succeeded(address)
    lifetime = desk.services.settings().session_lifetime_s
    token, session = await desk.sessions.create(user, lifetime)
    log.info("web: %s (%s) signed in from %s", user.username, user.role, address)
    response = web.json_response({
        "user": {"username": user.username, "name": user.name, "role": str(user.role), "extension": user.extension},
        "home": HOME[str(user.role)], "csrf": session.csrf_token,
    })
    _cookie(response, request, token, int(lifetime))
    return response


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /ui/logout``: end the session (its sockets close)."""
    principal = _principal(request)
    if principal.session is not None:
        await _desk(request).sessions.end(principal.session)
    response = web.json_response({"signed_out": True})
    _cookie(response, request, "", 0)
    return response


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def me(request: web.Request) -> web.StreamResponse:
    """``GET /ui/me``: who is signed in, and the CSRF token for state-changing requests."""
    principal = _principal(request)
    desk = _desk(request)
    settings = desk.services.settings()
    assert principal.session is not None
    return web.json_response({
        "user": principal.to_dict(), "csrf": principal.session.csrf_token, "home": HOME[principal.role],
        "server_time": desk.services.clock(), "dispositions": list(settings.dispositions),
        "reasons": list(desk.services.reasons()),
    })


async def cti(request: web.Request) -> web.StreamResponse:
    """``GET /cti``: the CTI WebSocket (people and integrations)."""
    return await _desk(request).hub.handle(request)


# ---- customers ---------------------------------------------------------------------------------


def _customer_id(request: web.Request) -> int:
    return int(request.match_info["id"])


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def find_customers(request: web.Request) -> web.StreamResponse:
    """``GET /ui/customers?q=``: customers by phone number, account number, e-mail address or id."""
    text = request.query.get("q", "").strip()[:200]
    customers = _desk(request).services.customers
    found: dict[int, dict[str, Any]] = {}
    if text:
        keys = ("email",) if "@" in text else ("account", "phone", "id")
        for key in keys:
            record = await customers.find(key, text)
            if record is not None:
                found.setdefault(record.id, record.to_dict())
    return web.json_response({"customers": list(found.values())})


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def get_customer(request: web.Request) -> web.StreamResponse:
    """``GET /ui/customers/{id}``: the customer and their whole history on every channel."""
    customers = _desk(request).services.customers
    customer_id = _customer_id(request)
    record = await customers.find("id", str(customer_id))
    if record is None:
        return _json_error(404, f"no customer {customer_id}")
    history = await customers.history(customer_id, limit=500)
    return web.json_response({"customer": record.to_dict(), "history": [history_entry(r) for r in history]})


class _CustomerChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: str | None = Field(default=None, max_length=10_000)
    preferred_channel: str | None = None


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def patch_customer(request: web.Request) -> web.StreamResponse:
    """``PATCH /ui/customers/{id}`` with ``notes`` and/or ``preferred_channel``."""
    try:
        change = _CustomerChange.model_validate(await _body(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        return _json_error(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    fields = change.model_dump(exclude_unset=True)
    channel = fields.get("preferred_channel")
    if channel is not None and channel not in PREFERRED_CHANNELS:
        return _json_error(422, f"preferred_channel must be one of {', '.join(PREFERRED_CHANNELS)} or null")
    if fields.get("notes") is None:
        fields.pop("notes", None)
    if not fields:
        return _json_error(400, "nothing to change (notes, preferred_channel)")
    customer_id = _customer_id(request)
    record = await _desk(request).services.customers.update(customer_id, **fields)
    if record is None:
        return _json_error(404, f"no customer {customer_id}")
    log.info("web: %s changed customer %d (%s)", _principal(request).username, customer_id, ", ".join(fields))
    return web.json_response({"customer": record.to_dict()})


# ---- knowledge base ----------------------------------------------------------------------------


class _ArticleBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=50_000)
    tags: list[str] = Field(default_factory=list, max_length=30)


async def _article_body(request: web.Request) -> _ArticleBody | web.Response:
    try:
        article = _ArticleBody.model_validate(await _body(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        return _json_error(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    tags = [t.strip().lower() for t in article.tags if t.strip()]
    if any(len(t) > 64 for t in tags):
        return _json_error(422, "tags: each at most 64 characters")
    return article.model_copy(update={"tags": list(dict.fromkeys(tags))})


@require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
async def list_articles(request: web.Request) -> web.StreamResponse:
    """``GET /ui/kb[?q=words]``: every article, or those matching the words best first."""
    desk = _desk(request)
    text = request.query.get("q", "").strip()[:200]
    if text:
        articles = desk.knowledge.suggest(subject=text, limit=20)
    else:
        articles = await desk.services.knowledge.all()
    return web.json_response({"articles": [a.to_dict() for a in articles]})


@require(Role.ADMIN)
async def add_article(request: web.Request) -> web.StreamResponse:
    """``POST /ui/kb`` with ``{"title", "body", "tags"}`` (admins)."""
    body = await _article_body(request)
    if isinstance(body, web.Response):
        return body
    desk = _desk(request)
    article = await desk.services.knowledge.add(body.title, body.body, body.tags, by=_principal(request).username)
    await desk.refresh_knowledge()
    return web.json_response({"article": article.to_dict()}, status=201)


@require(Role.ADMIN)
async def put_article(request: web.Request) -> web.StreamResponse:
    """``PUT /ui/kb/{id}`` (admins)."""
    body = await _article_body(request)
    if isinstance(body, web.Response):
        return body
    desk = _desk(request)
    article_id = int(request.match_info["id"])
    article = await desk.services.knowledge.update(article_id, title=body.title, body=body.body, tags=body.tags,
                                                   by=_principal(request).username)
    if article is None:
        return _json_error(404, f"no article {article_id}")
    await desk.refresh_knowledge()
    return web.json_response({"article": article.to_dict()})


@require(Role.ADMIN)
async def delete_article(request: web.Request) -> web.StreamResponse:
    """``DELETE /ui/kb/{id}`` (admins)."""
    desk = _desk(request)
    article_id = int(request.match_info["id"])
    try:
        removed = await desk.services.knowledge.remove(article_id)
    except StoreError as exc:
        return _json_error(409, str(exc))
    if not removed:
        return _json_error(404, f"no article {article_id}")
    await desk.refresh_knowledge()
    return web.json_response({"deleted": article_id})
