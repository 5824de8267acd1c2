"""From stored messages to routable work items: parse, thread, classify, queue, acknowledge.

Theory of operation
-------------------
Stored message ids arrive in the order they were committed (SMTP intake,
IMAP polls, and at start those a crash left unrouted).  One task routes
them in that order, in batches of whatever is waiting (up to
:data:`MAX_BATCH`), so the fixed costs — database round trips, file syncs —
are shared when mail comes fast, and a lone message goes at once.  For each
batch:

1. the rows are read in one query; the files are read and parsed
   (:mod:`cosmo.email.mime`) in a worker thread, attachments written next
   to them;
2. cases are looked up for the whole batch at once (:mod:`cosmo.email.threads`):
   by ``In-Reply-To`` / ``References``, else by the ``[#case]`` token from
   the same correspondent; a case closed longer than ``reopen_within_s`` ago
   is not reopened (a new case names the old one).  A message that answers
   another message of the same batch ends the batch before it, so it finds
   that message's case;
3. each message is planned in order: a new case is classified
   (:mod:`cosmo.email.rules`: queue, skills, priority) and its customer
   matched by address or created; an answered or closed case is reopened
   with a new work item; a follow-up to a case whose item still waits or is
   being handled only joins the thread (the event tells the agent holding it);
4. one transaction links every message to its case
   (:meth:`~cosmo.store.email.EmailRepository.route_many`);
5. the new work items are queued in the ACD in arrival order (each stored by
   the ACD before it is routed; all in one transaction when the ACD offers
   :class:`~cosmo.email.ports.BatchEnqueue`);
6. new cases are acknowledged — unless :func:`~cosmo.email.compose.ack_refusal`,
   a rule, or the per-sender limit says not to — in one more transaction.

A batch that fails is routed again one message at a time, so one bad
message cannot hold up the others; a message whose routing keeps failing
stays ``stored`` and is routed at the next start.  At start,
:meth:`MailRouter.recover` also re-queues the work item of any open case the
ACD did not restore (a crash between steps 4 and 5) and drops waiting items
whose case no longer wants them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cosmo.acd.errors import AcdError
from cosmo.acd.model import Channel, WorkItem
from cosmo.aiotasks import cancel_and_wait
from cosmo.email.compose import ack_refusal
from cosmo.email.events import EmailReceived
from cosmo.email.language import detect_language
from cosmo.email.mime import ParsedEmail, parse_message
from cosmo.email.outbox import AckRequest, Outbox
from cosmo.email.ports import (
    BatchEnqueue,
    CustomerDirectory,
    EmailAcd,
    EventBus,
    InteractionSink,
    ItemFacts,
    case_of_item,
    work_item,
)
from cosmo.email.rules import MessageFacts, RuleBook, RuleSet
from cosmo.email.settings import EmailSettings
from cosmo.email.storage import MailStore
from cosmo.email.threads import case_token, choose_by_message_ids, same_correspondent
from cosmo.store.customers import CustomerRecord, InteractionRecord
from cosmo.store.email import (
    CaseRecord,
    EmailRecord,
    EmailRepository,
    MessageContent,
    NewCase,
    RoutePlan,
)

__all__ = ["MAX_BATCH", "MailRouter"]

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Messages routed together at most."""

RETRY_DELAYS_S = (1.0, 5.0, 30.0)
"""Pauses before routing a failed message again; after the last, it waits for the next start."""

_CUSTOMER_CACHE = 10_000


@dataclass(slots=True)
class _Read:
    """One message of a batch, read and parsed."""

    record: EmailRecord
    parsed: ParsedEmail
    problems: tuple[str, ...]
    attachments: list[dict[str, Any]]
    sender: str | None
    our_address: str
    base_queue: str
    language: str | None


@dataclass(slots=True)
class _Planned:
    read: _Read
    plan: RoutePlan
    new_case: bool
    customer: CustomerRecord | None
    auto_ack: bool | None


class MailRouter:
    """Routes stored messages in order.  See the module documentation."""

    def __init__(
        self,
        settings: Callable[[], EmailSettings],
        repository: EmailRepository,
        files: MailStore,
        acd: EmailAcd,
        customers: CustomerDirectory,
        rules: RuleBook,
        outbox: Outbox,
        events: EventBus,
        lock: asyncio.Lock,
        *,
        record_interaction: InteractionSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self.repository = repository
        self.files = files
        self.acd = acd
        self.customers = customers
        self.rules = rules
        self.outbox = outbox
        self.events = events
        self.lock = lock
        self.record_interaction = record_interaction
        self.clock = clock
        self._queue: asyncio.Queue[int | EmailRecord] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failures: dict[int, int] = {}
        self._retries: set[asyncio.TimerHandle] = set()
        self._customers: OrderedDict[str, CustomerRecord] = OrderedDict()
        self.routed = 0
        """Messages routed since start."""
        self.on_routed: Callable[[int, float], None] | None = None
        """Called with each routed message's id and the time its work item was queued (for measurements)."""

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the routing task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="email-router")

    async def close(self) -> None:
        """Stop after the batch being routed (what is still queued is routed at the next start)."""
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def submit(self, messages: Sequence[int | EmailRecord]) -> None:
        """Route these stored messages, by id or as just stored (in this order, after those submitted before)."""
        for message in messages:
            self._queue.put_nowait(message)

    @property
    def backlog(self) -> int:
        """Messages waiting to be routed."""
        return self._queue.qsize()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.route(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                if len(batch) == 1:
                    self._retry(_id_of(batch[0]))
                    continue
                log.exception("e-mail: routing %d messages together failed; routing them one by one", len(batch))
                for message in batch:
                    try:
                        await self.route([_id_of(message)])
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # noqa: BLE001 (the root of the task; _retry logs the traceback)
                        self._retry(_id_of(message))

    def _retry(self, email_id: int) -> None:
        failures = self._failures.get(email_id, 0)
        if failures >= len(RETRY_DELAYS_S):
            log.exception("e-mail %d: routing failed %d times; it stays stored and is routed at the next start",
                          email_id, failures + 1)
            self._failures.pop(email_id, None)
            return
        delay = RETRY_DELAYS_S[failures]
        self._failures[email_id] = failures + 1
        log.exception("e-mail %d: routing failed; trying again in %g s", email_id, delay)
        loop = asyncio.get_running_loop()

        def again() -> None:
            self._retries.discard(handle)
            self._queue.put_nowait(email_id)

        handle = loop.call_later(delay, again)
        self._retries.add(handle)

    # ---- recovery at start -----------------------------------------------------------------
    async def recover(self) -> None:
        """After a restart: re-queue lost work items, drop stale ones, route what was left unrouted."""
        restored = dropped = 0
        for case in await self.repository.cases_with_items():
            assert case.item_id is not None
            if self.acd.item(case.item_id) is None and await self.enqueue(case):
                restored += 1
        for view in self.acd.items_view():
            if view.get("channel") != str(Channel.EMAIL):
                continue
            case_id = case_of_item(str(view["id"]))
            owner = await self.repository.case(case_id) if case_id is not None else None
            if owner is None or owner.status != "open" or owner.item_id != view["id"]:
                self.acd.abandon(str(view["id"]), "case-closed")
                dropped += 1
        unrouted = await self.repository.unrouted()
        self.submit([record.id for record in unrouted])
        if restored or dropped or unrouted:
            log.info("e-mail: %d work item(s) queued again, %d stale dropped, %d stored message(s) to route",
                     restored, dropped, len(unrouted))

    # ---- routing a batch -----------------------------------------------------------------------
    async def route(self, messages: Sequence[int | EmailRecord]) -> None:
        """Route stored messages, in order (see the module documentation).  Routed ones are skipped.

        A message given by id is read first; one given as its just-stored row is not.
        """
        wanted = [m for m in messages if isinstance(m, int)]
        read = {r.id: r for r in await self.repository.messages(wanted)} if wanted else {}
        records = [r for m in messages if (r := read.get(m) if isinstance(m, int) else m) is not None
                   and r.direction == "in" and r.status == "stored"]
        while records:
            reads = await asyncio.to_thread(self._read_all, records)
            cut = await self._route_batch(reads)
            records = records[cut:]

    def _read_all(self, records: list[EmailRecord]) -> list[_Read]:
        """Read, parse and store attachments of a batch (in a worker thread: files and CPU)."""
        settings = self._settings()
        out = []
        for record in records:
            problems: tuple[str, ...] = ()
            try:
                raw = self.files.read(record.eml_path)
            except OSError as exc:
                log.error("e-mail %d: its stored file %s cannot be read: %s", record.id, record.eml_path, exc)
                problems, raw = (f"the stored message cannot be read: {exc.strerror or exc}",), b""
            parsed = parse_message(raw, max_text_chars=settings.max_text_chars)
            attachments = self.files.write_attachments(record.id, parsed.attachments) if parsed.attachments else []
            our_address, base_queue = self._destination(settings, record, parsed)
            out.append(_Read(
                record=record, parsed=parsed, problems=problems, attachments=attachments,
                sender=parsed.from_addr or (record.mail_from.lower() if record.mail_from else None),
                our_address=our_address, base_queue=base_queue,
                language=detect_language(f"{parsed.subject}\n{parsed.text}", parsed.content_language),
            ))
        return out

    @staticmethod
    def _destination(settings: EmailSettings, record: EmailRecord, parsed: ParsedEmail) -> tuple[str, str]:
        """Our address the message came to, and that address's queue."""
        if record.imap_mailbox is not None:
            mailbox = next((m for m in settings.imap if m.name == record.imap_mailbox), None)
            if mailbox is not None:
                address = mailbox.address or settings.address_for_queue(mailbox.queue) or mailbox.username
                return address, mailbox.queue
        for address in (*record.rcpt_to, *parsed.to, *parsed.cc):
            target = settings.addresses.get(address.lower())
            if target is not None:
                return address.lower(), target.queue
        if settings.addresses:
            address, target = next(iter(settings.addresses.items()))
            return address, target.queue
        if settings.imap:
            first = settings.imap[0]
            return first.address or first.username, first.queue
        raise AcdError(f"e-mail {record.id}: no address of ours and no queue for it")

    async def _route_batch(self, reads: list[_Read]) -> int:
        """Route the longest head of ``reads`` that does not answer itself; returns how many were routed."""
        known = await self.repository.cases_for_message_ids(
            {mid for read in reads for mid in read.parsed.thread_ids})
        tokens = {t for read in reads if (t := case_token(read.parsed.subject)) is not None}
        cases = await self.repository.cases_by_ids({*known.values(), *tokens})
        batch_ids: set[str] = set()
        cut = len(reads)
        for index, read in enumerate(reads):
            if batch_ids.intersection(read.parsed.thread_ids) and index > 0:
                cut = index
                break
            if read.parsed.message_id:
                batch_ids.add(read.parsed.message_id)
        reads = reads[:cut]
        rules = self.rules.rules
        settings = self._settings()
        async with self.lock:
            planned: list[_Planned] = []
            live: dict[int, bool] = {}
            for read in reads:
                planned.append(await self._plan(read, known, cases, live, rules, settings))
            routed = await self.repository.route_many([p.plan for p in planned])
            queued_at = await self._enqueue_all(planned, routed)
        self._announce(planned, routed, queued_at)
        await self._acknowledge(planned, routed, settings)
        return cut

    async def _plan(self, read: _Read, known: dict[str, int], cases: dict[int, CaseRecord], live: dict[int, bool],
                    rules: RuleSet, settings: EmailSettings) -> _Planned:
        """How one message is routed (``live`` tracks the cases this batch gave a waiting item)."""
        record, parsed = read.record, read.parsed
        content = MessageContent(
            message_id=parsed.message_id, in_reply_to=parsed.in_reply_to[0] if parsed.in_reply_to else None,
            reference_ids=parsed.references, from_addr=read.sender, from_name=parsed.from_name, to_addrs=parsed.to,
            cc_addrs=parsed.cc, subject=parsed.subject, date=parsed.date, text=parsed.text,
            text_source=parsed.text_source, attachments=read.attachments, problems=(*read.problems, *parsed.problems),
            headers=parsed.headers, language=read.language, peer=read.sender,
            data={"reply_to": parsed.reply_to} if parsed.reply_to else {},
        )
        facts = MessageFacts(
            subject=parsed.subject, body=parsed.text, sender=read.sender, to=tuple(record.rcpt_to) or parsed.to,
            queue=read.base_queue, language=read.language, has_attachments=bool(read.attachments),
        )
        case = self._find_case(parsed, read.sender, known, cases)
        if case is not None and case.status == "closed" and case.closed_at is not None \
                and (record.received_at - case.closed_at).total_seconds() > settings.reopen_within_s:
            content = replace(content, data={**content.data, "related_case": case.id})
            case = None
        if case is None:
            classification = rules.classify(facts)
            customer = await self._customer(read.sender, parsed.from_name)
            new_case = NewCase(
                subject=parsed.subject, customer_id=customer.id if customer else None, address=read.sender,
                mailbox=read.our_address, queue=classification.queue, priority=classification.priority,
                skills=dict(classification.skills), rules=classification.rules, language=read.language,
            )
            log.info("e-mail %d from %s: new case in queue %s%s", record.id, read.sender, classification.queue,
                     f" (rules: {', '.join(classification.rules)})" if classification.rules else "")
            return _Planned(read, RoutePlan(record.id, content, new_case=new_case, open_item=True), True, customer,
                            classification.auto_ack)
        customer = await self._customer_of(case)
        item_live = live.get(case.id)
        if item_live is None:
            item_live = case.status == "open" and case.item_id is not None and self.acd.item(case.item_id) is not None
        if item_live:
            values: dict[str, Any] = {} if case.waiting_since is not None else {"waiting_since": record.received_at}
            log.info("e-mail %d from %s: follow-up to case %d (work item %s)", record.id, read.sender, case.id,
                     case.item_id)
            return _Planned(read, RoutePlan(record.id, content, case_id=case.id, case_values=values), False,
                            customer, None)
        reclassified = rules.classify(replace(facts, queue=case.queue))
        values = {
            "status": "open", "closed_at": None, "waiting_since": case.waiting_since or record.received_at,
            "priority": max(case.priority, reclassified.priority),
        }
        live[case.id] = True
        log.info("e-mail %d from %s: case %d reopened (was %s) in queue %s", record.id, read.sender, case.id,
                 case.status, case.queue)
        return _Planned(read, RoutePlan(record.id, content, case_id=case.id, case_values=values, open_item=True),
                        False, customer, reclassified.auto_ack)

    def _find_case(self, parsed: ParsedEmail, sender: str | None, known: dict[str, int],
                   cases: dict[int, CaseRecord]) -> CaseRecord | None:
        case_id = choose_by_message_ids(parsed.thread_ids, known)
        if case_id is not None and case_id in cases:
            return cases[case_id]
        token = case_token(parsed.subject)
        if token is not None and token in cases:
            case = cases[token]
            if same_correspondent(sender, case.address):
                return case
            log.info("subject token [#%d] from %s ignored: not the case's correspondent", token, sender)
        return None

    async def _enqueue_all(self, planned: list[_Planned], routed: list[CaseRecord]) -> list[float | None]:
        """Queue the batch's new work items in order; per message, when its item was queued (or ``None``)."""
        items: dict[int, WorkItem] = {}
        rules, now = self.rules.rules, self.clock()
        for index, (entry, case) in enumerate(zip(planned, routed, strict=True)):
            if entry.plan.open_item:
                read = entry.read
                facts = ItemFacts(read.record.id, read.sender, read.parsed.from_name, read.parsed.subject,
                                  read.parsed.text, len(read.attachments), read.our_address)
                items[index] = work_item(case, facts, entry.customer.to_dict() if entry.customer else None, rules,
                                         now)
        queued_at: list[float | None] = [None] * len(planned)
        if isinstance(self.acd, BatchEnqueue) and len(items) > 1:
            errors = await self.acd.enqueue_many(list(items.values()))
            at = self.clock()
            for (index, item), error in zip(items.items(), errors, strict=True):
                if error is None:
                    queued_at[index] = at
                else:
                    log.error("case %d: work item %s not queued in %s: %s (it is queued again at the next start)",
                              routed[index].id, item.id, item.queue, error)
            return queued_at
        for index, item in items.items():
            if await self._enqueue_item(routed[index], item):
                queued_at[index] = self.clock()
        return queued_at

    async def _enqueue_item(self, case: CaseRecord, item: WorkItem) -> bool:
        try:
            await self.acd.enqueue(item)
        except AcdError as exc:
            log.error("case %d: work item %s not queued in %s: %s (it is queued again at the next start)",
                      case.id, item.id, case.queue, exc)
            return False
        except asyncio.CancelledError:
            raise
        except Exception:  # the case is routed (committed): its item must not take the batch down with it
            log.exception("case %d: work item %s not queued (it is queued again at the next start)", case.id,
                          item.id)
            return False
        return True

    async def _enqueue(self, case: CaseRecord, facts: ItemFacts, customer: dict[str, Any] | None) -> bool:
        return await self._enqueue_item(case, work_item(case, facts, customer, self.rules.rules, self.clock()))

    def _announce(self, planned: list[_Planned], routed: list[CaseRecord], queued_at: list[float | None]) -> None:
        for entry, case, at in zip(planned, routed, queued_at, strict=True):
            record, parsed = entry.read.record, entry.read.parsed
            self.routed += 1
            held_by = None
            if not entry.plan.open_item and case.item_id is not None:
                item = self.acd.item(case.item_id)
                held_by = item.agent if item is not None else None
            self.events.publish(EmailReceived(
                email_id=record.id, case_id=case.id, queue=case.queue, sender=entry.read.sender or "",
                subject=parsed.subject, new_case=entry.new_case, agent=held_by,
            ))
            if self.on_routed is not None:
                self.on_routed(record.id, at if at is not None else self.clock())
            if self.record_interaction is not None:
                self.record_interaction(InteractionRecord(
                    channel="email", ref=f"email-{record.id}", customer_id=case.customer_id,
                    started_at=record.received_at, queue=case.queue, outcome="received",
                    data={"case_id": case.id, "direction": "in", "subject": parsed.subject,
                          "from": entry.read.sender},
                ))

    async def _acknowledge(self, planned: list[_Planned], routed: list[CaseRecord], settings: EmailSettings) -> None:
        ack = settings.auto_ack
        if not ack.enabled:
            return
        own = set(settings.addresses)
        wanted: list[tuple[_Planned, CaseRecord, str]] = []
        for entry, case in zip(planned, routed, strict=True):
            if entry.auto_ack is False or not (entry.new_case or (ack.on_follow_up and entry.plan.open_item)):
                continue
            parsed = entry.read.parsed
            to = parsed.reply_address or entry.read.sender
            record = entry.read.record
            refusal = ack_refusal(parsed, record.mail_from if record.source == "smtp" else None, to,
                                  own_addresses=own, never_to=ack.never_to)
            if refusal is not None or to is None:
                log.info("case %d: no acknowledgement: %s", case.id, refusal)
                continue
            wanted.append((entry, case, to))
        if not wanted:
            return
        try:
            since = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=ack.window_s)
            counts = await self.repository.ack_counts([to for _, _, to in wanted], since)
            requests = []
            for entry, case, to in wanted:
                sent = counts.get(to.lower(), 0)
                if sent >= ack.max_per_sender:
                    log.info("case %d: no acknowledgement to %s (%d already in the last %g s)", case.id, to, sent,
                             ack.window_s)
                    continue
                counts[to.lower()] = sent + 1
                parsed = entry.read.parsed
                requests.append(AckRequest(case=case, to=to, name=parsed.from_name, subject=parsed.subject,
                                           parent_id=parsed.message_id, references=parsed.references,
                                           in_reply_to=parsed.in_reply_to))
            await self.outbox.acknowledge_many(requests)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("e-mail: %d acknowledgement(s) could not be queued", len(wanted))

    # ---- customers --------------------------------------------------------------------------
    async def _customer(self, address: str | None, name: str) -> CustomerRecord | None:
        """The customer writing from ``address``, created when new (cached: the same senders write often)."""
        if not address:
            return None
        cached = self._customers.get(address)
        if cached is not None:
            self._customers.move_to_end(address)
            return cached
        customer = await self.customers.find("email", address)
        if customer is None:
            customer = await self.customers.add(name or address.partition("@")[0], email=address,
                                                preferred_channel="email")
            log.info("customer %d created for %s", customer.id, address)
        self._customers[address] = customer
        if len(self._customers) > _CUSTOMER_CACHE:
            self._customers.popitem(last=False)
        return customer

    async def _customer_of(self, case: CaseRecord) -> CustomerRecord | None:
        if case.customer_id is None:
            return None
        return await self.customers.find("id", str(case.customer_id))

    async def facts_for(self, case: CaseRecord) -> tuple[ItemFacts, dict[str, Any] | None]:
        """What a new work item of ``case`` shows (its latest customer message, its customer)."""
        last = await self.repository.last_incoming(case.id)
        customer = await self._customer_of(case)
        if last is None:
            facts = ItemFacts(0, case.address, "", case.subject, "", 0, case.mailbox)
        else:
            facts = ItemFacts(last.id, last.from_addr, last.from_name, last.subject, last.text,
                              len(last.attachments), case.mailbox)
        return facts, customer.to_dict() if customer else None

    async def enqueue(self, case: CaseRecord) -> bool:
        """Queue a new work item for ``case`` (recovery, a transfer)."""
        facts, customer = await self.facts_for(case)
        return await self._enqueue(case, facts, customer)


def _id_of(message: int | EmailRecord) -> int:
    return message if isinstance(message, int) else message.id
