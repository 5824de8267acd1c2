"""Queueing mail out: acknowledgements of new cases and agents' replies.

A message is composed (:mod:`cosmo.email.compose`), its bytes written and
synced, and its row queued — for a reply in the same transaction as the
case's change — before the relay is woken; so a reply the API reported
queued is sent even after a crash.  Acknowledgements of a batch of routed
messages are written and queued together (one sync, one transaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cosmo.email.compose import Outgoing, compose, fill, quote
from cosmo.email.events import EmailReplyQueued
from cosmo.email.ports import EventBus
from cosmo.email.settings import EmailSettings
from cosmo.email.storage import MailStore
from cosmo.email.threads import strip_reply_prefix
from cosmo.store.email import CaseRecord, EmailRecord, NewOutgoing, outgoing_record

__all__ = ["AckRequest", "Outbox"]

log = logging.getLogger(__name__)


class OutboxRows(Protocol):
    """What the outbox needs of the store (:class:`cosmo.store.email.EmailRepository`)."""

    async def add_outgoing(self, message: NewOutgoing, *, case_values: Mapping[str, Any] | None = None) -> int: ...

    async def add_outgoing_many(self, messages: Sequence[NewOutgoing]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class AckRequest:
    """An acknowledgement to send: the case, to whom, and the message it answers."""

    case: CaseRecord
    to: str
    name: str
    subject: str
    parent_id: str | None
    references: tuple[str, ...]
    in_reply_to: tuple[str, ...]


class Outbox:
    """Composes, stores and queues mail out.  ``send`` hands what was queued to the relay."""

    def __init__(self, settings: Callable[[], EmailSettings], rows: OutboxRows, files: MailStore,
                 events: EventBus, send: Callable[[Sequence[EmailRecord]], None], *,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self.rows = rows
        self.files = files
        self.events = events
        self.send = send
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def display_name(self, address: str) -> str:
        """The name our address signs with (``addresses.<address>.name``)."""
        target = self._settings().addresses.get(address)
        return target.name if target is not None else ""

    def _ack(self, request: AckRequest, now: datetime) -> Outgoing:
        settings = self._settings().auto_ack
        case = request.case
        values = {"case": case.id, "subject": strip_reply_prefix(request.subject) or "(no subject)",
                  "name": request.name or request.to.partition("@")[0], "queue": case.queue,
                  "address": case.mailbox}
        return compose(
            case_id=case.id, from_addr=case.mailbox, from_name=self.display_name(case.mailbox), to=[request.to],
            subject=fill(settings.subject, values), body=fill(settings.body, values), now=now,
            parent_id=request.parent_id, parent_references=request.references,
            parent_in_reply_to=request.in_reply_to, automatic=True, subject_as_is=True,
        )

    async def acknowledge_many(self, requests: Sequence[AckRequest]) -> list[int]:
        """Queue acknowledgements (with the null sender) in one transaction; their ids."""
        if not requests:
            return []
        now = self._now()
        composed = [self._ack(request, now) for request in requests]
        paths = await asyncio.to_thread(self.files.write_messages, "out", [o.raw for o in composed], now)
        rows = [
            self._row(outgoing, path, request.case, kind="ack", source="auto", agent=None, mail_from="")
            for outgoing, path, request in zip(composed, paths, requests, strict=True)
        ]
        ids = await self.rows.add_outgoing_many(rows)
        for email_id, request in zip(ids, requests, strict=True):
            self.events.publish(EmailReplyQueued(email_id=email_id, case_id=request.case.id, kind="ack", agent=None))
        self.send([outgoing_record(email_id, row, now) for email_id, row in zip(ids, rows, strict=True)])
        return ids

    async def reply(self, case: CaseRecord, parent: EmailRecord | None, *, agent: str, text: str,
                    to: str, case_values: Mapping[str, Any]) -> int:
        """Queue an agent's reply on ``case`` (answering ``parent``) and change the case with it."""
        settings = self._settings().reply
        body = text.rstrip("\n")
        if settings.quote_original and parent is not None and parent.text.strip():
            body = f"{body}\n\n{quote(parent.text, parent.from_addr, parent.date or parent.received_at)}"
        now = self._now()
        outgoing = compose(
            case_id=case.id, from_addr=case.mailbox, from_name=self.display_name(case.mailbox), to=[to],
            subject=parent.subject if parent is not None and parent.subject else case.subject, body=body,
            now=now, parent_id=parent.message_id if parent is not None else None,
            parent_references=parent.reference_ids if parent is not None else (),
            parent_in_reply_to=(parent.in_reply_to,) if parent is not None and parent.in_reply_to else (),
        )
        [path] = await asyncio.to_thread(self.files.write_messages, "out", [outgoing.raw], now)
        row = self._row(outgoing, path, case, kind="reply", source=f"agent:{agent}", agent=agent,
                        mail_from=case.mailbox)
        email_id = await self.rows.add_outgoing(row, case_values=case_values)
        self.events.publish(EmailReplyQueued(email_id=email_id, case_id=case.id, kind="reply", agent=agent))
        self.send([outgoing_record(email_id, row, now)])
        return email_id

    @staticmethod
    def _row(outgoing: Outgoing, path: str, case: CaseRecord, *, kind: str, source: str, agent: str | None,
             mail_from: str) -> NewOutgoing:
        return NewOutgoing(
            kind=kind, source=source, eml_path=path, size=len(outgoing.raw), message_id=outgoing.message_id,
            in_reply_to=outgoing.in_reply_to, reference_ids=outgoing.references, mail_from=mail_from,
            rcpt_to=outgoing.to, from_addr=outgoing.from_addr, from_name=outgoing.from_name,
            to_addrs=outgoing.to, subject=outgoing.subject, text=outgoing.text, case_id=case.id, agent=agent,
        )
