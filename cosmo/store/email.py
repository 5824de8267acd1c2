"""E-mail in the store: messages in and out, cases, IMAP positions: ``EmailRepository``.

Messages received are written in two steps.  At intake (before the SMTP
``250``, or before an IMAP position moves on) only what the envelope says is
stored: the raw file's path, size, sender, recipients, status ``stored``.
Routing then fills in what the message says (headers, text, attachments)
and links it to its case, status ``routed``, in one transaction with the
case's change and the acknowledgement to send.  A message left ``stored`` by
a crash is routed at the next start.

Messages out are ``queued`` with their raw bytes already written, then
``sent``, or ``failed`` for good; the sender records every try.

A case's work item in the ACD is named ``email-<case>-<n>`` (:func:`case_item_id`),
``n`` counting the items the case has had.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cosmo.store.db import Database
from cosmo.store.errors import StoreError
from cosmo.store.models import EmailCaseRow, EmailMailboxRow, EmailMessageRow, utcnow

__all__ = [
    "CASE_STATUSES",
    "Attempt",
    "CaseRecord",
    "EmailRecord",
    "EmailRepository",
    "MessageContent",
    "NewCase",
    "NewIncoming",
    "NewOutgoing",
    "RoutePlan",
    "case_item_id",
    "incoming_record",
    "outgoing_record",
]

CASE_STATUSES = ("open", "answered", "closed")


def case_item_id(case_id: int, seq: int) -> str:
    """The id of a case's ``seq``-th work item."""
    return f"email-{case_id}-{seq}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at sending a message: its new ``status`` (``sent``, ``queued``, ``failed``) and details."""

    email_id: int
    status: str
    error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewIncoming:
    """A received message as stored at intake: where its bytes are and what the envelope said."""

    source: str
    eml_path: str
    size: int
    received_at: datetime
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    message_id: str | None = None
    imap_uid: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What routing learnt from a message's bytes (``cosmo.email.mime.ParsedEmail`` as columns)."""

    message_id: str | None
    in_reply_to: str | None
    reference_ids: tuple[str, ...]
    from_addr: str | None
    from_name: str
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    text_source: str
    attachments: Sequence[Mapping[str, Any]]
    problems: tuple[str, ...]
    headers: Sequence[tuple[str, str]]
    language: str | None
    peer: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case opened by a message."""

    subject: str
    customer_id: int | None
    address: str | None
    mailbox: str
    queue: str
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    rules: tuple[str, ...] = ()
    language: str | None = None
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """How one stored message is linked: to an existing case (changed by ``case_values``) or a new one.

    ``open_item`` gives the case a new work item id (see :func:`case_item_id`).
    """

    message_id: int
    content: MessageContent
    case_id: int | None = None
    new_case: NewCase | None = None
    case_values: Mapping[str, Any] = field(default_factory=dict)
    open_item: bool = False


@dataclass(frozen=True, slots=True)
class NewOutgoing:
    """A message to send (a reply, an acknowledgement), its raw bytes already written."""

    kind: str
    source: str
    eml_path: str
    size: int
    message_id: str
    in_reply_to: str | None
    reference_ids: tuple[str, ...]
    mail_from: str
    rcpt_to: tuple[str, ...]
    from_addr: str
    from_name: str
    to_addrs: tuple[str, ...]
    subject: str
    text: str
    case_id: int | None = None
    agent: str | None = None
    cc_addrs: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case as stored."""

    id: int
    subject: str
    customer_id: int | None
    address: str | None
    mailbox: str
    queue: str
    status: str
    priority: int
    skills: Mapping[str, int]
    rules: tuple[str, ...]
    language: str | None
    item_id: str | None
    item_seq: int
    agent: str | None
    waiting_since: datetime | None
    first_response_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id, "subject": self.subject, "customer_id": self.customer_id, "address": self.address,
            "mailbox": self.mailbox, "queue": self.queue, "status": self.status, "priority": self.priority,
            "skills": dict(self.skills), "rules": list(self.rules), "language": self.language,
            "item_id": self.item_id, "agent": self.agent, "waiting_since": _iso(self.waiting_since),
            "first_response_at": _iso(self.first_response_at), "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at), "closed_at": _iso(self.closed_at),
        }


@dataclass(frozen=True, slots=True)
class EmailRecord:
    """A message as stored (in or out)."""

    id: int
    case_id: int | None
    direction: str
    kind: str
    status: str
    source: str
    message_id: str | None
    in_reply_to: str | None
    reference_ids: tuple[str, ...]
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    from_addr: str | None
    from_name: str
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]
    subject: str
    date: datetime | None
    received_at: datetime
    peer: str | None
    eml_path: str
    size: int
    text: str
    text_source: str
    attachments: tuple[Mapping[str, Any], ...]
    problems: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    language: str | None
    agent: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    imap_mailbox: str | None
    imap_uid: int | None
    data: Mapping[str, Any]

    def summary(self) -> dict[str, Any]:
        """JSON-ready, without headers and text (lists of messages)."""
        return {
            "id": self.id, "case_id": self.case_id, "direction": self.direction, "kind": self.kind,
            "status": self.status, "source": self.source, "message_id": self.message_id,
            "from": self.from_addr, "from_name": self.from_name, "to": list(self.to_addrs), "cc": list(self.cc_addrs),
            "subject": self.subject, "date": _iso(self.date), "received_at": _iso(self.received_at),
            "size": self.size, "agent": self.agent, "attachments": [dict(a) for a in self.attachments],
            "problems": list(self.problems), "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at), "last_error": self.last_error,
            "sent_at": _iso(self.sent_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _case(row: EmailCaseRow) -> CaseRecord:
    return CaseRecord(
        id=row.id, subject=row.subject, customer_id=row.customer_id, address=row.address, mailbox=row.mailbox,
        queue=row.queue, status=row.status, priority=row.priority, skills=dict(row.skills),
        rules=tuple(row.rules), language=row.language, item_id=row.item_id, item_seq=row.item_seq,
        agent=row.agent, waiting_since=row.waiting_since, first_response_at=row.first_response_at,
        created_at=row.created_at, updated_at=row.updated_at, closed_at=row.closed_at,
    )


def _message(row: EmailMessageRow) -> EmailRecord:
    return EmailRecord(
        id=row.id, case_id=row.case_id, direction=row.direction, kind=row.kind, status=row.status,
        source=row.source, message_id=row.message_id, in_reply_to=row.in_reply_to,
        reference_ids=tuple(row.reference_ids.split()), mail_from=row.mail_from, rcpt_to=tuple(row.rcpt_to),
        from_addr=row.from_addr, from_name=row.from_name, to_addrs=tuple(row.to_addrs),
        cc_addrs=tuple(row.cc_addrs), subject=row.subject, date=row.date, received_at=row.received_at,
        peer=row.peer, eml_path=row.eml_path, size=row.size, text=row.text, text_source=row.text_source,
        attachments=tuple(dict(a) for a in row.attachments), problems=tuple(row.problems),
        headers=tuple((str(h[0]), str(h[1])) for h in row.headers), language=row.language, agent=row.agent,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, last_error=row.last_error,
        sent_at=row.sent_at, imap_mailbox=row.imap_mailbox, imap_uid=row.imap_uid, data=dict(row.data),
    )


_CASE_FIELDS = frozenset({
    "subject", "customer_id", "address", "mailbox", "queue", "status", "priority", "skills", "rules", "language",
    "agent", "waiting_since", "first_response_at", "closed_at",
})

_MAX_ID = 512


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _incoming_row(message: NewIncoming, *, mailbox: str | None = None, uidvalidity: int | None = None) -> EmailMessageRow:
    return EmailMessageRow(
        direction="in", kind="mail", status="stored", source=message.source, eml_path=message.eml_path,
        size=message.size, received_at=message.received_at, mail_from=_clip(message.mail_from, 320),
        rcpt_to=list(message.rcpt_to), problems=list(message.problems), message_id=_clip(message.message_id, _MAX_ID),
        imap_mailbox=mailbox, imap_uidvalidity=uidvalidity, imap_uid=message.imap_uid, data=dict(message.data),
        reference_ids="", from_name="", to_addrs=[], cc_addrs=[], subject="", text="", text_source="none",
        attachments=[], headers=[], attempts=0,
    )


def outgoing_record(email_id: int, message: NewOutgoing, now: datetime) -> EmailRecord:
    """The stored row of a message just queued by :meth:`EmailRepository.add_outgoing_many` (for the relay)."""
    return EmailRecord(
        id=email_id, case_id=message.case_id, direction="out", kind=message.kind, status="queued",
        source=message.source, message_id=message.message_id, in_reply_to=message.in_reply_to,
        reference_ids=tuple(message.reference_ids), mail_from=message.mail_from, rcpt_to=tuple(message.rcpt_to),
        from_addr=message.from_addr, from_name=message.from_name, to_addrs=tuple(message.to_addrs),
        cc_addrs=tuple(message.cc_addrs), subject=message.subject, date=now, received_at=now,
        peer=message.to_addrs[0].lower() if message.to_addrs else None, eml_path=message.eml_path,
        size=message.size, text=message.text, text_source="plain", attachments=(), problems=(), headers=(),
        language=None, agent=message.agent, attempts=0, next_attempt_at=None, last_error=None, sent_at=None,
        imap_mailbox=None, imap_uid=None, data=dict(message.data),
    )


def incoming_record(email_id: int, message: NewIncoming, *, mailbox: str | None = None) -> EmailRecord:
    """The stored row of a message just inserted by :meth:`EmailRepository.add_incoming` (no need to read it back)."""
    return EmailRecord(
        id=email_id, case_id=None, direction="in", kind="mail", status="stored", source=message.source,
        message_id=message.message_id, in_reply_to=None, reference_ids=(), mail_from=message.mail_from,
        rcpt_to=tuple(message.rcpt_to), from_addr=None, from_name="", to_addrs=(), cc_addrs=(), subject="",
        date=None, received_at=message.received_at, peer=None, eml_path=message.eml_path, size=message.size,
        text="", text_source="none", attachments=(), problems=tuple(message.problems), headers=(), language=None,
        agent=None, attempts=0, next_attempt_at=None, last_error=None, sent_at=None, imap_mailbox=mailbox,
        imap_uid=message.imap_uid, data=dict(message.data),
    )


def _outgoing_row(message: NewOutgoing, now: datetime) -> EmailMessageRow:
    return EmailMessageRow(
        case_id=message.case_id, direction="out", kind=message.kind, status="queued", source=message.source,
        message_id=_clip(message.message_id, _MAX_ID), in_reply_to=_clip(message.in_reply_to, _MAX_ID),
        reference_ids=" ".join(message.reference_ids), mail_from=message.mail_from, rcpt_to=list(message.rcpt_to),
        from_addr=message.from_addr, from_name=message.from_name[:200], to_addrs=list(message.to_addrs),
        cc_addrs=list(message.cc_addrs), subject=message.subject, date=now, received_at=now,
        peer=message.to_addrs[0].lower() if message.to_addrs else None, eml_path=message.eml_path,
        size=message.size, text=message.text, text_source="plain", attachments=[], problems=[], headers=[],
        # No due time: the relay holds it in memory (EmailRepository.release_held after a restart).
        agent=message.agent, attempts=0, next_attempt_at=None, data=dict(message.data),
    )


class EmailRepository:
    """Cases and messages in the store.  See the module documentation."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # ---- intake -------------------------------------------------------------------------
    async def add_incoming(self, messages: Sequence[NewIncoming]) -> list[int]:
        """Store received messages in one transaction (committed on return); their ids in order."""
        rows = [_incoming_row(message) for message in messages]
        async with self._db.session() as session:
            session.add_all(rows)
            await session.flush()
            return [row.id for row in rows]

    async def mailbox_position(self, name: str) -> tuple[int, int] | None:
        """``(uidvalidity, last_uid)`` stored for an IMAP mailbox."""
        async with self._db.session() as session:
            row = await session.get(EmailMailboxRow, name)
            return None if row is None else (row.uidvalidity, row.last_uid)

    async def set_mailbox_position(self, name: str, uidvalidity: int, last_uid: int) -> None:
        """Record where polling of a mailbox stands (a new UIDVALIDITY starts again at ``last_uid``)."""
        async with self._db.session() as session:
            await self._position(session, name, uidvalidity, last_uid)

    async def add_from_mailbox(self, name: str, uidvalidity: int, last_uid: int,
                               messages: Sequence[NewIncoming]) -> list[int]:
        """Store messages fetched from an IMAP mailbox and move its position, in one transaction."""
        rows = [_incoming_row(message, mailbox=name, uidvalidity=uidvalidity) for message in messages]
        async with self._db.session() as session:
            session.add_all(rows)
            await self._position(session, name, uidvalidity, last_uid)
            await session.flush()
            return [row.id for row in rows]

    @staticmethod
    async def _position(session: AsyncSession, name: str, uidvalidity: int, last_uid: int) -> None:
        row = await session.get(EmailMailboxRow, name)
        if row is None:
            session.add(EmailMailboxRow(name=name, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=utcnow()))
        else:
            row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, last_uid, utcnow()

    async def mailbox_message_ids(self, name: str, message_ids: Collection[str]) -> set[str]:
        """Which of ``message_ids`` were already stored from mailbox ``name`` (under any UIDVALIDITY)."""
        if not message_ids:
            return set()
        async with self._db.session() as session:
            found = await session.scalars(
                select(EmailMessageRow.message_id).where(
                    EmailMessageRow.imap_mailbox == name, EmailMessageRow.message_id.in_(list(message_ids))
                )
            )
            return {mid for mid in found if mid is not None}

    # ---- routing ------------------------------------------------------------------------
    async def unrouted(self) -> list[EmailRecord]:
        """Received messages not yet routed, oldest first (after a crash, at start)."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(EmailMessageRow)
                .where(EmailMessageRow.direction == "in", EmailMessageRow.status == "stored")
                .order_by(EmailMessageRow.id)
            )
            return [_message(row) for row in rows]

    async def cases_for_message_ids(self, message_ids: Collection[str]) -> dict[str, int]:
        """The case of each of ``message_ids`` that a stored message has (in or out)."""
        if not message_ids:
            return {}
        async with self._db.session() as session:
            rows = await session.execute(
                select(EmailMessageRow.message_id, EmailMessageRow.case_id).where(
                    EmailMessageRow.message_id.in_(list(message_ids)), EmailMessageRow.case_id.is_not(None)
                ).order_by(EmailMessageRow.id)
            )
            out: dict[str, int] = {}
            for message_id, case_id in rows:
                if message_id is not None and case_id is not None:
                    out.setdefault(message_id, case_id)
            return out

    async def route(self, plan: RoutePlan) -> CaseRecord:
        """:meth:`route_many` for one message."""
        [case] = await self.route_many([plan])
        return case

    async def route_many(self, plans: Sequence[RoutePlan]) -> list[CaseRecord]:
        """Link stored messages to their cases, in one transaction, in order.

        Returns each plan's case as it stands right after that plan (a later
        plan may change the same case again).  Raises :class:`StoreError` for
        an unknown message or case, or a plan naming both or neither.
        """
        for plan in plans:
            if (plan.case_id is None) == (plan.new_case is None):
                raise StoreError(f"route e-mail {plan.message_id}: give either case_id or new_case")
        now = utcnow()
        async with self._db.session() as session:
            messages = {row.id: row for row in await session.scalars(
                select(EmailMessageRow).where(EmailMessageRow.id.in_([p.message_id for p in plans])))}
            wanted = {p.case_id for p in plans if p.case_id is not None}
            cases = {row.id: row for row in await session.scalars(
                select(EmailCaseRow).where(EmailCaseRow.id.in_(wanted)))} if wanted else {}
            created: dict[int, EmailCaseRow] = {}
            for index, plan in enumerate(plans):
                message = messages.get(plan.message_id)
                if message is None:
                    raise StoreError(f"no e-mail {plan.message_id}")
                if plan.new_case is not None:
                    new = plan.new_case
                    created[index] = EmailCaseRow(
                        subject=new.subject, customer_id=new.customer_id, address=new.address,
                        mailbox=new.mailbox, queue=new.queue, status="open", priority=new.priority,
                        skills=dict(new.skills), rules=list(new.rules), language=new.language, agent=new.agent,
                        item_seq=0, waiting_since=message.received_at, created_at=now, updated_at=now,
                    )
                elif plan.case_id not in cases:
                    raise StoreError(f"no case {plan.case_id}")
            if created:
                session.add_all(created.values())
                await session.flush()
            out: list[CaseRecord] = []
            for index, plan in enumerate(plans):
                if index in created:
                    case = created[index]
                else:
                    assert plan.case_id is not None
                    case = cases[plan.case_id]
                self._apply(case, plan.case_values)
                if plan.open_item:
                    case.item_seq += 1
                    case.item_id = case_item_id(case.id, case.item_seq)
                case.updated_at = now
                message = messages[plan.message_id]
                self._fill(message, plan.content)
                message.case_id = case.id
                message.status = "routed"
                out.append(_case(case))
            await session.flush()
            return out

    @staticmethod
    def _fill(row: EmailMessageRow, content: MessageContent) -> None:
        row.message_id = _clip(content.message_id, _MAX_ID) or row.message_id
        row.in_reply_to = _clip(content.in_reply_to, _MAX_ID)
        row.reference_ids = " ".join(content.reference_ids)
        row.from_addr = _clip(content.from_addr, 320)
        row.from_name = content.from_name[:200]
        row.to_addrs = list(content.to_addrs)
        row.cc_addrs = list(content.cc_addrs)
        row.subject = content.subject
        row.date = content.date
        row.text = content.text
        row.text_source = content.text_source
        row.attachments = [dict(a) for a in content.attachments]
        row.problems = list(dict.fromkeys([*row.problems, *content.problems]))
        row.headers = [list(h) for h in content.headers]
        row.language = content.language
        row.peer = _clip(content.peer, 320)
        row.data = {**row.data, **content.data}

    @staticmethod
    def _apply(case: EmailCaseRow, values: Mapping[str, Any]) -> None:
        unknown = set(values) - _CASE_FIELDS - {"item_id"}
        if unknown:
            raise StoreError(f"unknown case field(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            if name == "status" and value not in CASE_STATUSES:
                raise StoreError(f"case status {value!r} is not one of {', '.join(CASE_STATUSES)}")
            setattr(case, name, value)

    # ---- cases --------------------------------------------------------------------------
    async def case(self, case_id: int) -> CaseRecord | None:
        """A case by id."""
        async with self._db.session() as session:
            row = await session.get(EmailCaseRow, case_id)
            return None if row is None else _case(row)

    async def update_case(self, case_id: int, *, open_item: bool = False, **values: Any) -> CaseRecord | None:
        """Change a case (``status``, ``queue``, ``agent``, ``item_id``...); ``open_item`` names a new work item.

        ``None`` when there is no such case.
        """
        async with self._db.session() as session:
            row = await session.get(EmailCaseRow, case_id)
            if row is None:
                return None
            self._apply(row, values)
            if open_item:
                row.item_seq += 1
                row.item_id = case_item_id(row.id, row.item_seq)
            row.updated_at = utcnow()
            await session.flush()
            return _case(row)

    async def cases(self, *, status: str | None = None, customer_id: int | None = None,
                    limit: int = 100) -> list[CaseRecord]:
        """Cases, the latest changed first."""
        query = select(EmailCaseRow).order_by(EmailCaseRow.updated_at.desc(), EmailCaseRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(EmailCaseRow.status == status)
        if customer_id is not None:
            query = query.where(EmailCaseRow.customer_id == customer_id)
        async with self._db.session() as session:
            return [_case(row) for row in await session.scalars(query)]

    async def cases_with_items(self) -> list[CaseRecord]:
        """Open cases that have a work item, oldest first (checked against the ACD at start)."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(EmailCaseRow).where(EmailCaseRow.status == "open", EmailCaseRow.item_id.is_not(None))
                .order_by(EmailCaseRow.id)
            )
            return [_case(row) for row in rows]

    async def thread(self, case_id: int) -> list[EmailRecord]:
        """A case's messages in and out, in the order they arrived or were written."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(EmailMessageRow).where(EmailMessageRow.case_id == case_id)
                .order_by(EmailMessageRow.received_at, EmailMessageRow.id)
            )
            return [_message(row) for row in rows]

    async def messages(self, message_ids: Collection[int]) -> list[EmailRecord]:
        """Messages by id, in id order (unknown ids are left out)."""
        if not message_ids:
            return []
        async with self._db.session() as session:
            rows = await session.scalars(
                select(EmailMessageRow).where(EmailMessageRow.id.in_(list(message_ids))).order_by(EmailMessageRow.id)
            )
            return [_message(row) for row in rows]

    async def cases_by_ids(self, case_ids: Collection[int]) -> dict[int, CaseRecord]:
        """Cases by id (unknown ids are left out)."""
        if not case_ids:
            return {}
        async with self._db.session() as session:
            rows = await session.scalars(select(EmailCaseRow).where(EmailCaseRow.id.in_(list(case_ids))))
            return {row.id: _case(row) for row in rows}

    async def message(self, message_id: int) -> EmailRecord | None:
        """A message by id."""
        async with self._db.session() as session:
            row = await session.get(EmailMessageRow, message_id)
            return None if row is None else _message(row)

    async def last_incoming(self, case_id: int) -> EmailRecord | None:
        """The customer's latest message in a case (the one a reply answers)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(EmailMessageRow).where(EmailMessageRow.case_id == case_id, EmailMessageRow.direction == "in")
                .order_by(EmailMessageRow.id.desc()).limit(1)
            )
            return None if row is None else _message(row)

    # ---- sending ------------------------------------------------------------------------
    async def add_outgoing(self, message: NewOutgoing, *, case_values: Mapping[str, Any] | None = None) -> int:
        """Queue a message for sending, and change its case (``case_values``) in the same transaction."""
        now = utcnow()
        row = _outgoing_row(message, now)
        async with self._db.session() as session:
            session.add(row)
            if message.case_id is not None and case_values:
                case = await session.get(EmailCaseRow, message.case_id)
                if case is None:
                    raise StoreError(f"no case {message.case_id}")
                self._apply(case, case_values)
                case.updated_at = now
            await session.flush()
            return row.id

    async def add_outgoing_many(self, messages: Sequence[NewOutgoing]) -> list[int]:
        """Queue several messages for sending in one transaction; their ids in order."""
        now = utcnow()
        rows = [_outgoing_row(message, now) for message in messages]
        async with self._db.session() as session:
            session.add_all(rows)
            await session.flush()
            return [row.id for row in rows]

    async def release_held(self, now: datetime) -> int:
        """Make queued messages without a due time (held by a relay that stopped) due at ``now``; how many."""
        async with self._db.session() as session:
            result = await session.execute(
                update(EmailMessageRow).where(
                    EmailMessageRow.direction == "out", EmailMessageRow.status == "queued",
                    EmailMessageRow.next_attempt_at.is_(None),
                ).values(next_attempt_at=now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def due_outgoing(self, now: datetime, limit: int = 100) -> list[EmailRecord]:
        """Queued messages whose next try is due, oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(EmailMessageRow).where(
                    EmailMessageRow.direction == "out", EmailMessageRow.status == "queued",
                    EmailMessageRow.next_attempt_at <= now,
                ).order_by(EmailMessageRow.next_attempt_at, EmailMessageRow.id).limit(limit)
            )
            return [_message(row) for row in rows]

    async def next_outgoing_at(self) -> datetime | None:
        """When the earliest queued message is due (``None``: nothing queued)."""
        async with self._db.session() as session:
            value: datetime | None = await session.scalar(
                select(func.min(EmailMessageRow.next_attempt_at)).where(
                    EmailMessageRow.direction == "out", EmailMessageRow.status == "queued"
                )
            )
            return value

    async def record_attempt(self, message_id: int, *, status: str, error: str | None = None,
                             next_attempt_at: datetime | None = None, sent_at: datetime | None = None) -> None:
        """One try at sending: ``sent``, ``queued`` again (with the next try), or ``failed``."""
        await self.record_attempts([Attempt(message_id, status, error, next_attempt_at, sent_at)])

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Several tries at sending (a relay round), in one transaction."""
        if not attempts:
            return
        async with self._db.session() as session:
            for attempt in attempts:
                await session.execute(
                    update(EmailMessageRow).where(EmailMessageRow.id == attempt.email_id).values(
                        status=attempt.status, last_error=attempt.error, next_attempt_at=attempt.next_attempt_at,
                        sent_at=attempt.sent_at, attempts=EmailMessageRow.attempts + 1,
                    )
                )

    async def ack_counts(self, addresses: Collection[str], since: datetime) -> dict[str, int]:
        """Acknowledgements queued to each of ``addresses`` since ``since`` (absent: none)."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        async with self._db.session() as session:
            rows = await session.execute(
                select(EmailMessageRow.peer, func.count()).where(
                    EmailMessageRow.peer.in_(wanted), EmailMessageRow.kind == "ack",
                    EmailMessageRow.received_at >= since,
                ).group_by(EmailMessageRow.peer)
            )
            return {str(peer): int(count) for peer, count in rows}

    async def acks_to(self, address: str, since: datetime) -> int:
        """Acknowledgements queued to ``address`` since ``since`` (the per-sender limit)."""
        async with self._db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(EmailMessageRow).where(
                    EmailMessageRow.peer == address.lower(), EmailMessageRow.kind == "ack",
                    EmailMessageRow.received_at >= since,
                )
            )
            return int(count or 0)
