"""Settings of the e-mail channel: intake by SMTP and IMAP, the relay for replies, auto-acknowledge.

:class:`EmailSettings` is the ``email:`` section of the main configuration
(which imports this module, never the other way round).  Classification rules
and response-time targets live in their own file (``rules_file``, see
:mod:`cosmo.email.rules`), which is re-read when it changes.

Queue names are only checked for form here; that they exist is checked by the
main configuration (:meth:`EmailSettings.queue_references`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_ACK_BODY",
    "DEFAULT_ACK_SUBJECT",
    "AddressSettings",
    "AutoAckSettings",
    "EmailSettings",
    "ImapMailboxSettings",
    "RelaySettings",
    "ReplySettings",
    "Security",
    "SmtpIntakeSettings",
    "normalise_address",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")

QueueName = Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME)]
Port = Annotated[int, Field(ge=0, le=65535)]

Security = Literal["none", "starttls", "tls"]
"""How a connection to a mail server is protected: not at all, STARTTLS after connecting, or TLS from the start."""

DEFAULT_ACK_SUBJECT = "Re: $subject [#$case]"
DEFAULT_ACK_BODY = """\
Hello $name,

thank you for your message. We have received it and opened case #$case for it;
one of our team will answer you as soon as possible.

Please keep [#$case] in the subject if you write to us again about this.

-- 
This is an automatic acknowledgement; there is no need to answer it.
"""


def normalise_address(text: str) -> str:
    """An e-mail address in the form Cosmo compares them: stripped, lower case.

    Raises ``ValueError`` when ``text`` is not ``local@domain``.
    """
    address = text.strip().lower()
    if not _ADDRESS.match(address):
        raise ValueError(f"not an e-mail address: {text!r}")
    return address


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class AddressSettings(_Model):
    """Where mail for one of our addresses goes: its queue, and the name replies are signed with.

    In the file an address maps either to a queue name or to ``{queue, name}``.
    """

    queue: QueueName
    # Display name of the address in replies and acknowledgements ("Example Support").
    name: str = Field(default="", max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"queue": data} if isinstance(data, str) else data


class SmtpIntakeSettings(_Model):
    """The SMTP listener that receives mail for our addresses (RFC 5321).

    A message is stored (raw file and database row, committed) before the
    ``250`` that takes responsibility for it.  ``cert_file`` and ``key_file``
    offer STARTTLS (RFC 3207); ``require_starttls`` refuses mail before it.
    """

    host: str = "127.0.0.1"
    port: Port = 2525
    # Name in the greeting and in Received headers.
    hostname: str = Field(default="cosmo.local", min_length=1, max_length=255)
    # Larger messages are refused with 552 (announced by the SIZE extension, RFC 1870).
    max_message_size: int = Field(default=25 * 1024 * 1024, ge=1024, le=1 << 30)
    max_recipients: int = Field(default=100, ge=1, le=1000)
    # Idle seconds before a client connection is closed.
    timeout_s: float = Field(default=300, gt=0)
    cert_file: Path | None = None
    key_file: Path | None = None
    require_starttls: bool = False

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for path in (self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"file not found: {path}")
        if self.require_starttls and self.cert_file is None:
            raise ValueError("require_starttls needs cert_file and key_file")
        return self


class ImapMailboxSettings(_Model):
    """A mailbox polled over IMAP (RFC 3501); its new messages join ``queue``.

    Messages are fetched in UID order and remembered by UIDVALIDITY and UID,
    so none is fetched twice or skipped, across restarts too.  After a message
    is stored, ``after_store`` says what happens to it on the server: ``seen``
    sets ``\\Seen``, ``move`` moves it to ``move_to``, ``delete`` expunges it,
    ``keep`` leaves it alone.
    """

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME)]
    host: str = "127.0.0.1"
    port: Port | None = None
    # IMAP over TLS (port 993) or in the clear (143, loopback and tests only); aioimaplib has no STARTTLS.
    security: Literal["none", "tls"] = "tls"
    username: str = Field(min_length=1)
    password: SecretStr
    mailbox: str = Field(default="INBOX", min_length=1)
    queue: QueueName
    # Our address for this mailbox (From of replies); default: an address of ``addresses`` for the queue.
    address: str | None = None
    poll_interval_s: float = Field(default=30.0, gt=0, le=86400)
    after_store: Literal["keep", "seen", "move", "delete"] = "seen"
    move_to: str | None = None
    # Messages fetched per round.
    batch: int = Field(default=50, ge=1, le=1000)
    max_message_size: int = Field(default=25 * 1024 * 1024, ge=1024, le=1 << 30)
    verify_certificate: bool = True
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else normalise_address(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.after_store == "move") != (self.move_to is not None):
            raise ValueError("after_store: move and move_to go together")
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to: the configured one, else 993 for TLS and 143 otherwise."""
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143


class RelaySettings(_Model):
    """The SMTP relay replies and acknowledgements are sent through.

    A message the relay does not take (down, or a temporary 4xx) stays queued
    and is tried again after ``retry_initial_s``, doubling up to
    ``retry_max_s``, until ``give_up_after_s`` has passed since it was queued
    or the relay refuses it for good (5xx): then it is marked failed.
    """

    host: str = "127.0.0.1"
    port: Port = 25
    security: Security = "none"
    username: str | None = None
    password: SecretStr | None = None
    verify_certificate: bool = True
    # Name given in EHLO; default: the SMTP intake's hostname.
    local_hostname: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    retry_initial_s: float = Field(default=30.0, gt=0)
    retry_max_s: float = Field(default=900.0, gt=0)
    give_up_after_s: float = Field(default=2 * 86400.0, gt=0)
    # Messages sent at once.
    concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        return self


_NEVER_ACK = ["no-?reply", "do-?not-?reply", "mailer-daemon", "postmaster", "bounces?", "listserv", "majordomo"]


class AutoAckSettings(_Model):
    """The acknowledgement sent for a new case (``$case``, ``$subject``, ``$name``, ``$queue`` are filled in).

    Never sent to automatic mail (``Auto-Submitted``, RFC 3834), mailing lists
    (``List-Id``, ``Precedence: bulk/list/junk``), bounces (null sender), our
    own addresses, or local parts matching ``never_to`` (``noreply``,
    ``mailer-daemon``...); at most ``max_per_sender`` per ``window_s`` to one
    address, so two auto-responders cannot loop.
    """

    # Templates keep their whitespace (a signature's "-- " line, indented text).
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    enabled: bool = True
    subject: str = Field(default=DEFAULT_ACK_SUBJECT, min_length=1)
    body: str = Field(default=DEFAULT_ACK_BODY, min_length=1)
    # Also acknowledge a customer's follow-up to an existing case.
    on_follow_up: bool = False
    max_per_sender: int = Field(default=3, ge=1)
    window_s: float = Field(default=3600.0, gt=0)
    # Regular expressions matched against the whole local part, case-insensitively.
    never_to: list[str] = Field(default_factory=lambda: list(_NEVER_ACK))

    @field_validator("never_to")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return value


class ReplySettings(_Model):
    """How agents' replies are written: form letters, the quote of the customer's message, a signature."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    # Form letters by name; ``$body`` (the agent's text), ``$name``, ``$case``,
    # ``$subject``, ``$agent`` and ``$queue`` are filled in.
    templates: dict[Annotated[str, Field(pattern=_NAME)], str] = Field(default_factory=dict)
    quote_original: bool = True
    # Appended to every reply ("-- \n$agent\nExample Support"); the same placeholders.
    signature: str = ""


class EmailSettings(_Model):
    """The e-mail channel.  See the module documentation."""

    enabled: bool = True
    # Our addresses and the queue each one's mail goes to.
    addresses: dict[str, AddressSettings] = Field(default_factory=dict)
    # null: no SMTP listener (IMAP only).
    smtp: SmtpIntakeSettings | None = Field(default_factory=SmtpIntakeSettings)
    imap: list[ImapMailboxSettings] = Field(default_factory=list)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    # Ordered classification rules and response-time targets (re-read when changed).
    rules_file: Path | None = None
    auto_ack: AutoAckSettings = Field(default_factory=AutoAckSettings)
    reply: ReplySettings = Field(default_factory=ReplySettings)
    # Offered e-mails go straight to the agent (no accept needed).
    auto_accept: bool = False
    # A customer's message to a closed case within this time reopens it; later it opens a new case.
    reopen_within_s: float = Field(default=7 * 86400.0, ge=0)
    # Where raw messages and attachments are kept; default <data_dir>/email.
    store_dir: Path | None = None
    # fsync each stored message before the 250 (off only for throwaway test data).
    fsync: bool = True
    # Characters of a message's text kept in the database (the raw message keeps all of it).
    max_text_chars: int = Field(default=1_000_000, ge=1000)

    @field_validator("addresses", mode="before")
    @classmethod
    def _lower_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            out: dict[str, object] = {}
            for key, item in value.items():
                address = normalise_address(str(key))
                if address in out:
                    raise ValueError(f"address {address} is listed twice")
                out[address] = item
            return out
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [mailbox.name for mailbox in self.imap]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"imap mailbox names must be unique: {', '.join(duplicates)}")
        if self.rules_file is not None and not self.rules_file.is_file():
            raise ValueError(f"rules_file not found: {self.rules_file}")
        return self

    def queue_references(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Every queue named here, with its path in the section (for the main configuration's check)."""
        for address, target in self.addresses.items():
            yield ("addresses", address, "queue"), target.queue
        for index, mailbox in enumerate(self.imap):
            yield ("imap", index, "queue"), mailbox.queue

    def address_for_queue(self, queue: str) -> str | None:
        """Our first address whose mail goes to ``queue``."""
        return next((address for address, target in self.addresses.items() if target.queue == queue), None)
