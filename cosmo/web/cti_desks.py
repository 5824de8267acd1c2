"""What each agent's desktop shows, kept from the events: the desk streams, the
screen-pops, the wallboard and the integrations' feed.

Theory of operation
-------------------
:class:`Desks` turns bus events into stream messages (the hub subscribes it):
ACD events (``acd.**``), call events (``call.**``) and phone registrations
(``agent.*``).  It keeps, per agent, what a (re)connecting desktop needs in
its snapshot: the open offer, the work in hand with its pop context, the
agent's calls, and finished work awaiting a disposition.

*Screen-pop.*  When the router offers an item, the offer's delivery starts in
the same event-loop turn as the decision.  What the pop shows of the customer
— their record, previous interactions on every channel, suggested articles —
is looked up when the item is queued (:meth:`Desks.on_acd` on ``ItemQueued``),
so it is usually ready; if not, the offer waits for it ``pop_lookup_wait_s``
at most (30 ms) and then goes without the history, which follows in an
``offer_update``: the store's slow moments never hold up a pop.  :meth:`Desks.pop`,
awaited by the voice channel before it sends the INVITE to the agent's phone,
returns once a desktop of the agent says ``seen`` (it shows the offer), or,
with no desktop attached, once the frame is written to every socket of the
stream — bounded by ``pop_timeout_s`` either way, so a slow browser never
delays a call.

*Wallboard.*  Queue figures change with every ACD event; they are merged into
at most one ``wallboard`` message per ``wallboard_interval_s`` (the first
change of a quiet period goes out at once).  Agents' state changes go out one
by one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cosmo.acd.errors import AcdError
from cosmo.acd.events import (
    AgentStateChanged,
    ItemAssigned,
    ItemCompleted,
    ItemOffered,
    ItemOverflowed,
    ItemQueued,
    ItemRemoved,
    OfferWithdrawn,
)
from cosmo.acd.model import OverflowKind, WorkItem
from cosmo.aiotasks import BackgroundTasks
from cosmo.events.events import (
    AgentRegistered,
    AgentUnregistered,
    CallAnswered,
    CallEnded,
    CallHeld,
    CallStarted,
)
from cosmo.store.customers import InteractionRecord
from cosmo.web.auth import UserDirectory
from cosmo.web.cti_streams import Connection, Stream
from cosmo.web.knowledge import KnowledgeIndex
from cosmo.web.services import AcdDesk, CustomerDirectory
from cosmo.web.settings import WebSettings

__all__ = ["Desk", "Desks", "Pop", "PopContext", "history_entry"]

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20
"""Previous interactions shown on a pop (the customer page shows them all)."""
CONTEXT_LIMIT = 20_000
"""Pop contexts kept for items in the router (a bound against leaks, far above real queues)."""
WALLBOARD_ITEMS = 50
"""Waiting items per queue on the wallboard."""
WRAP_KEPT = 5
"""Finished items awaiting a disposition kept per agent."""


@dataclass(frozen=True, slots=True)
class PopContext:
    """What a pop shows beyond the item: the customer, their history, suggested articles."""

    customer: dict[str, Any] | None
    history: list[dict[str, Any]]
    articles: list[dict[str, Any]]


@dataclass(eq=False)
class Pop:
    """One offer being delivered to one agent."""

    item_id: str
    extension: str
    future: asyncio.Future[None]
    source: WorkItem | Mapping[str, Any]
    ts: float
    expires_at: float | None
    sent: bool = False
    cancelled: bool = False
    waiting: int = 0
    """Sockets the offer frame is still being written to."""
    watchers: set[Connection] = field(default_factory=set)
    """The agent's own desktops shown the offer: the first ``seen`` of one of them ends the wait."""

    def done(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


@dataclass(eq=False)
class Desk:
    """What the hub knows of one agent's desktop."""

    extension: str
    stream: Stream
    offer: dict[str, Any] | None = None
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Work in hand: the pop context of each item, by id."""
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The agent's calls, by call id: the only ones its commands may name."""
    wrap: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    """Finished work awaiting a disposition, by item id."""
    own: set[Connection] = field(default_factory=set)
    """The agent's own sockets (supervisors watching do not count as presence)."""
    away: asyncio.TimerHandle | None = None
    registered: bool | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _customer_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    customer = data.get("customer")
    if isinstance(customer, Mapping) and isinstance(customer.get("id"), int):
        return _jsonable(customer)
    return None


def history_entry(record: InteractionRecord) -> dict[str, Any]:
    """An interaction as the desktop shows it."""
    return {
        "id": record.id, "started_at": record.started_at.isoformat(), "ended_at": _iso(record.ended_at),
        "channel": record.channel, "queue": record.queue, "agent": record.agent, "outcome": record.outcome,
        "disposition": record.disposition, "notes": record.notes,
    }


class Desks:
    """Every agent's desk, the wallboard and the feed; see the module documentation."""

    def __init__(
        self,
        *,
        acd: AcdDesk,
        customers: CustomerDirectory,
        knowledge: KnowledgeIndex,
        users: UserDirectory,
        settings: Callable[[], WebSettings],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.acd = acd
        self.customers = customers
        self.knowledge = knowledge
        self.users = users
        self.settings = settings
        self.clock = clock
        web_settings = settings()
        self.wallboard = Stream("wallboard", web_settings.replay_messages, web_settings.replay_bytes)
        self.feed = Stream("feed", web_settings.replay_messages, web_settings.replay_bytes)
        self.feed_used = False
        """Set once an integration connected: desk messages are copied to the feed from then on."""
        self.all: dict[str, Desk] = {}
        self.pops: dict[tuple[str, str], Pop] = {}
        self.started = False
        self._contexts: OrderedDict[str, asyncio.Task[PopContext]] = OrderedDict()
        self._call_owner: dict[str, str] = {}
        self._tasks = BackgroundTasks(log, "CTI: task")
        self._wallboard_handle: asyncio.TimerHandle | None = None
        self._wallboard_at = float("-inf")
        self._wallboard_stale = False
        self.pops_timed_out = 0
        """Pops not seen within ``pop_timeout_s``."""

    async def close(self) -> None:
        """Stop the wallboard timer and the look-ups; release every pop waiting."""
        self.started = False
        if self._wallboard_handle is not None:
            self._wallboard_handle.cancel()
            self._wallboard_handle = None
        contexts = list(self._contexts.values())
        for task in contexts:
            task.cancel()
        await asyncio.gather(self._tasks.close(), *contexts, return_exceptions=True)
        self._contexts.clear()
        for pop in self.pops.values():
            pop.done()
        self.pops.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name)

    # ---- desks -------------------------------------------------------------------------------
    def desk(self, extension: str) -> Desk:
        desk = self.all.get(extension)
        if desk is None:
            s = self.settings()
            desk = Desk(extension, Stream(f"agent:{extension}", s.replay_messages, s.replay_bytes))
            self.all[extension] = desk
        return desk

    def push(self, desk: Desk, message: dict[str, Any], written: Callable[[], None] | None = None) -> int:
        """Append a desk message to the agent's stream (and the integrations' feed)."""
        sent = desk.stream.publish(message, written)
        if self.feed_used:
            self.feed.publish(dict(message))
        return sent

    # ---- the screen-pop --------------------------------------------------------------------------
    async def pop(self, extension: str, item: Mapping[str, Any]) -> None:
        """Show the offer of ``item`` on ``extension``'s desktop; await before ringing the phone.

        ``item`` is the ACD's item view (``id``, ``channel``, ``queue``,
        ``priority``, ``enqueued_at``, ``data`` with ``caller``, ``customer``,
        ``ivr``...).  Returns once a desktop of the agent says ``seen`` (with
        no desktop attached: once the frame is written to every socket of the
        stream), or after ``pop_timeout_s``; never raises.  The offer's delivery
        normally started already, when the router decided (``ItemOffered``).
        """
        try:
            item_id = str(item["id"])
            pop = self.pops.get((item_id, extension))
            if pop is None:
                pop = self._start_pop(extension, item_id, item, ts=self.clock(), expires_at=None)
            await asyncio.wait_for(asyncio.shield(pop.future), self.settings().pop_timeout_s)
        except TimeoutError:
            self.pops_timed_out += 1
            log.info("CTI: pop of %s to %s not seen within %.2f s", item.get("id"), extension,
                     self.settings().pop_timeout_s)
        except Exception:  # the call must go on whatever the desktop side did
            log.exception("CTI: pop of %r to %s failed", item.get("id"), extension)

    def _start_pop(self, extension: str, item_id: str, source: WorkItem | Mapping[str, Any], *, ts: float,
                   expires_at: float | None) -> Pop:
        loop = asyncio.get_running_loop()
        pop = Pop(item_id, extension, loop.create_future(), source, ts, expires_at)
        self.pops[(item_id, extension)] = pop
        while len(self.pops) > CONTEXT_LIMIT:  # pops the ACD never ended (a channel's own pop())
            stale = self.pops.pop(next(iter(self.pops)))
            stale.done()
        context = self._context(item_id, source)
        if context.done():
            self._send_pop(pop)
        else:
            self._spawn(self._pop_when_ready(pop, context), f"cti-pop-{item_id}")
        return pop

    async def _pop_when_ready(self, pop: Pop, context: asyncio.Task[PopContext]) -> None:
        # A look-up is a few milliseconds; the store's slow moments (a checkpoint, a busy disk)
        # must not hold up the offer: past the wait it goes without the history.
        try:
            await asyncio.wait_for(asyncio.shield(context), self.settings().pop_lookup_wait_s)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is being stopped (the hub closes)
            # else the look-up was cancelled (the item left): the pop goes without it
        except Exception:
            log.exception("CTI: pop context of %s failed", pop.item_id)
        self._send_pop(pop)

    def _send_pop(self, pop: Pop) -> None:
        """Write the offer now, with the context if it is ready (else an ``offer_update`` follows)."""
        if pop.sent or pop.cancelled:
            return
        pop.sent = True
        context_task = self._contexts.get(pop.item_id)
        context = None
        if context_task is not None and context_task.done() and not context_task.cancelled() \
                and context_task.exception() is None:
            context = context_task.result()
        desk = self.desk(pop.extension)
        message = self._offer_message(pop, context)
        desk.offer = message

        # The pop is delivered when one of the agent's desktops says it shows the offer
        # ("seen"); with no desktop attached, once the frame is written to every socket
        # that reads the stream (a supervisor or an integration watching).
        attached = desk.stream.connections
        pop.watchers = {c for c in attached if c in desk.own}

        def written() -> None:
            pop.waiting -= 1
            if pop.waiting <= 0 and not pop.watchers:
                pop.done()

        pop.waiting = len(attached)
        self.push(desk, message, written)
        if pop.waiting == 0 and not pop.watchers:
            pop.done()
        if context is None and context_task is not None:
            context_task.add_done_callback(lambda task: self._offer_update(pop, task))

    def _offer_update(self, pop: Pop, task: asyncio.Task[PopContext]) -> None:
        desk = self.all.get(pop.extension)
        if desk is None or task.cancelled() or task.exception() is not None:
            return
        context = task.result()
        current = desk.offer if desk.offer is not None and desk.offer["item_id"] == pop.item_id \
            else desk.items.get(pop.item_id)
        if current is None:
            return
        current.update(customer=context.customer, history=context.history, articles=context.articles)
        self.push(desk, {"type": "offer_update", "ts": self.clock(), "extension": pop.extension,
                          "item_id": pop.item_id, "customer": context.customer, "history": context.history,
                          "articles": context.articles})

    def _offer_message(self, pop: Pop, context: PopContext | None) -> dict[str, Any]:
        source = pop.source
        if isinstance(source, WorkItem):
            data: Mapping[str, Any] = source.data
            channel, queue, priority, enqueued = str(source.channel), source.queue, source.priority, \
                source.enqueued_at
        else:
            raw = source.get("data")
            data = raw if isinstance(raw, Mapping) else {}
            channel, queue = str(source.get("channel", "voice")), str(source.get("queue", ""))
            priority = source.get("priority", 0) if isinstance(source.get("priority"), int) else 0
            enq = source.get("enqueued_at")
            enqueued = float(enq) if isinstance(enq, int | float) else None
        ivr = data.get("ivr")
        customer = context.customer if context is not None else _customer_of(data)
        articles = context.articles if context is not None else self._articles(data, queue)
        now = self.clock()
        return {
            "type": "offer", "ts": pop.ts, "extension": pop.extension, "item_id": pop.item_id,
            "channel": channel, "queue": queue, "priority": priority,
            "call_id": _text(data.get("call_id")), "caller": _text(data.get("caller")),
            "callee": _text(data.get("callee")), "subject": _text(data.get("subject")),
            "sender": _text(data.get("from")) or _text(data.get("sender")),
            "snippet": _text(data.get("snippet")),
            "customer": customer, "ivr": _jsonable(ivr) if isinstance(ivr, Mapping) else {},
            "enqueued_at": enqueued, "wait_s": round(max(0.0, now - (enqueued or now)), 1),
            "expires_at": pop.expires_at,
            "history": context.history if context is not None else None,
            "articles": articles,
        }

    def _articles(self, data: Mapping[str, Any], queue: str | None) -> list[dict[str, Any]]:
        found = self.knowledge.suggest(ivr=data.get("ivr"), subject=_text(data.get("subject")), queue=queue)
        return [{"id": a.id, "title": a.title, "body": a.body, "tags": list(a.tags)} for a in found]

    def _context(self, item_id: str, source: WorkItem | Mapping[str, Any]) -> asyncio.Task[PopContext]:
        task = self._contexts.get(item_id)
        if task is None:
            if isinstance(source, WorkItem):
                data: Mapping[str, Any] = source.data
                channel, queue = str(source.channel), source.queue
            else:
                raw = source.get("data")
                data = raw if isinstance(raw, Mapping) else {}
                channel, queue = str(source.get("channel", "voice")), str(source.get("queue", ""))
            task = asyncio.get_running_loop().create_task(self._fetch_context(dict(data), channel, queue),
                                                          name=f"cti-context-{item_id}")
            self._contexts[item_id] = task
            while len(self._contexts) > CONTEXT_LIMIT:
                _, old = self._contexts.popitem(last=False)
                old.cancel()
        return task

    async def _fetch_context(self, data: dict[str, Any], channel: str, queue: str) -> PopContext:
        customer = _customer_of(data)
        try:
            if customer is None:
                record = None
                caller, sender = _text(data.get("caller")), _text(data.get("from")) or _text(data.get("sender"))
                if sender and "@" in sender:
                    record = await self.customers.find("email", sender)
                elif caller:
                    record = await self.customers.find("phone", caller)
                customer = record.to_dict() if record is not None else None
            history = []
            if customer is not None:
                history = [history_entry(r) for r in await self.customers.history(int(customer["id"]),
                                                                                  HISTORY_LIMIT)]
        except Exception:  # a store hiccup costs the pop its history, never the pop itself
            log.exception("CTI: customer look-up for a pop failed")
            history = []
        return PopContext(customer, history, self._articles(data, queue))

    def _drop_context(self, item_id: str) -> None:
        task = self._contexts.pop(item_id, None)
        if task is not None and not task.done():
            task.cancel()

    # ---- events -> messages ------------------------------------------------------------------------
    def on_acd(self, event: Any) -> None:
        if isinstance(event, AgentStateChanged):
            self._agent_changed(event)
        elif isinstance(event, ItemQueued):
            item = self.acd.item(event.item_id)
            if item is not None:
                self._context(item.id, item)
        elif isinstance(event, ItemOffered):
            self._offered(event)
        elif isinstance(event, OfferWithdrawn):
            self._withdrawn(event)
        elif isinstance(event, ItemAssigned):
            self._assigned(event)
        elif isinstance(event, ItemCompleted):
            self._completed(event)
        elif isinstance(event, ItemRemoved) or (
                isinstance(event, ItemOverflowed) and event.kind is not OverflowKind.QUEUE):
            self._drop_context(event.item_id)  # the item left the router: nobody will pop it
        self.wallboard_changed()

    def _agent_changed(self, event: AgentStateChanged) -> None:
        try:
            view = self.acd.agent_view(event.extension)
        except AcdError:
            return
        # The view is read after the whole batch of events; each message shows its own transition.
        view.update(state=str(event.to_state), reason=event.reason, since=event.ts)
        desk = self.desk(event.extension)
        self.push(desk, {"type": "agent_state", "ts": event.ts, "extension": event.extension, "agent": view,
                          "from_state": str(event.from_state)})
        self.wallboard.publish({"type": "agent_state", "ts": event.ts, "extension": event.extension,
                                "agent": view, "from_state": str(event.from_state)})

    def _offered(self, event: ItemOffered) -> None:
        key = (event.item_id, event.extension)
        if key in self.pops:
            return  # the channel's pop() came first
        item = self.acd.item(event.item_id)
        source: WorkItem | Mapping[str, Any] = item if item is not None else {"id": event.item_id,
                                                                              "queue": event.queue,
                                                                              "channel": str(event.channel)}
        self._start_pop(event.extension, event.item_id, source, ts=event.ts, expires_at=event.expires_at)

    def _withdrawn(self, event: OfferWithdrawn) -> None:
        pop = self.pops.pop((event.item_id, event.extension), None)
        if pop is not None:
            if not pop.sent:
                pop.cancelled = True  # never shown: nothing to take back
            pop.done()
            if pop.cancelled:
                return
        desk = self.desk(event.extension)
        if desk.offer is not None and desk.offer["item_id"] == event.item_id:
            desk.offer = None
        self.push(desk, {"type": "offer_withdrawn", "ts": event.ts, "extension": event.extension,
                          "item_id": event.item_id, "reason": str(event.reason)})

    def _assigned(self, event: ItemAssigned) -> None:
        pop = self.pops.pop((event.item_id, event.extension), None)
        if pop is not None:
            self._send_pop(pop)  # an answer faster than the look-up: show the pop now
            pop.done()
        desk = self.desk(event.extension)
        context = desk.offer if desk.offer is not None and desk.offer["item_id"] == event.item_id else None
        desk.offer = None
        item = self.acd.item(event.item_id)
        call_id = _text(item.data.get("call_id")) if item is not None else None
        if call_id is None and context is not None:
            call_id = _text(context.get("call_id"))
        in_hand: dict[str, Any] = {k: v for k, v in context.items() if k not in ("type", "seq")} \
            if context is not None else {
            "item_id": event.item_id, "channel": str(event.channel), "queue": event.queue}
        in_hand["call_id"] = call_id
        desk.items[event.item_id] = in_hand
        self.push(desk, {"type": "assigned", "ts": event.ts, "extension": event.extension,
                          "item_id": event.item_id, "call_id": call_id, "channel": str(event.channel),
                          "queue": event.queue, "wait_s": round(event.wait_s, 1)})
        if call_id is not None and event.channel.realtime:
            self._call_owner[call_id] = event.extension
            call = {"call_id": call_id, "item_id": event.item_id, "state": "connected", "since": event.ts}
            desk.calls[call_id] = call
            self.push(desk, {"type": "call", "ts": event.ts, "extension": event.extension, **call})

    def _completed(self, event: ItemCompleted) -> None:
        desk = self.desk(event.extension)
        context = desk.items.pop(event.item_id, None) or {}
        self._drop_context(event.item_id)
        call_id = context.get("call_id")
        if isinstance(call_id, str) and desk.calls.pop(call_id, None) is not None:
            self._call_owner.pop(call_id, None)
            self.push(desk, {"type": "call", "ts": event.ts, "extension": event.extension, "call_id": call_id,
                              "item_id": event.item_id, "state": "ended", "reason": "completed"})
        customer = context.get("customer")
        customer_id = customer.get("id") if isinstance(customer, dict) else None
        self._add_wrap(desk, {
            "item_id": event.item_id, "call_id": call_id if isinstance(call_id, str) else None,
            "channel": str(event.channel), "queue": event.queue, "customer_id": customer_id,
            "customer": customer, "caller": context.get("caller"),
            "started_at": event.ts - event.handle_s, "ended_at": event.ts,
        })
        self.push(desk, {"type": "completed", "ts": event.ts, "extension": event.extension,
                          "item_id": event.item_id, "call_id": call_id if isinstance(call_id, str) else None,
                          "channel": str(event.channel), "handle_s": round(event.handle_s, 1),
                          "customer_id": customer_id})

    def _add_wrap(self, desk: Desk, context: dict[str, Any]) -> None:
        desk.wrap[context["item_id"]] = context
        while len(desk.wrap) > WRAP_KEPT:
            desk.wrap.popitem(last=False)

    def on_call(self, event: Any) -> None:
        if isinstance(event, CallStarted):
            if event.direction == "outbound" and event.caller in self.all \
                    and self.users.by_extension(event.caller) is not None:
                self.dialling(self.desk(event.caller), event.call_id, event.callee, None, event.ts)
            return
        extension = self._call_owner.get(getattr(event, "call_id", ""))
        if extension is None:
            return
        desk = self.desk(extension)
        call = desk.calls.get(event.call_id)
        if call is None:
            return
        if isinstance(event, CallHeld):
            call["state"] = "held" if event.held else "connected"
        elif isinstance(event, CallAnswered):
            if call["state"] != "dialing":
                return
            call["state"] = "connected"
            call["since"] = event.ts
        elif isinstance(event, CallEnded):
            del desk.calls[event.call_id]
            self._call_owner.pop(event.call_id, None)
            self.push(desk, {"type": "call", "ts": event.ts, "extension": extension, "call_id": event.call_id,
                              "item_id": call.get("item_id"), "state": "ended", "reason": event.reason})
            if call.get("item_id") is None:  # a call the agent dialled: wrap it up like an item
                self._add_wrap(desk, {
                    "item_id": event.call_id, "call_id": event.call_id, "channel": "voice", "queue": None,
                    "customer_id": call.get("customer_id"), "customer": None, "caller": call.get("number"),
                    "started_at": event.ts - event.duration_s, "ended_at": event.ts,
                })
                self.push(desk, {"type": "completed", "ts": event.ts, "extension": extension,
                                  "item_id": event.call_id, "call_id": event.call_id, "channel": "voice",
                                  "handle_s": round(event.duration_s, 1), "customer_id": call.get("customer_id")})
            return
        else:
            return
        self.push(desk, {"type": "call", "ts": event.ts, "extension": extension, "call_id": event.call_id,
                          "item_id": call.get("item_id"), "state": call["state"]})

    def dialling(self, desk: Desk, call_id: str, number: str, customer_id: int | None, ts: float) -> None:
        call = desk.calls.get(call_id)
        if call is not None:
            if customer_id is not None:
                call["customer_id"] = customer_id
            return
        self._call_owner[call_id] = desk.extension
        desk.calls[call_id] = {"call_id": call_id, "item_id": None, "state": "dialing", "number": number,
                               "since": ts, "customer_id": customer_id}
        self.push(desk, {"type": "call", "ts": ts, "extension": desk.extension, "call_id": call_id,
                          "item_id": None, "state": "dialing", "number": number})

    def on_phone(self, event: Any) -> None:
        if not isinstance(event, AgentRegistered | AgentUnregistered):
            return
        desk = self.all.get(event.extension)
        if desk is None:
            return
        registered = isinstance(event, AgentRegistered)
        if desk.registered is registered:
            return
        desk.registered = registered
        self.push(desk, {"type": "phone", "ts": event.ts, "extension": event.extension, "registered": registered})

    # ---- the wallboard --------------------------------------------------------------------------
    def wallboard_changed(self) -> None:
        if self._wallboard_handle is not None or not self.started:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._wallboard_at + self.settings().wallboard_interval_s - loop.time())
        self._wallboard_handle = loop.call_later(delay, self._flush_wallboard)

    def _flush_wallboard(self) -> None:
        self._wallboard_handle = None
        if not self.wallboard.connections:
            # Nobody watches: a wallboard that connects gets a snapshot, or fresh figures after
            # its replay (:meth:`wallboard_resumed`).
            self._wallboard_stale = True
            return
        self._wallboard_stale = False
        self._wallboard_at = asyncio.get_running_loop().time()
        try:
            queues = self.acd.queues_view()
            items = self._waiting(queues)
        except Exception:
            log.exception("CTI: wallboard figures failed")
            return
        self.wallboard.publish({"type": "wallboard", "ts": self.clock(), "queues": queues, "items": items})

    def wallboard_resumed(self) -> None:
        """A wallboard resumed its stream: the figures that changed while nobody watched follow."""
        if self._wallboard_stale:
            self.wallboard_changed()

    def _waiting(self, queues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for queue in queues:
            if queue.get("waiting"):
                items.extend(self.acd.items_view(queue["name"])[:WALLBOARD_ITEMS])
        return items

    # ---- snapshots ------------------------------------------------------------------------------
    def snapshot(self, stream: Stream, reason: str) -> dict[str, Any]:
        base: dict[str, Any] = {"type": "snapshot", "seq": stream.seq, "ts": self.clock(), "epoch": stream.epoch,
                                "reason": reason}
        if stream is self.wallboard:
            queues = self.acd.queues_view()
            return {**base, "view": "wallboard", "queues": queues, "items": self._waiting(queues),
                    "agents": self.acd.agents_view()}
        if stream is self.feed:
            return {**base, "view": "feed", "queues": self.acd.queues_view(), "agents": self.acd.agents_view()}
        extension = stream.name.removeprefix("agent:")
        desk = self.desk(extension)
        try:
            agent: dict[str, Any] | None = self.acd.agent_view(extension)
        except AcdError:
            agent = None
        registered = agent.get("registered") if agent is not None else None
        if isinstance(registered, bool):
            desk.registered = registered
        return {
            **base, "view": "agent", "agent": agent, "offer": desk.offer, "items": list(desk.items.values()),
            "calls": list(desk.calls.values()), "wrap": list(desk.wrap.values()),
            "queues": [{"name": q["name"], "waiting": q["waiting"]} for q in self.acd.queues_view()],
            "agents": [{"extension": a["extension"], "name": a["name"], "state": a["state"]}
                       for a in self.acd.agents_view() if a["extension"] != extension],
            "phone_registered": registered if isinstance(registered, bool) else None,
        }

    def connected_agents(self) -> set[str]:
        """Extensions with at least one desktop connected now."""
        return {ext for ext, desk in self.all.items() if desk.own}
