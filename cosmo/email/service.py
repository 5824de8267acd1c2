"""The e-mail channel as a running service: intake, routing, the ACD's e-mail offers, agents' actions.

Theory of operation
-------------------
:class:`EmailService` owns the pieces and starts them in order: the rules,
the store directory, the intake writer and the router (which first recovers
what a crash left: unrouted messages, lost work items), the relay, then the
listeners (SMTP, IMAP pollers) last, so nothing is accepted before it can be
stored and routed.  ``close`` stops them in the reverse order.  An SMTP port
taken by another process does not stop the node: the error is logged and the
intake listens as soon as it can (senders keep their mail meanwhile).

It is the ACD's channel for ``email`` items (:class:`~cosmo.email.ports.OfferHandler`):
an offer is remembered (and accepted at once with ``auto_accept``); the agent
takes it with :meth:`EmailService.accept`.  Agents act on cases through
:meth:`reply`, :meth:`transfer` and :meth:`close_case`; each checks that the
agent holds the case's work item (or that none is pending), changes the store,
then tells the ACD (``done``, ``abandon``, a new item).  Case changes are
serialised by one lock shared with the router.

The ACD's own events keep the case in step when something else moves its
item: the agent who took it (``acd.item.assigned``), an overflow to another
queue, an item ended from elsewhere.

While a case waits, its item's priority rises as its queue's response-time
target nears (:class:`~cosmo.email.rules.ResponseTarget`): every
:data:`ESCALATION_INTERVAL_S` the waiting e-mail items are looked at and, when
the ACD can reprioritise (:class:`~cosmo.email.ports.Reprioritising`),
moved.  Without that, the priority is computed when the item is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cosmo.acd.events import ItemAssigned, ItemCompleted, ItemOverflowed, ItemRemoved
from cosmo.acd.model import Channel, ItemState, OverflowKind, OverflowTarget, WorkItem
from cosmo.aiotasks import BackgroundTasks, cancel_and_wait
from cosmo.email.compose import fill
from cosmo.email.errors import CaseConflict, EmailError, UnknownCase, UnknownEmail
from cosmo.email.events import EmailCaseChanged, EmailDeferred, EmailFailed, EmailSent
from cosmo.email.imap import ImapPoller
from cosmo.email.intake import IntakeWriter
from cosmo.email.outbox import Outbox
from cosmo.email.ports import (
    CustomerDirectory,
    EmailAcd,
    EventBus,
    InteractionSink,
    Reprioritising,
    Subscription,
    case_of_item,
)
from cosmo.email.relay import OutboundRelay, SendResult
from cosmo.email.routing import MailRouter
from cosmo.email.rules import RuleBook
from cosmo.email.settings import EmailSettings
from cosmo.email.smtp import IntakePolicy, SmtpIntake
from cosmo.email.storage import MailStore
from cosmo.store.customers import InteractionRecord
from cosmo.store.email import CaseRecord, EmailRecord, EmailRepository

__all__ = ["ESCALATION_INTERVAL_S", "EmailService"]

log = logging.getLogger(__name__)

ESCALATION_INTERVAL_S = 15.0
"""How often waiting e-mail items are checked against their response-time targets."""

SMTP_RETRY_S = 30.0
"""How often the SMTP intake tries again to listen when its port was taken at start."""


class EmailService:
    """The e-mail channel of one node.  See the module documentation."""

    def __init__(
        self,
        settings: EmailSettings,
        *,
        data_dir: Path,
        repository: EmailRepository,
        acd: EmailAcd,
        customers: CustomerDirectory,
        events: EventBus,
        queues: Callable[[], Collection[str]],
        record_interaction: InteractionSink | None = None,
        agent_name: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.agent_name = agent_name
        self.repository = repository
        self.acd = acd
        self.events = events
        self.queues = queues
        self.record_interaction = record_interaction
        self.clock = clock
        self.files = MailStore(settings.store_dir or data_dir / "email", fsync=settings.fsync)
        self.rules = RuleBook(settings.rules_file, queues)
        self.lock = asyncio.Lock()
        hostname = settings.smtp.hostname if settings.smtp is not None else "localhost"
        self.relay = OutboundRelay(settings.relay, repository, self.files, local_hostname=hostname,
                                   on_result=self._on_send_result, clock=clock)
        self.outbox = Outbox(lambda: self.settings, repository, self.files, events, self.relay.submit, clock=clock)
        self.router = MailRouter(lambda: self.settings, repository, self.files, acd, customers, self.rules,
                                 self.outbox, events, self.lock, record_interaction=record_interaction, clock=clock)
        self.intake = IntakeWriter(self.files, repository, self.router.submit)
        self.smtp: SmtpIntake | None = None
        if settings.enabled and settings.smtp is not None:
            policy = IntakePolicy(lambda: set(self.settings.addresses), settings.smtp.max_recipients)
            self.smtp = SmtpIntake(settings.smtp, policy, self.intake.store)
        self.pollers = [ImapPoller(mailbox, repository, self.files, self.router.submit, clock=clock)
                        for mailbox in settings.imap] if settings.enabled else []
        self._offers: dict[str, str] = {}
        self._subscription: Subscription | None = None
        self._escalator: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(log, "e-mail: task")
        self._started = False
        acd.register_channel(Channel.EMAIL, self)

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the rules, recover, then listen.  Raises :class:`EmailError` (a bad rules file, a busy port)."""
        if self._started or not self.settings.enabled:
            return
        self.rules.load()
        await asyncio.to_thread(self.files.prepare)
        self._subscription = self.events.subscribe("acd.item.*", self._on_acd_event)
        await self.intake.start()
        await self.router.start()
        await self.router.recover()
        await self.relay.start()
        self._started = True
        if self.smtp is not None:
            try:
                await self.smtp.start()
            except EmailError as exc:
                # The rest of the node (calls, queued e-mail, IMAP) keeps working; senders keep their mail
                # and try again, and the intake listens as soon as the port is free.
                log.error("%s; SMTP intake retries every %g s", exc, SMTP_RETRY_S)
                self._spawn(self._listen_later())
        for poller in self.pollers:
            await poller.start()
        self._escalator = asyncio.create_task(self._escalate_loop(), name="email-escalation")
        log.info("e-mail channel ready: %d address(es), %d IMAP mailbox(es)", len(self.settings.addresses),
                 len(self.pollers))

    async def close(self) -> None:
        """Stop listening, store what was received, stop routing and sending (idempotent)."""
        if self.smtp is not None:
            await self.smtp.close()
        for poller in self.pollers:
            await poller.close()
        await self.intake.close()
        await self.router.close()
        await self.relay.close()
        escalator, self._escalator = self._escalator, None
        await cancel_and_wait(escalator)
        await self._tasks.close()
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None
        self._started = False

    async def _listen_later(self) -> None:
        assert self.smtp is not None
        while True:
            await asyncio.sleep(SMTP_RETRY_S)
            try:
                await self.smtp.start()
            except EmailError:
                continue
            return

    @property
    def smtp_port(self) -> int | None:
        """The SMTP intake's port (the one chosen for 0), ``None`` while it does not listen."""
        return self.smtp.port if self.smtp is not None and self.smtp.listening else None

    # ---- the ACD's channel interface -------------------------------------------------------
    def offer(self, item: WorkItem, extension: str) -> None:
        """The ACD offers an e-mail to an agent: the desktop shows it; ``accept`` takes it."""
        self._offers[item.id] = extension
        log.info("e-mail item %s (case %s) offered to agent %s", item.id, item.data.get("case_id"), extension)
        if self.settings.auto_accept:
            asyncio.get_running_loop().call_soon(self._auto_accept, item.id, extension)

    def withdraw(self, item: WorkItem, extension: str, reason: str) -> None:
        """The offer ended (ring timeout, the agent left, the item went)."""
        if self._offers.get(item.id) == extension:
            del self._offers[item.id]
        log.info("e-mail item %s: offer to agent %s withdrawn (%s)", item.id, extension, reason)

    def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None:
        """E-mail never leaves the queues (only callers on the line go to voicemail or a number)."""
        log.warning("e-mail item %s: overflow to %s (%s) ignored", item.id, target, reason)

    def _auto_accept(self, item_id: str, extension: str) -> None:
        if self._offers.get(item_id) == extension and self.acd.accepted(item_id, extension):
            self._offers.pop(item_id, None)

    def _spawn(self, coroutine: Any) -> None:
        self._tasks.spawn(coroutine)

    def _on_acd_event(self, event: Any) -> None:
        if getattr(event, "channel", None) is not Channel.EMAIL:
            return
        case_id = case_of_item(event.item_id)
        if case_id is None:
            return
        if isinstance(event, ItemAssigned):
            self._offers.pop(event.item_id, None)
            self._spawn(self._follow(case_id, event.item_id, agent=event.extension))
        elif isinstance(event, ItemOverflowed) and event.kind is OverflowKind.QUEUE:
            self._spawn(self._follow(case_id, event.item_id, queue=event.destination))
        elif isinstance(event, ItemCompleted | ItemRemoved):
            self._offers.pop(event.item_id, None)
            self._spawn(self._follow(case_id, event.item_id, ended=True))

    async def _follow(self, case_id: int, item_id: str, *, agent: str | None = None, queue: str | None = None,
                      ended: bool = False) -> None:
        """Keep the case in step with its item when the ACD moved it."""
        async with self.lock:
            case = await self.repository.case(case_id)
            if case is None or case.item_id != item_id:
                return
            values: dict[str, Any] = {}
            if agent is not None and case.agent != agent:
                values["agent"] = agent
            if queue is not None and case.queue != queue:
                values["queue"] = queue
            if ended:
                values["item_id"] = None
            if values:
                case = await self.repository.update_case(case_id, **values) or case
                self._case_event(case, "accepted" if agent else "overflowed" if queue else "item-ended")

    # ---- views ----------------------------------------------------------------------------------
    async def _message(self, email_id: int) -> EmailRecord:
        record = await self.repository.message(email_id)
        if record is None:
            raise UnknownEmail(f"no e-mail {email_id}")
        return record

    async def _case(self, case_id: int) -> CaseRecord:
        case = await self.repository.case(case_id)
        if case is None:
            raise UnknownCase(f"no case {case_id}")
        return case

    def _item_state(self, case: CaseRecord) -> dict[str, Any] | None:
        if case.item_id is None:
            return None
        item = self.acd.item(case.item_id)
        if item is None:
            return {"id": case.item_id, "state": "unknown", "agent": None, "queue": case.queue}
        return {"id": item.id, "state": str(item.state), "agent": item.agent, "queue": item.queue,
                "priority": item.priority}

    async def email_view(self, email_id: int) -> dict[str, Any]:
        """``GET /api/emails/{id}``: headers, text, attachments, problems, and its case."""
        record = await self._message(email_id)
        view = record.summary()
        view.update({
            "text": record.text, "text_source": record.text_source,
            "headers": [[name, value] for name, value in record.headers],
            "in_reply_to": record.in_reply_to, "references": list(record.reference_ids),
            "mail_from": record.mail_from, "rcpt_to": list(record.rcpt_to), "language": record.language,
            "reply_to": record.data.get("reply_to"),
        })
        for attachment in view["attachments"]:
            attachment.pop("path", None)
            attachment["url"] = f"/api/emails/{email_id}/attachments/{attachment['index']}"
        view["raw_url"] = f"/api/emails/{email_id}/raw"
        if record.case_id is not None:
            case = await self.repository.case(record.case_id)
            if case is not None:
                view["case"] = {**case.to_dict(), "item": self._item_state(case)}
        return view

    async def case_view(self, case_id: int) -> dict[str, Any]:
        """``GET /api/cases/{id}``: the case, its work item now, and its thread (in and out, in order)."""
        case = await self._case(case_id)
        thread = await self.repository.thread(case_id)
        messages = []
        for record in thread:
            entry = record.summary()
            entry["text"] = record.text
            for attachment in entry["attachments"]:
                attachment.pop("path", None)
                attachment["url"] = f"/api/emails/{record.id}/attachments/{attachment['index']}"
            messages.append(entry)
        return {**case.to_dict(), "item": self._item_state(case), "messages": messages}

    async def cases_view(self, *, status: str | None = None, customer_id: int | None = None,
                         limit: int = 100) -> list[dict[str, Any]]:
        """``GET /api/cases``: cases, the latest changed first."""
        return [case.to_dict() for case in await self.repository.cases(status=status, customer_id=customer_id,
                                                                       limit=limit)]

    async def raw(self, email_id: int) -> bytes:
        """A message's bytes as stored."""
        record = await self._message(email_id)
        try:
            return await asyncio.to_thread(self.files.read, record.eml_path)
        except OSError as exc:
            raise UnknownEmail(f"e-mail {email_id}: its file cannot be read: {exc.strerror or exc}") from None

    async def attachment(self, email_id: int, index: int) -> tuple[bytes, str, str]:
        """An attachment's bytes, content type and file name."""
        record = await self._message(email_id)
        found = next((a for a in record.attachments if a.get("index") == index), None)
        if found is None:
            raise UnknownEmail(f"e-mail {email_id} has no attachment {index}")
        try:
            data = await asyncio.to_thread(self.files.read, str(found["path"]))
        except OSError as exc:
            raise UnknownEmail(f"attachment {index} of e-mail {email_id} cannot be read: {exc}") from None
        return data, str(found.get("content_type") or "application/octet-stream"), str(found.get("filename") or "")

    # ---- agents' actions --------------------------------------------------------------------------
    async def accept(self, email_id: int, agent: str) -> dict[str, Any]:
        """The agent takes the e-mail offered to them (its case's work item).

        Raises :class:`CaseConflict` (409) when it is not offered to that agent now.
        """
        record = await self._message(email_id)
        if record.case_id is None:
            raise CaseConflict(f"e-mail {email_id} is not routed yet")
        async with self.lock:
            case = await self._case(record.case_id)
            item = self.acd.item(case.item_id) if case.item_id else None
            if item is None:
                raise CaseConflict(f"case {case.id} has no work item waiting")
            if item.state is ItemState.ASSIGNED and item.agent == agent:
                return await self.case_view(case.id)
            if not self.acd.accepted(item.id, agent):
                where = f"{item.state}" + (f" to agent {item.agent}" if item.agent else "")
                raise CaseConflict(f"case {case.id} is not offered to agent {agent} (it is {where})")
            self._offers.pop(item.id, None)
            case = await self.repository.update_case(case.id, agent=agent) or case
            self._case_event(case, "accepted")
        await self.acd.flush()
        return await self.case_view(case.id)

    async def decline(self, email_id: int, agent: str, reason: str | None = None) -> None:
        """The agent does not take the e-mail offered to them (it goes back to its place)."""
        record = await self._message(email_id)
        case = await self._case(record.case_id) if record.case_id is not None else None
        if case is None or case.item_id is None:
            raise CaseConflict(f"e-mail {email_id} has no work item")
        item = self.acd.item(case.item_id)
        if item is None or item.state is not ItemState.OFFERED or item.agent != agent:
            raise CaseConflict(f"case {case.id} is not offered to agent {agent}")
        self.acd.declined(item.id, agent, reason)
        still = self.acd.item(item.id)
        if still is not None and still.state is ItemState.OFFERED and still.agent == agent:
            raise CaseConflict(f"case {case.id}: the decline was refused (is {reason!r} a not-ready reason code?)")
        await self.acd.flush()

    def _check_agent(self, case: CaseRecord, agent: str | None, action: str) -> WorkItem | None:
        """The case's live work item, once ``agent`` may act on the case (``None`` agent: a supervisor)."""
        item = self.acd.item(case.item_id) if case.item_id else None
        if item is None or agent is None:
            return item
        if item.state is ItemState.ASSIGNED:
            if item.agent != agent:
                raise CaseConflict(f"case {case.id} is being handled by agent {item.agent}")
            return item
        if action == "reply":
            raise CaseConflict(f"case {case.id} is waiting in queue {item.queue} ({item.state}); accept it first")
        return item

    async def reply(self, case_id: int, agent: str, body: str, *, template: str | None = None,
                    done: bool = True) -> dict[str, Any]:
        """Send the agent's answer on a case (through a form letter when ``template`` names one).

        With ``done`` the agent's work item ends (wrap-up follows) and the case
        waits for the customer (``answered``); otherwise the agent keeps it.
        Returns the queued message.  Raises :class:`UnknownCase`,
        :class:`CaseConflict`, or :class:`EmailError` for an unknown template
        or an empty reply.
        """
        settings = self.settings.reply
        if template is not None and template not in settings.templates:
            raise EmailError(f"no reply template {template!r} (known: {', '.join(sorted(settings.templates))})")
        async with self.lock:
            case = await self._case(case_id)
            item = self._check_agent(case, agent, "reply")
            parent = await self.repository.last_incoming(case_id)
            customer = parent.from_name if parent is not None else ""
            agent_name = (self.agent_name(agent) if self.agent_name is not None else None) or agent
            values = {"body": body, "name": customer or (case.address or "").partition("@")[0], "case": case.id,
                      "subject": case.subject, "agent": agent_name, "queue": case.queue}
            text = fill(settings.templates[template], values) if template is not None else body
            if settings.signature:
                text = f"{text.rstrip()}\n\n{fill(settings.signature, values)}"
            if not text.strip():
                raise EmailError("the reply is empty")
            to = _reply_to(parent, case)
            if to is None:
                raise CaseConflict(f"case {case.id} has no customer address to answer")
            now = datetime.fromtimestamp(self.clock(), UTC)
            # An answer stops the response-time clock, whether or not the agent keeps the item.
            case_values: dict[str, Any] = {"agent": agent, "waiting_since": None}
            if case.first_response_at is None:
                case_values["first_response_at"] = now
            end_item = item is not None and done
            if item is None or end_item:
                case_values.update(status="answered", item_id=None)
            email_id = await self.outbox.reply(case, parent, agent=agent, text=text, to=to, case_values=case_values)
            if end_item and item is not None:
                self.acd.done(item.id)
            updated = await self._case(case_id)
            self._case_event(updated, "replied")
        await self.acd.flush()
        if self.record_interaction is not None:
            self.record_interaction(InteractionRecord(
                channel="email", ref=f"email-{email_id}", customer_id=case.customer_id, started_at=now,
                ended_at=now, queue=case.queue, agent=agent, outcome="replied",
                data={"case_id": case.id, "direction": "out", "template": template},
            ))
        record = await self._message(email_id)
        return {**record.summary(), "text": record.text, "case": updated.to_dict()}

    async def transfer(self, case_id: int, queue: str, agent: str | None = None) -> dict[str, Any]:
        """Send a case to another queue: its work item ends here and a new one waits there.

        The new item keeps the customer's waiting time.  Raises :class:`CaseConflict`
        for an unknown queue, or a case another agent holds.
        """
        if queue not in self.queues():
            raise CaseConflict(f"no queue {queue!r}")
        async with self.lock:
            case = await self._case(case_id)
            item = self._check_agent(case, agent, "transfer")
            if case.status == "closed":
                raise CaseConflict(f"case {case.id} is closed")
            self._end_item(item, "transferred")
            waiting = case.waiting_since or datetime.fromtimestamp(self.clock(), UTC)
            case = await self.repository.update_case(
                case_id, open_item=True, queue=queue, status="open", waiting_since=waiting,
            ) or case
            queued = await self.router.enqueue(case)
            self._case_event(case, f"transferred to {queue}")
        await self.acd.flush()
        if not queued:
            raise CaseConflict(f"case {case.id}: the ACD did not take the item in queue {queue}")
        return await self.case_view(case.id)

    async def close_case(self, case_id: int, agent: str | None = None) -> dict[str, Any]:
        """Close a case (nothing more to do); its work item ends.  A later message may reopen it."""
        async with self.lock:
            case = await self._case(case_id)
            item = self._check_agent(case, agent, "close")
            values: dict[str, Any] = {"status": "closed", "item_id": None, "waiting_since": None,
                                      "closed_at": datetime.fromtimestamp(self.clock(), UTC)}
            if agent is not None:
                values["agent"] = agent
            case = await self.repository.update_case(case_id, **values) or case
            self._end_item(item, "closed")
            self._case_event(case, "closed")
        await self.acd.flush()
        return await self.case_view(case.id)

    def _end_item(self, item: WorkItem | None, reason: str) -> None:
        if item is None:
            return
        if item.state is ItemState.ASSIGNED:
            self.acd.done(item.id)
        else:
            self.acd.abandon(item.id, reason)
        self._offers.pop(item.id, None)

    def _case_event(self, case: CaseRecord, change: str) -> None:
        self.events.publish(EmailCaseChanged(case_id=case.id, status=case.status, queue=case.queue, agent=case.agent,
                                             item_id=case.item_id, change=change))

    # ---- sending results, escalation --------------------------------------------------------------
    def _on_send_result(self, result: SendResult) -> None:
        record = result.record
        if result.status == "sent":
            self.events.publish(EmailSent(email_id=record.id, case_id=record.case_id, kind=record.kind,
                                          attempts=result.attempts))
        elif result.status == "queued":
            next_at = result.next_attempt_at.timestamp() if result.next_attempt_at is not None else self.clock()
            self.events.publish(EmailDeferred(email_id=record.id, case_id=record.case_id, kind=record.kind,
                                              attempts=result.attempts, error=result.error or "",
                                              next_attempt_at=next_at))
        else:
            self.events.publish(EmailFailed(email_id=record.id, case_id=record.case_id, kind=record.kind,
                                            attempts=result.attempts, error=result.error or ""))

    def escalate(self) -> int:
        """Raise waiting e-mail items' priorities as their response-time targets near; returns how many moved."""
        if not isinstance(self.acd, Reprioritising):
            return 0
        rules = self.rules.rules
        now = self.clock()
        moved = 0
        for view in self.acd.items_view():
            if view.get("channel") != str(Channel.EMAIL):
                continue
            data = view.get("data") or {}
            target = rules.target(str(view.get("queue")))
            since = data.get("waiting_since")
            base = data.get("base_priority", view.get("priority", 0))
            if target is None or not isinstance(since, int | float) or not isinstance(base, int):
                continue
            wanted = base + target.boost(now - since)
            if wanted != view.get("priority"):
                self.acd.reprioritise(str(view["id"]), wanted)
                moved += 1
        return moved

    async def _escalate_loop(self) -> None:
        if not isinstance(self.acd, Reprioritising):
            if self.rules.rules.targets:
                log.info("e-mail: response-time targets raise priorities when items are queued only "
                         "(the ACD cannot reprioritise waiting items)")
            return
        while True:
            await asyncio.sleep(ESCALATION_INTERVAL_S)
            try:
                moved = self.escalate()
                if moved:
                    log.info("e-mail: %d waiting item(s) raised as their response-time targets near", moved)
            except Exception:
                log.exception("e-mail: escalation failed")


def _reply_to(parent: EmailRecord | None, case: CaseRecord) -> str | None:
    if parent is not None:
        reply_to = parent.data.get("reply_to")
        if isinstance(reply_to, str) and reply_to:
            return reply_to
        if parent.from_addr:
            return parent.from_addr
    return case.address
