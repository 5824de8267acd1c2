"""SQLAlchemy models of the tables Cosmo keeps.

Every timestamp is a timezone-aware UTC ``datetime`` in Python.  PostgreSQL
stores it as ``timestamptz``; SQLite, which has no such type, stores naive UTC
text of fixed width, so comparisons in SQL stay correct there too.

The schema itself is created and changed only by the Alembic revisions in
``cosmo/store/migrations``; a change here needs a new revision there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Agent", "Base", "Cdr", "Customer", "EventLogEntry", "Interaction", "Registration", "UtcDateTime", "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names fixed by convention, so migrations can name them on every database."""

Id = BigInteger().with_variant(Integer, "sqlite")
"""64-bit ids; SQLite needs plain INTEGER for an auto-incrementing rowid key."""

Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime``; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps only timezone-aware times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of Cosmo's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: Json}  # noqa: RUF012 (SQLAlchemy's hook)


class Agent(Base):
    """An agent as configured, with digest HA1s for the SIP realm (never the password)."""

    __tablename__ = "agents"

    extension: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    realm: Mapped[str] = mapped_column(String(255))
    # RFC 2617 §3.2.2.2 / RFC 8760: HA1 = H(username ":" realm ":" password).
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Registration(Base):
    """One binding of the location service: an AOR reachable at a contact (RFC 3261 §10)."""

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("aor", "contact"),
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    aor: Mapped[str] = mapped_column(String(255), index=True)
    contact: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    call_id: Mapped[str] = mapped_column(String(255))
    cseq: Mapped[int] = mapped_column(BigInteger)
    source_transport: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str] = mapped_column(String(255))
    source_port: Mapped[int] = mapped_column(Integer)
    # RFC 5626 outbound: +sip.instance and reg-id identify a flow across re-registrations.
    instance_id: Mapped[str | None] = mapped_column(String(255))
    reg_id: Mapped[int | None] = mapped_column(Integer)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    # RFC 3327 Path header values, in order.
    path: Mapped[list[str]] = mapped_column(Json, default=list)
    q: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cdr(Base):
    """A call detail record, written once when a call ends."""

    __tablename__ = "cdrs"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        Index(None, "started_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    trunk: Mapped[str | None] = mapped_column(String(64))
    from_uri: Mapped[str] = mapped_column(Text)
    to_uri: Mapped[str] = mapped_column(Text)
    caller: Mapped[str] = mapped_column(String(255))
    callee: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    end_reason: Mapped[str] = mapped_column(String(64))
    hangup_by: Mapped[str | None] = mapped_column(String(16))
    sip_status: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EventLogEntry(Base):
    """One event as published on the bus, kept for reports and for replay after a restart."""

    __tablename__ = "event_log"
    __table_args__ = (Index(None, "ts"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ts: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AgentStateRow(Base):
    """An agent's ACD state as last stored (``cosmo.acd.AgentSnapshot`` data): restored at start."""

    __tablename__ = "agent_states"

    extension: Mapped[str] = mapped_column(String(32), primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkItemRow(Base):
    """A queued work item of a durable channel (e-mail, callback, voicemail), kept until done."""

    __tablename__ = "work_items"
    __table_args__ = (Index(None, "enqueued_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # POSIX time the item joined the queue (a callback keeps the caller's).
    enqueued_at: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The agent working on it, once accepted; restored to that agent.
    agent: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Customer(Base):
    """A customer: found by phone number, account number or e-mail address on every channel."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    # As entered (``+1 555 010 0123``); ``phone_key`` is its digits, for look-ups.
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_key: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)  # lower case
    account: Mapped[str | None] = mapped_column(String(64), unique=True)
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    language: Mapped[str | None] = mapped_column(String(16))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Anything else an integration keeps about the customer (balance, contract...).
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Interaction(Base):
    """One contact with a customer on any channel (a call, an e-mail, a callback): the history."""

    __tablename__ = "interactions"
    __table_args__ = (Index(None, "customer_id", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    customer_id: Mapped[int | None] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(16))
    # The call id, e-mail id... of the interaction in its own channel.
    ref: Mapped[str] = mapped_column(String(128), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(64))
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WebUserRow(Base):
    """A person who signs in to the desktop, wallboard or admin pages: an Argon2 hash, never the password."""

    __tablename__ = "web_users"
    __table_args__ = (CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name="role"),)

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # The ACD extension an agent works as.
    extension: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebSessionRow(Base):
    """A browser sign-in, found by the SHA-256 of its cookie (the cookie itself is never stored)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class KnowledgeArticle(Base):
    """A knowledge-base article; ``tags`` match it to IVR choices, queues and e-mail subjects."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------- e-mail (cosmo.email)


class EmailCaseRow(Base):
    """An e-mail case: one customer's matter, the thread of its messages and its open work item."""

    __tablename__ = "email_cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'answered', 'closed')", name="status"),
        Index(None, "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[int | None] = mapped_column(Id, index=True)
    # The customer's address (lower case) and ours the case is with (From of replies).
    address: Mapped[str | None] = mapped_column(String(320), index=True)
    mailbox: Mapped[str] = mapped_column(String(320))
    queue: Mapped[str] = mapped_column(String(64))
    # open: waiting for an agent or being handled; answered: waiting for the customer.
    status: Mapped[str] = mapped_column(String(16), default="open")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rules: Mapped[list[str]] = mapped_column(Json, default=list)
    language: Mapped[str | None] = mapped_column(String(16))
    # The case's work item in the ACD while it has one; item_seq numbers them.
    item_id: Mapped[str | None] = mapped_column(String(64))
    item_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The agent handling the case now, or the last one who did.
    agent: Mapped[str | None] = mapped_column(String(32))
    # Arrival of the oldest customer message not yet answered (the response-time clock).
    waiting_since: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None]


class EmailMessageRow(Base):
    """One e-mail, in (a customer's) or out (a reply, an acknowledgement); its raw bytes are a file."""

    __tablename__ = "email_messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        # An IMAP message is stored once: RFC 3501 §2.3.1.1 (UIDVALIDITY, UID) names it for good.
        UniqueConstraint("imap_mailbox", "imap_uidvalidity", "imap_uid"),
        Index(None, "direction", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(Id, index=True)
    direction: Mapped[str] = mapped_column(String(3))
    # mail (a customer's), reply (an agent's), ack (automatic acknowledgement).
    kind: Mapped[str] = mapped_column(String(16))
    # in: stored -> routed; out: queued -> sent | failed.
    status: Mapped[str] = mapped_column(String(16))
    # smtp, imap:<mailbox>, agent:<extension>, auto.
    source: Mapped[str] = mapped_column(String(80))
    message_id: Mapped[str | None] = mapped_column(String(512), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(512))
    reference_ids: Mapped[str] = mapped_column(Text, default="")
    # The SMTP envelope (RFC 5321 MAIL FROM, RCPT TO).
    mail_from: Mapped[str | None] = mapped_column(String(320))
    rcpt_to: Mapped[list[str]] = mapped_column(Json, default=list)
    from_addr: Mapped[str | None] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to_addrs: Mapped[list[str]] = mapped_column(Json, default=list)
    cc_addrs: Mapped[list[str]] = mapped_column(Json, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The other side's address (sender of mail in, first recipient of mail out), lower case.
    peer: Mapped[str | None] = mapped_column(String(320), index=True)
    # The raw message, relative to the e-mail store directory.
    eml_path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    text_source: Mapped[str] = mapped_column(String(8), default="none")
    attachments: Mapped[list[Any]] = mapped_column(Json, default=list)
    problems: Mapped[list[str]] = mapped_column(Json, default=list)
    headers: Mapped[list[Any]] = mapped_column(Json, default=list)
    language: Mapped[str | None] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(32))
    # Sending (out): tries so far, when the next is due, the relay's last answer.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    imap_mailbox: Mapped[str | None] = mapped_column(String(64))
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EmailMailboxRow(Base):
    """Where IMAP polling of one configured mailbox stands: its UIDVALIDITY and the last UID stored."""

    __tablename__ = "email_mailboxes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
