"""The router: matches waiting work items with agents, sans-I/O.

Theory of operation
-------------------
The router holds the queues, the agents (each with its
:class:`~cosmo.acd.agents.AgentStateMachine`) and the waiting items.  It never
reads a clock and starts nothing: every call takes ``now`` (seconds on the
owner's clock) and returns the list of :mod:`~cosmo.acd.events` it caused,
in order.  After any call the owner re-arms one timer for
:meth:`Router.next_deadline` and calls :meth:`Router.handle_timer` when it
fires.  A call made at or after a deadline first processes that deadline, so
a late timer costs accuracy, never consistency.

*Invariant.*  After every call, no waiting item could be offered to any agent
that is free for it.  Hence only what a call changes needs looking at:

* an item that arrives, returns after an offer, reaches a relaxation step or
  overflows into a queue is matched against the free agents eligible for it
  (the agents are the surplus: the queue's :class:`~cosmo.acd.model.Strategy`
  picks one);
* an agent that becomes free (available, an item finished, an offer
  withdrawn, wrap-up over) takes the best waiting item among *all* the queues
  it serves: highest effective priority (priority raised by aging), then
  earliest ``enqueued_at``, then arrival order (the items are the surplus).

When one call frees several agents and items at once (deadlines falling
together) the agents choose first, then the items in routing order, so every
offer still goes to the best eligible item for its agent.

*Offers.*  An offer reserves the agent (one offer at a time per agent;
an agent with spare capacity on another item may receive one while busy) and
starts the queue's ring timeout.  ``offer_accepted`` makes the agent busy;
``offer_declined`` or the ring timeout (RONA) puts the item back at its
original place and the agent in ``not_ready`` with the no-answer reason.
``item_done`` ends the work: the agent goes to ``wrap_up`` for the queue's
time (a deadline), then to ``available`` (or to the not-ready reason it asked
for while busy).

*Deadlines* the router keeps: each waiting item's next relaxation step or max
wait, each offer's ring timeout, each wrap-up's end.  Aging needs none: it is
linear, so within a queue it never changes the order, and across queues it is
evaluated when a choice is made.

*Cost.*  See :mod:`cosmo.acd.pools` for the indexes.  An agent becoming free
costs one heap peek per item class it is eligible for (its queues × channels ×
relaxation steps reached), plus O(log n) to take the item; an arriving item
costs O(log n) plus a look at the free agents eligible for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cosmo.acd.agents import Actor, AgentSnapshot, AgentStateMachine
from cosmo.acd.engine import OCCUPIED, RouterEngine
from cosmo.acd.errors import (
    AcdConfigConflict,
    AcdConfigError,
    AgentStateError,
    RoutingError,
    UnknownQueueError,
)
from cosmo.acd.events import (
    AcdEvent,
    ItemAssigned,
    ItemChanged,
    ItemCompleted,
    ItemQueued,
    ItemRemoved,
    WithdrawReason,
)
from cosmo.acd.model import (
    DEFAULT_REASONS,
    NO_ANSWER,
    Agent,
    AgentState,
    ItemState,
    QueueSpec,
    WorkItem,
    check_queues,
)
from cosmo.acd.pools import AgentSlot, ItemSlot, QueueRuntime, TimerKind

__all__ = ["AgentStatus", "QueueStatus", "Router"]

_WORKING = frozenset({AgentState.AVAILABLE, AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})
_AGENT_STATES = frozenset(state.value for state in AgentState)


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the API and the desktop show of an agent."""

    extension: str
    name: str
    state: AgentState
    reason: str | None
    since: float
    pending_reason: str | None
    offer: str | None
    """The item offered to the agent now."""
    items: tuple[str, ...]
    """Items the agent has accepted and not finished."""
    wrap_up_until: float | None
    queues: tuple[str, ...]
    """Queues the agent's skills can serve (after every relaxation step)."""


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A queue at a glance (``GET /api/queues``).  Service level and estimated wait come from the estimator."""

    name: str
    waiting: int
    offered: int
    longest_wait_s: float
    agents_staffed: int
    """Logged-in agents able to serve the queue."""
    agents_available: int
    agents_busy: int
    """Reserved, busy or in wrap-up."""
    agents_not_ready: int
    agents_effective: float
    """Working agents, each counted as 1/k when it serves k queues that have work waiting."""
    agents_free: int
    """Agents that could take an item of this queue at once."""


class Router(RouterEngine):
    """The ACD router: queues, agents, waiting items, offers.  See the module documentation.

    ``reasons`` is the configured list of not-ready reason codes and must
    contain ``no_answer_reason`` (given to an agent after RONA or a decline).
    Raises :class:`AcdConfigError` for invalid queues.
    """

    def __init__(
        self,
        queues: Iterable[QueueSpec] = (),
        *,
        reasons: Iterable[str] = DEFAULT_REASONS,
        no_answer_reason: str = NO_ANSWER,
    ) -> None:
        super().__init__(queues, frozenset(reasons), no_answer_reason)

    @property
    def reasons(self) -> frozenset[str]:
        """The configured not-ready reason codes."""
        return self._reasons

    # ------------------------------------------------------------------ public: time

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (``None``: no deadline)."""
        return self._timers.next_at()

    def handle_timer(self, now: float) -> list[AcdEvent]:
        """Process every deadline at or before ``now`` (relaxation, max wait, RONA, wrap-up end)."""
        return self._run(now, lambda out: None)

    # ------------------------------------------------------------------ public: configuration

    def configure_queues(self, queues: Iterable[QueueSpec], now: float) -> list[AcdEvent]:
        """Replace the queue definitions (a reload); waiting items keep their place and wait time.

        Raises :class:`AcdConfigError`, changing nothing, for invalid queues or
        when a queue that still holds items would disappear.
        """

        def action(out: list[AcdEvent]) -> None:
            specs = check_queues(queues)
            for slot in self._items.values():
                if slot.item.queue not in specs:
                    raise AcdConfigConflict(f"queue {slot.item.queue!r} still holds items: it cannot be removed")
            self._queues = {name: QueueRuntime(spec) for name, spec in specs.items()}
            for a in self._agents.values():
                a.classes = {}
                a.queues = set()
                self._index_agent(a)
            for slot in sorted(self._items.values(), key=lambda s: s.seq):
                if slot.item.state is not ItemState.QUEUED:
                    continue
                slot.cls = None
                slot.token += 1
                relaxation = specs[slot.item.queue].relaxation
                usable = sum(1 for step in relaxation if step.overflow_to is None)
                slot.item.step = min(slot.item.step, usable)
                if self._advance(slot, now, out):
                    self._place(slot)
            for q in self._queues.values():
                if q.staffed == 0:
                    self._empty_queue(q, now, out)
            for a in self._agents.values():
                self._touch(a)

        return self._run(now, action)

    def set_reasons(self, reasons: Iterable[str], no_answer_reason: str) -> None:
        """Replace the not-ready reason codes (a reload).  An agent paused for a code
        that is gone keeps it until its next change.  Raises :class:`AcdConfigError`."""
        codes = frozenset(reasons)
        if no_answer_reason not in codes:
            raise AcdConfigError(f"the no-answer reason {no_answer_reason!r} is not among the reason codes")
        self._reasons, self._no_answer = codes, no_answer_reason
        for a in self._agents.values():
            a.machine.reasons = codes

    def add_agent(
        self,
        agent: Agent,
        now: float,
        *,
        snapshot: AgentSnapshot | None = None,
        held: Iterable[WorkItem] = (),
    ) -> list[AcdEvent]:
        """Make ``agent`` known, logged out, or in the state ``snapshot`` stored.

        ``held`` are durable items the agent was handling when the state was
        stored (an e-mail being answered); they come back assigned to it.
        Work that died with the process is closed with events: a stored
        ``reserved`` or ``busy`` agent without held items becomes available
        (or not ready, if it had asked), an elapsed wrap-up ends.

        Raises :class:`AcdConfigError` for a known extension or unusable held
        items, :class:`AgentStateError` for an inconsistent snapshot.
        """

        def action(out: list[AcdEvent]) -> None:
            ext = agent.extension
            if ext in self._agents:
                raise AcdConfigError(f"agent {ext} is already known")
            if snapshot is not None and snapshot.extension != ext:
                raise AcdConfigError(f"agent {ext}: the stored state is agent {snapshot.extension}'s")
            machine = (
                AgentStateMachine.restore(snapshot, self._reasons)
                if snapshot is not None
                else AgentStateMachine(ext, self._reasons, now)
            )
            items = list(held)
            ids = set()
            for item in items:
                item.check()
                if item.id in self._items or item.id in ids:
                    raise AcdConfigError(f"agent {ext}: held item {item.id} is already in the router")
                if item.queue not in self._queues:
                    raise UnknownQueueError(f"agent {ext}: held item {item.id}: unknown queue {item.queue!r}")
                ids.add(item.id)
            if items and machine.state not in (AgentState.RESERVED, AgentState.BUSY):
                raise AcdConfigError(f"agent {ext} was stored {machine.state}: it cannot hold items")
            self._agent_seq += 1
            a = AgentSlot(agent, machine, self._agent_seq)
            self._agents[ext] = a
            if machine.state in OCCUPIED:
                a.occupied_since = machine.since
            self._index_agent(a)
            for item in items:
                self._item_seq += 1
                enq = now if item.enqueued_at is None else item.enqueued_at
                item.enqueued_at = enq
                slot = ItemSlot(item, self._item_seq, enq)
                item.state, item.agent, slot.agent = ItemState.ASSIGNED, ext, a
                item.assigned_at = now if item.assigned_at is None else item.assigned_at
                self._items[item.id] = slot
                a.held[item.id] = slot
                a.add_load(item.channel)
            state = machine.state
            if state is AgentState.RESERVED and items:
                self._transition(a, AgentState.BUSY, now, out)
            elif state in (AgentState.RESERVED, AgentState.BUSY) and not items:
                self._rest(a, now, out)
            elif state is AgentState.WRAP_UP:
                until = snapshot.wrap_up_until if snapshot is not None else None
                if until is not None and until > now:
                    a.wrap_until = until
                    a.wrap_timer = self._timers.schedule(until, TimerKind.WRAP_UP, a)
                else:
                    self._rest(a, now, out)
            self._touch(a)

        return self._run(now, action)

    def update_agent(self, agent: Agent, now: float) -> list[AcdEvent]:
        """Change an agent's name, skills, capacity or mixing; its state and work stay.

        Raises :class:`UnknownAgentError`.
        """

        def action(out: list[AcdEvent]) -> None:
            a = self._agent(agent.extension)
            before = {q for q in a.queues}
            self._unindex_agent(a)
            a.agent = agent
            self._index_agent(a)
            for q in before - a.queues:
                if q.staffed == 0:
                    self._empty_queue(q, now, out)
            self._touch(a)

        return self._run(now, action)

    def remove_agent(self, extension: str, now: float) -> list[AcdEvent]:
        """Forget a logged-out agent.  Raises :class:`UnknownAgentError`, or :class:`AgentStateError` if logged in."""

        def action(out: list[AcdEvent]) -> None:
            a = self._agent(extension)
            if a.machine.state is not AgentState.LOGGED_OUT:
                raise AgentStateError(f"agent {extension} is {a.machine.state}: log it out first")
            self._unindex_agent(a)
            self._offerable.discard(a)
            del self._agents[extension]

        return self._run(now, action)

    # ------------------------------------------------------------------ public: agent requests

    def set_agent_state(
        self, extension: str, requested: AgentState | str, now: float, reason: str | None = None
    ) -> list[AcdEvent]:
        """The agent asks for ``available``, ``not_ready`` (with a reason code) or ``logged_out``.

        ``not_ready`` while busy is kept and applied when the work ends;
        ``not_ready`` or ``logged_out`` while an offer rings withdraws the offer
        (the item goes back to its place).  ``available`` while busy cancels a
        pending not-ready; during wrap-up it ends the wrap-up.

        Raises :class:`UnknownAgentError`, :class:`UnknownReasonError`, or
        :class:`AgentStateError` (an unknown state, a state only the router
        sets, logging out while holding work), changing nothing.
        """
        state = AgentState(requested) if requested in _AGENT_STATES else None

        def action(out: list[AcdEvent]) -> None:
            a = self._agent(extension)
            machine = a.machine
            current = machine.state
            if state is None:
                raise AgentStateError(f"agent {extension}: unknown state {requested!r}")
            if state is AgentState.NOT_READY:
                machine.check_reason(reason)
            elif reason is not None:
                raise AgentStateError(f"agent {extension}: a reason goes with not_ready only, not with {state}")
            if state is AgentState.AVAILABLE:
                if current in (AgentState.RESERVED, AgentState.BUSY):
                    machine.clear_pending()
                    self._touch(a)
                    return
            elif state is AgentState.NOT_READY:
                if current is AgentState.BUSY:
                    machine.defer_not_ready(reason)
                    self._touch(a)
                    return
            elif state is AgentState.LOGGED_OUT:
                working = len(a.held) - (1 if a.offer is not None else 0)
                if working:
                    raise AgentStateError(
                        f"agent {extension} is {current} with {working} item(s): it can log out once they are done"
                    )
            else:
                raise AgentStateError(f"agent {extension}: {state} is set by the router, not on request")
            offer = a.offer
            if offer is not None:  # not_ready or logged_out while it rings
                self._withdraw(offer, now, WithdrawReason.AGENT, out)
                if a.held:
                    self._transition(a, AgentState.BUSY, now, out)
                    machine.defer_not_ready(reason)
                    self._touch(a)
                else:
                    self._transition(a, state, now, out, actor=Actor.AGENT, reason=reason)
                self._requeue(offer, now, out)
                return
            machine.check(state, Actor.AGENT, reason)
            self._cancel_wrap_up(a)
            self._transition(a, state, now, out, actor=Actor.AGENT, reason=reason)

        return self._run(now, action)

    # ------------------------------------------------------------------ public: work items

    def add_item(self, item: WorkItem, now: float) -> list[AcdEvent]:
        """Queue a work item (the router owns it from now on) and offer it if an agent is free.

        ``item.enqueued_at`` of ``None`` becomes ``now``.  Raises
        :class:`AcdConfigError` for an invalid item, :class:`UnknownQueueError`,
        or :class:`RoutingError` for an id already in the router.
        """

        def action(out: list[AcdEvent]) -> None:
            item.check()
            if item.id in self._items:
                raise RoutingError(f"item {item.id} is already in the router")
            if item.queue not in self._queues:
                raise UnknownQueueError(f"item {item.id}: unknown queue {item.queue!r}")
            enq = now if item.enqueued_at is None else item.enqueued_at
            item.enqueued_at = enq
            item.state, item.agent, item.assigned_at = ItemState.QUEUED, None, None
            self._item_seq += 1
            slot = ItemSlot(item, self._item_seq, enq)
            self._items[item.id] = slot
            out.append(ItemQueued(item.id, item.queue, item.channel, item.priority, enq, ts=now))
            if self._enter(slot, item.queue, now, out) and self._advance(slot, now, out):
                self._place(slot)

        return self._run(now, action)

    def remove_item(self, item_id: str, now: float, reason: str = "abandoned") -> list[AcdEvent]:
        """A waiting or offered item leaves (the caller hung up, the e-mail was withdrawn).

        An outstanding offer is withdrawn (stop ringing) and its agent freed.
        Raises :class:`UnknownItemError`, or :class:`RoutingError` for an
        assigned item (end it with :meth:`item_done`).
        """

        def action(out: list[AcdEvent]) -> None:
            slot = self._slot(item_id)
            item = slot.item
            if item.state is ItemState.ASSIGNED:
                raise RoutingError(f"item {item_id} is assigned to agent {item.agent}: end it with item_done")
            if item.state is ItemState.OFFERED:
                self._withdraw(slot, now, WithdrawReason.REMOVED, out)
            self._unplace(slot)
            out.append(ItemRemoved(item_id, item.queue, item.channel, reason, now - slot.enq, ts=now))
            self._forget(slot, ItemState.REMOVED)

        return self._run(now, action)

    def change_item(self, item_id: str, now: float, *, priority: int | None = None,
                    queue: str | None = None) -> list[AcdEvent]:
        """A supervisor gives a waiting item a new priority or moves it to another queue.

        The item keeps its ``enqueued_at`` (its place among equals); in a new queue
        relaxation and max wait count from now.  Raises :class:`UnknownItemError`,
        :class:`UnknownQueueError`, or :class:`RoutingError` for an item that is
        offered or assigned (it is not waiting).
        """

        def action(out: list[AcdEvent]) -> None:
            slot = self._slot(item_id)
            item = slot.item
            if item.state is not ItemState.QUEUED:
                raise RoutingError(f"item {item_id} is {item.state.value}: only a waiting item can be changed")
            if queue is not None and queue not in self._queues:
                raise UnknownQueueError(f"item {item_id}: unknown queue {queue!r}")
            self._unplace(slot)
            if priority is not None:
                item.priority = priority
            out.append(ItemChanged(item_id, queue or item.queue, item.priority, from_queue=item.queue, ts=now))
            if queue is not None and queue != item.queue and not self._enter(slot, queue, now, out):
                return
            if self._advance(slot, now, out):
                self._place(slot)

        return self._run(now, action)

    def offer_accepted(self, item_id: str, extension: str, now: float) -> list[AcdEvent]:
        """The agent took the offered item (answered the call, opened the e-mail): the agent is busy.

        Raises :class:`UnknownItemError`/:class:`UnknownAgentError`, or
        :class:`RoutingError` when the item is not offered to that agent now
        (it rang out and went to another agent: the late answer gets BYE).
        """

        def action(out: list[AcdEvent]) -> None:
            slot, a = self._offered(item_id, extension)
            item = slot.item
            self._timers.cancel(slot.offer_timer)
            slot.offer_timer = None
            a.offer = None
            item.state = ItemState.ASSIGNED
            item.assigned_at = now
            self._transition(a, AgentState.BUSY, now, out, item_id=item_id)
            out.append(ItemAssigned(item_id, extension, item.queue, item.channel, now - slot.enq, ts=now))

        return self._run(now, action)

    def offer_declined(
        self, item_id: str, extension: str, now: float, *, reason: str | None = None
    ) -> list[AcdEvent]:
        """The agent did not take the offer (rejected, phone busy or unreachable).

        The item goes back to its original place and is offered again; the
        agent goes ``not_ready`` with ``reason`` (default: the no-answer
        reason), or keeps that reason pending while it holds other work.
        Raises as :meth:`offer_accepted`, or :class:`UnknownReasonError`.
        """

        def action(out: list[AcdEvent]) -> None:
            slot, a = self._offered(item_id, extension)
            not_ready = a.machine.check_reason(reason if reason is not None else self._no_answer)
            self._withdraw(slot, now, WithdrawReason.DECLINED, out, not_ready=not_ready)
            self._requeue(slot, now, out)

        return self._run(now, action)

    def item_done(self, item_id: str, now: float) -> list[AcdEvent]:
        """The agent finished an assigned item; after its last one, wrap-up for the queue's time.

        Raises :class:`UnknownItemError`, or :class:`RoutingError` when the item is not assigned.
        """

        def action(out: list[AcdEvent]) -> None:
            slot = self._slot(item_id)
            item = slot.item
            a = slot.agent
            if item.state is not ItemState.ASSIGNED or a is None:
                raise RoutingError(f"item {item_id} is {item.state}, not assigned")
            del a.held[item_id]
            a.remove_load(item.channel)
            assigned = item.assigned_at if item.assigned_at is not None else now
            out.append(ItemCompleted(item_id, a.extension, item.queue, item.channel, now - assigned, ts=now))
            wrap_up_s = self._queues[item.queue].spec.wrap_up_s
            self._forget(slot, ItemState.COMPLETED)
            self._after_work(a, now, out, wrap_up_s=wrap_up_s, item_id=item_id)

        return self._run(now, action)

    # ------------------------------------------------------------------ public: reading

    def item(self, item_id: str) -> WorkItem:
        """The work item (read only).  Raises :class:`UnknownItemError`."""
        return self._slot(item_id).item

    def items(self) -> Iterator[WorkItem]:
        """Every item in the router: waiting, offered, assigned (for storing)."""
        return (slot.item for slot in self._items.values())

    def queue_spec(self, name: str) -> QueueSpec:
        """A queue's definition.  Raises :class:`UnknownQueueError`."""
        return self._queue(name).spec

    def queue_names(self) -> list[str]:
        """The configured queues, by name."""
        return sorted(self._queues)

    def waiting(self, queue: str) -> list[WorkItem]:
        """The queue's waiting items in routing order (``GET /api/items?queue=``).

        Aging is per queue, so the order inside a queue does not depend on
        the time.  Raises :class:`UnknownQueueError`.
        """
        q = self._queue(queue)
        slots = [slot for cls in q.classes.values() for slot in cls.slots()]
        slots.sort(key=ItemSlot.order_key)
        return [slot.item for slot in slots]

    def position(self, item_id: str) -> int | None:
        """1-based place of a waiting item in its queue; ``None`` when it is not waiting.

        Raises :class:`UnknownItemError`.
        """
        slot = self._slot(item_id)
        if slot.cls is None:
            return None
        key = slot.order_key()
        q = slot.cls.queue
        return 1 + sum(1 for cls in q.classes.values() for other in cls.slots() if other.order_key() < key)

    def agent(self, extension: str) -> AgentStatus:
        """An agent's status.  Raises :class:`UnknownAgentError`."""
        a = self._agent(extension)
        m = a.machine
        offer = a.offer.item.id if a.offer is not None else None
        items = tuple(sorted(i for i in a.held if i != offer))
        return AgentStatus(
            a.extension,
            a.agent.name,
            m.state,
            m.reason,
            m.since,
            m.pending_reason,
            offer,
            items,
            a.wrap_until,
            tuple(sorted(q.spec.name for q in a.queues)),
        )

    def agents(self) -> list[AgentStatus]:
        """Every agent's status, by extension."""
        return [self.agent(ext) for ext in sorted(self._agents)]

    def agent_config(self, extension: str) -> Agent:
        """An agent's configuration.  Raises :class:`UnknownAgentError`."""
        return self._agent(extension).agent

    def snapshot(self, extension: str) -> AgentSnapshot:
        """The agent's state to store (the latest :class:`AgentStateChanged` carries the same)."""
        a = self._agent(extension)
        return a.machine.snapshot(a.wrap_until)

    def queue_status(self, name: str, now: float) -> QueueStatus:
        """Counts for one queue.  Raises :class:`UnknownQueueError`."""
        q = self._queue(name)
        waiting = [slot for cls in q.classes.values() for slot in cls.slots()]
        offered = sum(
            1 for slot in self._items.values() if slot.item.state is ItemState.OFFERED and slot.item.queue == name
        )
        longest = max((now - slot.enq for slot in waiting), default=0.0)
        busy_queues = {other for other in self._queues.values() if any(len(c) for c in other.classes.values())}
        counts = dict.fromkeys(AgentState, 0)
        effective = 0.0
        for a in q.members:
            state = a.machine.state
            counts[state] += 1
            if state in _WORKING:
                effective += 1.0 / max(1, len(a.queues & busy_queues | {q}))
        free = sum(1 for a in q.members if a in self._offerable)
        return QueueStatus(
            name=name,
            waiting=len(waiting),
            offered=offered,
            longest_wait_s=max(0.0, longest),
            agents_staffed=q.staffed,
            agents_available=counts[AgentState.AVAILABLE],
            agents_busy=counts[AgentState.RESERVED] + counts[AgentState.BUSY] + counts[AgentState.WRAP_UP],
            agents_not_ready=counts[AgentState.NOT_READY],
            agents_effective=effective,
            agents_free=free,
        )
