"""Who is asking: people signed in with a password, integrations with an API token.

Theory of operation
-------------------
*People* (agents, supervisors, admins) sign in with a user name and password.
Passwords are checked against Argon2id hashes (RFC 9106) in a worker thread,
since one check costs ~100 ms of CPU and must not stall the event loop.  A
successful sign-in creates a session: a random 256-bit token in an
``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` when configured), stored
only as its SHA-256, and a second random token for CSRF.

Every state-changing request made with the cookie (``POST``, ``PUT``,
``PATCH``, ``DELETE``) must carry the CSRF token in ``X-CSRF-Token``; the page
reads it from ``GET /ui/me``, which another origin cannot read.  The sign-in
request itself and the CTI socket have no CSRF token yet, so they must come
from the same origin (``Origin`` header, sent by every browser on both).

*Integrations* (a CRM) send ``Authorization: Bearer <API token>``, the tokens
of the REST API.  They never carry ambient credentials, so no CSRF applies;
their role is ``integration``: they may subscribe to the CTI stream and issue
no command.

Roles are checked where each page, API call and CTI message is handled
(:func:`require`, :data:`cosmo.web.cti.MESSAGE_ROLES`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from yarl import URL

from cosmo.store.web import StoredSession, StoredUser
from cosmo.web.settings import Role, WebUserSettings, is_password_hash

__all__ = [
    "CSRF_HEADER",
    "INTEGRATION",
    "PRINCIPAL",
    "SESSION_COOKIE",
    "Gate",
    "LoginThrottle",
    "Principal",
    "Session",
    "SessionManager",
    "SessionStore",
    "User",
    "UserDirectory",
    "UserStore",
    "require",
    "same_origin",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "cosmo_session"
CSRF_HEADER = "X-CSRF-Token"
INTEGRATION = "integration"
"""The role of a caller with an API token."""

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash string (RFC 9106, PHC format) of ``password``, for the ``web.users`` of the configuration."""
    return _hasher.hash(password)


class UserStore(Protocol):
    """Where users are kept (:class:`cosmo.store.web.WebUserRepository`)."""

    async def all(self) -> list[StoredUser]: ...

    async def replace_all(self, users: Sequence[StoredUser]) -> list[str]: ...


class SessionStore(Protocol):
    """Where sessions are kept (:class:`cosmo.store.web.SessionRepository`)."""

    async def add(self, stored: StoredSession) -> None: ...

    async def get(self, token_hash: str) -> StoredSession | None: ...

    async def remove(self, token_hash: str) -> None: ...

    async def remove_expired(self, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in."""

    username: str
    name: str
    role: Role
    extension: str | None
    password_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    """A sign-in.  ``expires_at`` is POSIX time."""

    token_hash: str
    username: str
    csrf_token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request or holds a socket.

    ``role`` is a :class:`Role` for a person, :data:`INTEGRATION` for an API token.
    """

    username: str
    name: str
    role: str
    extension: str | None = None
    session: Session | None = None

    @property
    def is_person(self) -> bool:
        """True for a signed-in person (a cookie session), False for an integration."""
        return self.session is not None

    def to_dict(self) -> dict[str, object]:
        """What the pages show of the signed-in person."""
        return {"username": self.username, "name": self.name, "role": self.role, "extension": self.extension}


PRINCIPAL = web.RequestKey("principal", Principal)
"""The request's principal, set by :meth:`Gate.middleware` on the routes it guards."""


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


async def _verify(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


class UserDirectory:
    """The configured users, hashed, kept in the store and in memory.

    :meth:`load` runs at start and after every configuration reload.  A plain
    password is hashed once; while it stays the same across reloads the hash
    is kept (recognised by a keyed digest that lives in this process only).
    """

    def __init__(self, store: UserStore) -> None:
        self._store = store
        self._users: dict[str, User] = {}
        self._by_extension: dict[str, User] = {}
        self._key = secrets.token_bytes(32)
        self._hashed: dict[str, tuple[bytes, str]] = {}
        self._dummy_hash: str | None = None

    async def load(self, users: Sequence[WebUserSettings]) -> list[str]:
        """Make ``users`` the ones who may sign in; returns the user names removed."""
        plain = [u for u in users if not is_password_hash(u.password.get_secret_value())]
        digests = {u.username: self._digest(u.password.get_secret_value()) for u in plain}
        todo = [u for u in plain if self._hashed.get(u.username, (b"", ""))[0] != digests[u.username]]
        fresh = await asyncio.gather(*(asyncio.to_thread(_hasher.hash, u.password.get_secret_value()) for u in todo))
        for user, hashed in zip(todo, fresh, strict=True):
            self._hashed[user.username] = (digests[user.username], hashed)
        stored: list[StoredUser] = []
        for u in users:
            secret = u.password.get_secret_value()
            password_hash = secret if is_password_hash(secret) else self._hashed[u.username][1]
            stored.append(StoredUser(username=u.username, role=str(u.role), name=u.display_name,
                                     password_hash=password_hash, extension=u.extension))
        removed = await self._store.replace_all(stored)
        self._users = {
            s.username: User(s.username, s.name, Role(s.role), s.extension, s.password_hash) for s in stored
        }
        self._by_extension = {u.extension: u for u in self._users.values() if u.extension is not None}
        for name in list(self._hashed):
            if name not in self._users:
                del self._hashed[name]
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(_hasher.hash, secrets.token_urlsafe(16))
        log.info("web: %d users can sign in%s", len(self._users),
                 f"; removed {', '.join(removed)}" if removed else "")
        return removed

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def get(self, username: str) -> User | None:
        """The user called ``username``."""
        return self._users.get(username)

    def by_extension(self, extension: str) -> User | None:
        """The agent working as ``extension``."""
        return self._by_extension.get(extension)

    def agents(self) -> list[User]:
        """Users with the agent role."""
        return [u for u in self._users.values() if u.role is Role.AGENT]

    def all(self) -> list[User]:
        """Every user."""
        return list(self._users.values())

    async def verify(self, username: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else ``None`` (in about the same time either way)."""
        user = self._users.get(username)
        if user is None:
            if self._dummy_hash is not None:
                await _verify(self._dummy_hash, password)
            return None
        return user if await _verify(user.password_hash, password) else None


class LoginThrottle:
    """Failed sign-ins per client address: after ``max_failures`` within ``block_s``, it waits ``block_s``."""

    def __init__(self, max_failures: Callable[[], int], block_s: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_failures
        self._block = block_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def blocked_for(self, address: str) -> float:
        """Seconds ``address`` must still wait (0: it may try)."""
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return 0.0
        return left

    def failed(self, address: str) -> None:
        """Count one failure of ``address``."""
        now = self._clock()
        window = self._block()
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and times[0] < now - window:
            times.popleft()
        if len(times) >= self._max():
            self._blocked[address] = now + window
            times.clear()
            log.warning("web: sign-ins from %s blocked for %.0f s after repeated failures", address, window)
        if len(self._failures) > 10_000:  # bounded: forget the quietest addresses
            for key in [k for k, v in self._failures.items() if not v][:5_000]:
                del self._failures[key]

    def succeeded(self, address: str) -> None:
        """Forget the failures of ``address``."""
        self._failures.pop(address, None)


class SessionManager:
    """Sessions in the store, cached in memory (a node sees its own sessions without a query)."""

    def __init__(self, store: SessionStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, Session] = {}
        self.listeners: list[Callable[[Session], None]] = []
        """Called when a session ends (signed out, expired, user removed): sockets close."""

    async def create(self, user: User, lifetime_s: float) -> tuple[str, Session]:
        """A new session for ``user``: the cookie value and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(token_hash(token), user.username, secrets.token_urlsafe(32), now + lifetime_s)
        await self._store.add(StoredSession(
            token_hash=session.token_hash, username=user.username, csrf_token=session.csrf_token,
            created_at=datetime.fromtimestamp(now, UTC), expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        ))
        self._cache[session.token_hash] = session
        return token, session

    async def lookup(self, token: str) -> Session | None:
        """The live session of a cookie value."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        session = self._cache.get(key)
        if session is None:
            stored = await self._store.get(key)
            if stored is None:
                return None
            session = Session(stored.token_hash, stored.username, stored.csrf_token, stored.expires_at.timestamp())
            self._cache[key] = session
        if session.expires_at <= self._clock():
            await self.end(session)
            return None
        return session

    async def end(self, session: Session) -> None:
        """End a session (sign out); its sockets are told."""
        self._cache.pop(session.token_hash, None)
        await self._store.remove(session.token_hash)
        for listener in self.listeners:
            listener(session)

    def end_user(self, username: str) -> None:
        """Forget the cached sessions of a user who was removed (the store dropped their sessions
        with them) or changed (the next request sees the new role)."""
        for key, session in list(self._cache.items()):
            if session.username == username:
                del self._cache[key]
                for listener in self.listeners:
                    listener(session)

    async def purge(self) -> int:
        """Forget expired sessions; returns how many the store removed."""
        now = self._clock()
        for key, session in list(self._cache.items()):
            if session.expires_at <= now:
                del self._cache[key]
                for listener in self.listeners:
                    listener(session)
        return await self._store.remove_expired(datetime.fromtimestamp(now, UTC))


def same_origin(request: web.Request) -> bool:
    """True unless the request carries an ``Origin`` of another site than the one it was sent to."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site request (browsers send Origin on POST and WebSocket)
    try:
        url = URL(origin)
    except ValueError:
        return False
    host = request.headers.get("Host", "")
    default = {"http": 80, "https": 443}.get(url.scheme or "")
    port = f":{url.port}" if url.port is not None and url.port != default else ""
    return bool(url.host) and f"{url.host}{port}".lower() == host.lower()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    """Finds the principal of a request: API token first, then the session cookie."""

    def __init__(self, users: UserDirectory, sessions: SessionManager, api_tokens: Callable[[], Iterable[str]]) -> None:
        self.users = users
        self.sessions = sessions
        self.api_tokens = api_tokens

    def bearer(self, request: web.Request) -> Principal | None:
        """The integration principal of an ``Authorization: Bearer`` API token, if valid."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode()
        if any(hmac.compare_digest(given, t.encode()) for t in self.api_tokens()):
            return Principal(username="api-token", name="API token", role=INTEGRATION)
        return None

    async def principal(self, request: web.Request) -> Principal | None:
        """Who sent ``request``, or ``None``."""
        found = self.bearer(request)
        if found is not None:
            return found
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        session = await self.sessions.lookup(token)
        if session is None:
            return None
        user = self.users.get(session.username)
        if user is None:
            return None
        return Principal(username=user.username, name=user.name, role=str(user.role),
                         extension=user.extension, session=session)

    @staticmethod
    def csrf_ok(request: web.Request, principal: Principal) -> bool:
        """True when the request may change state: no cookie session, a safe method, or the right token."""
        if principal.session is None or request.method not in UNSAFE_METHODS:
            return True
        given = request.headers.get(CSRF_HEADER, "")
        return bool(given) and hmac.compare_digest(given.encode(), principal.session.csrf_token.encode())


def require(*roles: str) -> Callable[[Handler], Handler]:
    """Handler decorator: the principal must have one of ``roles`` (403 otherwise).

    The gate's middleware has already answered 401 to a request without a principal.
    """

    allowed = frozenset(str(r) for r in roles)

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = request.get(PRINCIPAL)
            if principal is None:
                raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type="application/json")
            if principal.role not in allowed:
                raise web.HTTPForbidden(text=json.dumps({"error": f"{principal.role} may not do this"}),
                                        content_type="application/json")
            return await handler(request)

        return functools.wraps(handler)(guarded)

    return decorate
