"""Settings of the people's side of the web room: sign-in, sessions, the CTI socket.

``WebSettings`` is one section of Cosmo's configuration (``web:`` in
``cosmo.yaml``).  It is validated on its own and imports nothing of
:mod:`cosmo.config`, which embeds it.

Passwords are given either as plain text (the demo) or as an Argon2 hash
string (``$argon2id$v=19$m=65536,t=3,p=4$...``, made with ``cosmo`` or any
Argon2 tool).  A plain password is hashed when the server loads the users
(:class:`cosmo.web.auth.UserDirectory`), so the store only ever holds hashes.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal, Self

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_DISPOSITIONS",
    "DisconnectPolicy",
    "RateLimit",
    "Role",
    "WebSettings",
    "WebUserSettings",
    "is_password_hash",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"

DEFAULT_DISPOSITIONS = ("resolved", "follow-up", "escalated", "sale", "complaint", "wrong-number")
"""Wrap-up codes offered when the configuration names none."""


class Role(enum.StrEnum):
    """What a signed-in person may do.  Integrations (API tokens) are not people and have no role here."""

    AGENT = "agent"
    """Takes work on the desktop: state, offers, call controls, wrap-up, customer pages."""
    SUPERVISOR = "supervisor"
    """Watches the wallboard, changes agents' states, re-prioritises and moves waiting items."""
    ADMIN = "admin"
    """Everything a supervisor does, and edits the knowledge base."""


def is_password_hash(text: str) -> bool:
    """True when ``text`` is an Argon2 hash string (PHC format) rather than a plain password."""
    if not text.startswith("$argon2"):
        return False
    try:
        extract_parameters(text)
    except (InvalidHashError, ValueError):
        return False
    return True


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class WebUserSettings(_Model):
    """One person who signs in.  Agents name the ACD extension they work as."""

    username: str = Field(min_length=1, max_length=64, pattern=_NAME)
    role: Role
    password: SecretStr
    name: str = Field(default="", max_length=200)
    extension: str | None = Field(default=None, min_length=1, max_length=32)

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text:
            raise ValueError("a password is needed")
        if text.startswith("$argon2") and not is_password_hash(text):
            raise ValueError("looks like an Argon2 hash but is not a valid one")
        return value

    @model_validator(mode="after")
    def _check_extension(self) -> Self:
        if self.role is Role.AGENT and self.extension is None:
            raise ValueError(f"user {self.username}: an agent needs the extension it works as")
        if self.role is not Role.AGENT and self.extension is not None:
            raise ValueError(f"user {self.username}: only agents have an extension")
        return self

    @property
    def display_name(self) -> str:
        """``name``, or the user name when no name is given."""
        return self.name or self.username


class DisconnectPolicy(_Model):
    """What happens to an agent whose desktop went away (closed, or stopped answering heart-beats).

    After ``after_s`` seconds without any desktop connection of the agent,
    its ACD state becomes ``state`` (``not_ready`` with ``reason``, a reason
    code of the ``acd`` section; or ``logged_out``); ``keep`` changes nothing.
    An agent at work gets the not-ready state when the work ends.
    """

    after_s: float = Field(default=60.0, ge=0)
    state: Literal["not_ready", "logged_out", "keep"] = "not_ready"
    reason: str | None = "no-answer"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.state == "not_ready" and not self.reason:
            raise ValueError("not_ready needs a reason (a reason code of the acd section)")
        if self.state != "not_ready" and "reason" in self.model_fields_set and self.reason is not None:
            raise ValueError(f"a reason goes with not_ready only, not with {self.state}")
        return self


class RateLimit(_Model):
    """How many messages one CTI socket may send: a token bucket, and when a flood closes it."""

    messages_per_s: float = Field(default=10.0, gt=0)
    burst: int = Field(default=30, ge=1)
    close_after: int = Field(default=300, ge=1)
    """Messages dropped (beyond the bucket) before the socket is closed as a flood."""


class WebSettings(_Model):
    """The ``web`` section: people who sign in, sessions and the CTI socket."""

    users: list[WebUserSettings] = Field(default_factory=list)
    session_lifetime_s: float = Field(default=12 * 3600.0, ge=60)
    """A sign-in lasts this long (a working day and some), then the person signs in again."""
    cookie_secure: bool = False
    """Send the session cookie over HTTPS only (set it when a TLS proxy is in front)."""
    heartbeat_interval_s: float = Field(default=15.0, gt=0)
    """The server sends a ``ping`` this often; the client answers ``pong``."""
    heartbeat_timeout_s: float = Field(default=45.0, gt=0)
    """A socket that sent nothing for this long is closed."""
    disconnect: DisconnectPolicy = Field(default_factory=DisconnectPolicy)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    replay_messages: int = Field(default=100, ge=1, le=100_000)
    """Messages kept per agent stream for a reconnecting desktop (``resume``)."""
    replay_bytes: int = Field(default=128 * 1024, ge=1024)
    """... and at most this many bytes of them; beyond, a reconnect gets a snapshot."""
    pop_timeout_s: float = Field(default=0.3, gt=0, le=5)
    """Longest a screen-pop may hold up the call it announces (:meth:`CtiHub.pop`)."""
    pop_lookup_wait_s: float = Field(default=0.03, ge=0, le=5)
    """Longest an offer waits for the customer's history; later, the history follows in an ``offer_update``."""
    wallboard_interval_s: float = Field(default=0.5, gt=0, le=10)
    """Queue figures are pushed at most this often (changes in between are merged)."""
    dispositions: list[Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME)]] = Field(
        default_factory=lambda: list(DEFAULT_DISPOSITIONS), min_length=1
    )
    """Wrap-up codes an agent picks from."""
    knowledge_file: Path | None = None
    """Knowledge-base articles (YAML list) loaded into an empty table at start (the demo's)."""
    login_max_failures: int = Field(default=5, ge=1)
    login_block_s: float = Field(default=60.0, ge=0)
    """After ``login_max_failures`` failed sign-ins from one address within this time, it waits this long."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        names: set[str] = set()
        extensions: dict[str, str] = {}
        for user in self.users:
            if user.username in names:
                raise ValueError(f"user {user.username} is defined twice")
            names.add(user.username)
            if user.extension is not None:
                other = extensions.get(user.extension)
                if other is not None:
                    raise ValueError(f"users {other} and {user.username} both work as extension {user.extension}")
                extensions[user.extension] = user.username
        if len(set(self.dispositions)) != len(self.dispositions):
            raise ValueError("dispositions: a code is listed twice")
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise ValueError("heartbeat_timeout_s must be longer than heartbeat_interval_s")
        if self.pop_lookup_wait_s >= self.pop_timeout_s:
            raise ValueError("pop_lookup_wait_s must be shorter than pop_timeout_s")
        return self

    def user(self, username: str) -> WebUserSettings | None:
        """The user called ``username``, if configured."""
        return next((u for u in self.users if u.username == username), None)
