"""The ACD as a running service: the router on the event loop, its state in the store.

Theory of operation
-------------------
:class:`AcdService` owns the sans-I/O :class:`~cosmo.acd.router.Router` through
a :class:`~cosmo.acd.clocked.ClockedRouter` (one timer, POSIX time) and does
what the router's events ask:

* ``ItemOffered`` / ``OfferWithdrawn`` / ``ItemOverflowed`` (out of the router)
  go to the item's channel through :class:`ChannelHandler` (voice rings the
  agent's phones, e-mail pushes to the desktop...); a channel answers with
  :meth:`accepted`, :meth:`declined`, :meth:`done` or :meth:`abandon`.
* Every event is published on the bus (CTI, wallboards, the event log) and fed
  to the statistics (service level, handle times, estimated wait).
* Agent states and durable items are written to the store in order by one
  writer task: the agent's last state is its restore point, and an item of a
  durable channel (e-mail, callback, voicemail) is stored *before* it is queued
  and deleted only when it is finished, removed or delivered elsewhere.

At start the service restores each configured agent's stored state and then
the stored items in their original order; the router closes work that died
with the process (a stored ``busy`` voice agent comes back available).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cosmo.acd.agents import AgentSnapshot
from cosmo.acd.clocked import ClockedRouter
from cosmo.acd.errors import (
    AcdConfigConflict,
    AcdError,
    AgentStateError,
    UnknownItemError,
)
from cosmo.acd.estimator import AcdStatistics
from cosmo.acd.events import (
    AcdEvent,
    AgentStateChanged,
    ItemAssigned,
    ItemCompleted,
    ItemOffered,
    ItemOverflowed,
    ItemRemoved,
    OfferWithdrawn,
)
from cosmo.acd.model import (
    Agent,
    AgentState,
    Channel,
    OverflowKind,
    OverflowTarget,
    QueueSpec,
    RelaxationStep,
    ServiceLevelTarget,
    Strategy,
    WorkItem,
)
from cosmo.acd.router import AgentStatus, Router
from cosmo.config import AgentSettings, QueueSettings, Settings
from cosmo.store import repositories as repo
from cosmo.store.db import Database

__all__ = ["DURABLE_CHANNELS", "AcdService", "ChannelHandler", "PhoneNotRegistered", "agent_from", "queue_spec_from"]

log = logging.getLogger(__name__)

DURABLE_CHANNELS = frozenset({Channel.EMAIL, Channel.CALLBACK, Channel.VOICEMAIL})
"""Channels whose waiting items survive a restart (a call does not outlive the process)."""


class PhoneNotRegistered(AgentStateError):
    """An agent who takes calls asked to be available with no phone registered."""


class ChannelHandler(Protocol):
    """How the ACD reaches a channel (voice, e-mail, callback...)."""

    def offer(self, item: WorkItem, extension: str) -> None:
        """Present ``item`` to the agent; answer with ``accepted`` or ``declined``."""

    def withdraw(self, item: WorkItem, extension: str, reason: str) -> None:
        """Stop presenting ``item`` to the agent (ring timeout, the agent left, the item went)."""

    def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None:
        """``item`` left the queues for a voicemail box or a number."""


class EventSink(Protocol):
    def publish(self, event: Any) -> None: ...


def queue_spec_from(settings: QueueSettings) -> QueueSpec:
    """The router's view of a configured queue."""
    steps = tuple(
        RelaxationStep(
            after_s=step.after_s,
            min_level=step.min_level,
            drop_skills=frozenset(step.drop_skills),
            overflow_to=step.overflow_to,
        )
        for step in settings.relaxation
    )
    return QueueSpec(
        name=settings.name,
        skills=dict(settings.skills),
        service_level=ServiceLevelTarget(settings.service_level.percent / 100, settings.service_level.seconds),
        relaxation=steps,
        wrap_up_s=float(settings.wrap_up_s),
        max_wait_s=settings.max_wait_s,
        max_wait_target=OverflowTarget.parse(settings.max_wait_target) if settings.max_wait_target else None,
        no_agents_target=OverflowTarget.parse(settings.no_agents_target) if settings.no_agents_target else None,
        ring_timeout_s=settings.ring_timeout_s,
        strategy=Strategy(settings.strategy),
        aging_rate=settings.aging_per_minute / 60,
        announce_interval_s=settings.announce_interval_s,
    )


def agent_from(settings: AgentSettings) -> Agent:
    """The router's view of a configured agent."""
    return Agent(
        extension=settings.extension,
        name=settings.name,
        skills=dict(settings.skills),
        capacity={Channel(channel): count for channel, count in settings.capacity.items()},
        mixed=settings.mixed,
    )


class AcdService:
    """The universal queue of one node.  See the module documentation."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        events: EventSink,
        *,
        is_registered: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.repository = repo.AcdRepository(database)
        self.events = events
        self.is_registered = is_registered
        self.clock = clock
        specs = [queue_spec_from(q) for q in settings.queues]
        self.router = Router(specs, reasons=settings.acd.reasons, no_answer_reason=settings.acd.no_answer_reason)
        self.statistics = AcdStatistics(specs)
        self.handlers: dict[Channel, ChannelHandler] = {}
        self._items: dict[str, WorkItem] = {}
        self._clocked: ClockedRouter | None = None
        self._writes: asyncio.Queue[Callable[[], Any] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Restore agents and durable items from the store, then start routing."""
        loop = asyncio.get_running_loop()
        self._clocked = ClockedRouter(self.router, loop, self._on_events, clock=self.clock)
        self._writer = asyncio.create_task(self._write_loop(), name="acd-writer")
        stored_states = await self.repository.agent_states()
        stored_items = await self.repository.items()
        held: dict[str, list[WorkItem]] = {}
        waiting: list[WorkItem] = []
        for stored in stored_items:
            item = _item_from(stored)
            if item is None or item.queue not in self.router.queue_names():
                log.warning("stored work item %s (%s, queue %s) cannot be restored; kept in the store",
                            stored.id, stored.channel, stored.queue)
                continue
            self._items[item.id] = item
            (held.setdefault(stored.agent, []) if stored.agent else waiting).append(item)
        for agent_settings in self.settings.agents:
            agent = agent_from(agent_settings)
            snapshot = None
            if (data := stored_states.get(agent.extension)) is not None:
                try:
                    snapshot = AgentSnapshot.from_dict(data)
                except AcdError as exc:
                    log.warning("agent %s: %s; starting logged out", agent.extension, exc)
            items = held.pop(agent.extension, [])
            self._run(functools.partial(_add_agent, self.router, agent, snapshot, items))
        for items in held.values():  # an agent no longer configured: its work goes back to the queue
            waiting.extend(items)
        waiting.sort(key=lambda i: (i.enqueued_at or 0.0, i.id))
        for item in waiting:
            self._run(functools.partial(_add_item, self.router, item))
        restored = len(stored_items)
        log.info("ACD: %d queues, %d agents, %d stored items restored",
                 len(self.router.queue_names()), len(self.settings.agents), restored)

    async def close(self) -> None:
        """Stop the timer and finish the pending store writes."""
        if self._clocked is not None:
            self._clocked.close()
        if self._writer is not None:
            self._writes.put_nowait(None)
            await self._writer
            self._writer = None

    def reconfigure(self, settings: Settings) -> list[str]:
        """Follow a new configuration (a reload, or a change through the API).

        Queues are replaced with their waiting items keeping their place and wait;
        agents are added (logged out), changed (state and work kept) or removed;
        the reason codes are replaced.  Returns what changed, in words.

        Raises :class:`AcdConfigConflict`, changing nothing, when a queue that
        still holds items or an agent who is logged in would disappear.
        """
        specs = [queue_spec_from(q) for q in settings.queues]
        agents = {a.extension: agent_from(a) for a in settings.agents}
        known = {status.extension: status for status in self.router.agents()}
        for extension, status in known.items():
            if extension not in agents and status.state is not AgentState.LOGGED_OUT:
                raise AcdConfigConflict(f"agent {extension} is {status.state}: log it out before removing it")
        old_specs = {name: self.router.queue_spec(name) for name in self.router.queue_names()}
        self._run(lambda now: self.router.configure_queues(specs, now))  # refuses before any change
        self.router.set_reasons(settings.acd.reasons, settings.acd.no_answer_reason)
        self.statistics.configure(specs)
        changes = _changed("queue", old_specs, {spec.name: spec for spec in specs})
        changes += _changed("agent", {ext: self.router.agent_config(ext) for ext in known}, agents)
        for extension in known.keys() - agents.keys():
            self._run(functools.partial(self.router.remove_agent, extension))
        for extension, agent in agents.items():
            if extension not in known:
                self._run(functools.partial(_add_agent, self.router, agent, None, []))
            elif self.router.agent_config(extension) != agent:
                self._run(functools.partial(self.router.update_agent, agent))
        if settings.acd != self.settings.acd:
            changes.append("reason codes changed")
        self.settings = settings
        return changes

    # ---- channels ----------------------------------------------------------------------
    def register_channel(self, channel: Channel, handler: ChannelHandler) -> None:
        """Route offers of ``channel`` to ``handler``."""
        self.handlers[channel] = handler

    async def enqueue(self, item: WorkItem) -> None:
        """Queue ``item``; a durable one is stored first.  Raises :class:`AcdError` (unknown queue...)."""
        self.router.queue_spec(item.queue)  # UnknownQueueError before anything is stored
        if item.enqueued_at is None:
            item.enqueued_at = self.clock()
        if item.channel in DURABLE_CHANNELS:
            await self.repository.add_item(_stored(item))
        self._items[item.id] = item
        try:
            self._run(lambda now: self.router.add_item(item, now))
        except AcdError:
            self._items.pop(item.id, None)
            if item.channel in DURABLE_CHANNELS:
                self._write(lambda: self.repository.remove_item(item.id))
            raise

    def abandon(self, item_id: str, reason: str = "abandoned") -> None:
        """The item left before an agent took it (a caller hung up)."""
        if self._has(item_id):
            self._run(lambda now: self.router.remove_item(item_id, now, reason))

    def accepted(self, item_id: str, extension: str) -> bool:
        """The agent took the offered item; False when it was no longer offered to them."""
        try:
            self._run(lambda now: self.router.offer_accepted(item_id, extension, now))
        except AcdError as exc:
            log.info("late answer by %s for %s: %s", extension, item_id, exc)
            return False
        return True

    def declined(self, item_id: str, extension: str, reason: str | None = None) -> None:
        """The agent did not take the offered item (rejected, unreachable, no answer)."""
        try:
            self._run(lambda now: self.router.offer_declined(item_id, extension, now, reason=reason))
        except AcdError as exc:
            log.debug("decline of %s by %s ignored: %s", item_id, extension, exc)

    def done(self, item_id: str) -> None:
        """The agent finished the item (hang-up, reply sent); wrap-up follows."""
        if self._has(item_id):
            self._run(lambda now: self.router.item_done(item_id, now))

    def reprioritise(self, item_id: str, priority: int) -> None:
        """Give a waiting item a new priority; it moves in its queue at once.  Raises
        :class:`AcdError` (unknown item, not waiting)."""
        self._change(item_id, priority=priority)

    def move_item(self, item_id: str, queue: str) -> None:
        """Move a waiting item to another queue, keeping its ``enqueued_at``.  Raises
        :class:`AcdError` (unknown item or queue, not waiting)."""
        self._change(item_id, queue=queue)

    def _change(self, item_id: str, *, priority: int | None = None, queue: str | None = None) -> None:
        if not self._has(item_id):
            raise UnknownItemError(f"no waiting item {item_id}")
        self._run(lambda now: self.router.change_item(item_id, now, priority=priority, queue=queue))
        item = self._items.get(item_id)
        if item is not None and item.channel in DURABLE_CHANNELS:
            changed = {"queue": item.queue, "priority": item.priority}
            self._write(lambda: self.repository.update_item(item_id, **changed))

    def item(self, item_id: str) -> WorkItem | None:
        """A live item by id."""
        return self._items.get(item_id)

    def position(self, item_id: str) -> int | None:
        """1-based place of a waiting item in its queue."""
        try:
            return self.router.position(item_id)
        except UnknownItemError:
            return None

    def estimated_wait(self, queue: str, position: int | None = None) -> float | None:
        """Seconds an item at ``position`` (default: a new one) can expect to wait."""
        stats = self.statistics.queue(queue)
        if stats is None:
            return None
        now = self.clock()
        return stats.estimated_wait(now, self.router.queue_status(queue, now), position)

    # ---- agents ---------------------------------------------------------------------------
    def set_agent_state(self, extension: str, state: str, reason: str | None = None) -> AgentStatus:
        """An agent (or a supervisor) asks for a state.  Raises :class:`AcdError` (4xx)."""
        status = self.router.agent(extension)  # UnknownAgentError
        if state == AgentState.AVAILABLE and status.state != AgentState.AVAILABLE and self.is_registered:
            capacity = self.router.agent_config(extension).capacity
            if any(capacity.get(c, 0) for c in (Channel.VOICE, Channel.CALLBACK)) and not self.is_registered(extension):
                raise PhoneNotRegistered(
                    f"agent {extension}: no phone registered; register the softphone before going available"
                )
        self._run(lambda now: self.router.set_agent_state(extension, state, now, reason))
        return self.router.agent(extension)

    # ---- views (API) -------------------------------------------------------------------------
    def queues_view(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for name in self.router.queue_names():
            status = self.router.queue_status(name, now)
            stats = self.statistics.queue(name)
            level = stats.service_level(now) if stats else None
            estimate = stats.estimated_wait(now, status) if stats else None
            out.append({
                "name": name,
                "waiting": status.waiting,
                "offered": status.offered,
                "longest_wait_s": round(status.longest_wait_s, 1),
                "agents_staffed": status.agents_staffed,
                "agents_available": status.agents_available,
                "agents_busy": status.agents_busy,
                "agents_not_ready": status.agents_not_ready,
                "service_level": None if level is None else round(level, 3),
                "estimated_wait_s": None if estimate is None else round(estimate, 1),
            })
        return out

    def agents_view(self) -> list[dict[str, Any]]:
        return [self.agent_view(status.extension) for status in self.router.agents()]

    def agent_view(self, extension: str) -> dict[str, Any]:
        status = self.router.agent(extension)
        config = self.router.agent_config(extension)
        return {
            "extension": status.extension,
            "name": status.name,
            "state": str(status.state),
            "reason": status.reason,
            "since": status.since,
            "pending_reason": status.pending_reason,
            "offer": status.offer,
            "items": list(status.items),
            "wrap_up_until": status.wrap_up_until,
            "queues": list(status.queues),
            "skills": dict(config.skills),
            "capacity": {str(c): n for c, n in config.capacity.items()},
            "registered": None if self.is_registered is None else self.is_registered(extension),
        }

    def item_view(self, item: WorkItem) -> dict[str, Any]:
        """One item as ``GET /api/items`` shows it (position 0 once it left the queue: offered, assigned)."""
        return _item_view(item, self.clock(), self.position(item.id) or 0)

    def items_view(self, queue: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        names = [queue] if queue else self.router.queue_names()
        out = []
        for name in names:
            for position, item in enumerate(self.router.waiting(name), start=1):
                out.append(_item_view(item, now, position))
        return out

    # ---- internals ---------------------------------------------------------------------------
    def _has(self, item_id: str) -> bool:
        try:
            self.router.item(item_id)
        except UnknownItemError:
            return False
        return True

    def _run(self, call: Callable[[float], list[AcdEvent]]) -> list[AcdEvent]:
        assert self._clocked is not None, "AcdService.start() first"
        return self._clocked.run(call)

    def _on_events(self, events: list[AcdEvent]) -> None:
        self.statistics.observe(events)
        for event in events:
            try:
                self._act(event)
            except Exception:
                log.exception("ACD: error acting on %s", type(event).__name__)
            self.events.publish(event)

    def _act(self, event: AcdEvent) -> None:
        if isinstance(event, AgentStateChanged):
            snapshot = self.router.snapshot(event.extension).to_dict()
            self._write(lambda: self.repository.save_agent_states([snapshot]))
            return
        if isinstance(event, ItemOffered | OfferWithdrawn):
            item = self._items.get(event.item_id)
            handler = self.handlers.get(item.channel) if item else None
            if item is None or handler is None:
                log.warning("ACD: no channel for item %s", event.item_id)
                return
            if isinstance(event, ItemOffered):
                handler.offer(item, event.extension)
            else:
                handler.withdraw(item, event.extension, str(event.reason))
            return
        if isinstance(event, ItemAssigned):
            if event.channel in DURABLE_CHANNELS:
                self._write(lambda: self.repository.update_item(event.item_id, agent=event.extension))
            return
        if isinstance(event, ItemCompleted | ItemRemoved):
            item = self._items.pop(event.item_id, None)
            if item is not None and item.channel in DURABLE_CHANNELS:
                self._write(lambda: self.repository.remove_item(event.item_id))
            return
        if isinstance(event, ItemOverflowed):
            item = self._items.get(event.item_id)
            if item is None:
                return
            if event.kind is OverflowKind.QUEUE:
                if item.channel in DURABLE_CHANNELS:
                    self._write(lambda: self.repository.update_item(event.item_id, queue=event.destination))
                return
            self._items.pop(event.item_id, None)
            handler = self.handlers.get(item.channel)
            if handler is not None:
                handler.overflow(item, OverflowTarget(event.kind, event.destination), str(event.reason))
            if item.channel in DURABLE_CHANNELS:
                self._write(lambda: self.repository.remove_item(event.item_id))

    async def flush(self) -> None:
        """Wait until every store write queued so far is done.

        The API calls it before answering a state change, so an agent state it
        reported survives a crash (``kill -9``) right after the answer.
        """
        if self._writer is None or self._writer.done():
            return
        written = asyncio.get_running_loop().create_future()

        async def mark() -> None:
            if not written.done():
                written.set_result(None)

        self._writes.put_nowait(mark)
        await written

    def _write(self, write: Callable[[], Any]) -> None:
        self._writes.put_nowait(write)

    async def _write_loop(self) -> None:
        while (write := await self._writes.get()) is not None:
            try:
                await write()
            except Exception:
                log.exception("ACD: a store write failed")


def _changed(kind: str, before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """``queue sales added`` ... for the names that differ between two definitions."""
    out = [f"{kind} {name} added" for name in after if name not in before]
    out += [f"{kind} {name} removed" for name in before if name not in after]
    out += [f"{kind} {name} changed" for name in after if name in before and before[name] != after[name]]
    return out


def _add_agent(router: Router, agent: Agent, snapshot: AgentSnapshot | None, held: list[WorkItem],
               now: float) -> list[AcdEvent]:
    return router.add_agent(agent, now, snapshot=snapshot, held=held)


def _add_item(router: Router, item: WorkItem, now: float) -> list[AcdEvent]:
    return router.add_item(item, now)


def _stored(item: WorkItem) -> repo.StoredItem:
    return repo.StoredItem(
        id=item.id, channel=str(item.channel), queue=item.queue, priority=item.priority,
        skills=dict(item.skills), enqueued_at=float(item.enqueued_at or 0.0), data=_jsonable(item.data),
    )


def _item_from(stored: repo.StoredItem) -> WorkItem | None:
    try:
        return WorkItem(
            id=stored.id, channel=Channel(stored.channel), queue=stored.queue, priority=stored.priority,
            skills=dict(stored.skills), enqueued_at=stored.enqueued_at, data=dict(stored.data),
        )
    except (AcdError, ValueError):
        return None


def _item_view(item: WorkItem, now: float, position: int) -> dict[str, Any]:
    enqueued = item.enqueued_at or now
    return {
        "id": item.id,
        "channel": str(item.channel),
        "queue": item.queue,
        "position": position,
        "priority": item.priority,
        "state": str(item.state),
        "wait_s": round(max(0.0, now - enqueued), 1),
        "enqueued_at": enqueued,
        "skills": dict(item.skills),
        "data": _jsonable(item.data),
    }


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with only JSON values (anything else as text)."""

    def clean(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return str(value)

    return {str(k): clean(v) for k, v in data.items()}

