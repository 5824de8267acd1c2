"""The router's mechanics: deadlines, item placement, agent bookkeeping and matching.

Theory of operation
-------------------
*Invariant.*  After every call, no waiting item could be offered to any agent
that is free for it.  So a call only has to look at what it changed:

* an item that arrives, returns after an offer, reaches a relaxation step or
  overflows into a queue is put in its class's heap and marked *dirty*; at the
  end of the call it is matched against the free agents eligible for its
  class (the agents are the surplus: the queue's strategy, a sort key from
  :data:`AGENT_KEYS`, picks one);
* an agent that becomes free (available, an item finished, an offer
  withdrawn, wrap-up over, capacity freed) is marked dirty and takes the best
  waiting item among the heads of all the classes it is eligible for: highest
  effective priority, then earliest ``enqueued_at``, then arrival order (the
  items are the surplus).

:meth:`RouterEngine._settle` runs at the end of every call: dirty agents first,
then dirty items in routing order.  Then every offer goes to the best eligible
item for its agent even when one call freed several agents and items (a
batch of deadlines falling together): an agent matched first sees every
changed item already in its heap; an item matched later finds only agents
for which no better item waits, since a better item, processed earlier, would
have taken them.

*Deadlines* (:class:`~cosmo.acd.pools.Timers`): each waiting item's next
relaxation step or max wait (one at a time per item), each offer's ring
timeout, each wrap-up's end.  Every call first runs the deadlines due at its
``now``; the events of a deadline are stamped with the deadline's time.
While an item is offered its relaxation is suspended and caught up when it
returns.

*Agent states* change only in :meth:`RouterEngine._transition`, through the
agent's :class:`~cosmo.acd.agents.AgentStateMachine`, which also keeps the
per-queue count of logged-in agents (the empty-queue rule) and the occupied
time (the ``least-occupied`` strategy) in step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable

from cosmo.acd.agents import Actor
from cosmo.acd.errors import (
    AcdConfigError,
    AcdError,
    RoutingError,
    UnknownAgentError,
    UnknownItemError,
    UnknownQueueError,
)
from cosmo.acd.events import (
    AcdEvent,
    ItemOffered,
    ItemOverflowed,
    ItemRelaxed,
    OfferWithdrawn,
    OverflowReason,
    WithdrawReason,
)
from cosmo.acd.model import (
    AgentState,
    Channel,
    ItemState,
    OverflowKind,
    OverflowTarget,
    QueueSpec,
    Requirements,
    Strategy,
    check_queues,
)
from cosmo.acd.pools import (
    AgentSlot,
    ItemClass,
    ItemSlot,
    QueueRuntime,
    TimerKind,
    Timers,
)

__all__ = ["AGENT_KEYS", "RouterEngine"]

log = logging.getLogger(__name__)

OCCUPIED = frozenset({AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})
"""States counted as occupied time."""
_OFFERABLE = frozenset({AgentState.AVAILABLE, AgentState.BUSY})

AgentKey = Callable[[AgentSlot, ItemClass, float], tuple[float, ...]]


def _longest_idle(a: AgentSlot, cls: ItemClass, now: float) -> tuple[float, ...]:
    return (a.load_total, a.ready_since, a.order)


def _most_skilled(a: AgentSlot, cls: ItemClass, now: float) -> tuple[float, ...]:
    return (-a.agent.proficiency(cls.requirements), a.load_total, a.ready_since, a.order)


def _least_occupied(a: AgentSlot, cls: ItemClass, now: float) -> tuple[float, ...]:
    return (a.occupancy(now), a.load_total, a.ready_since, a.order)


def _round_robin(a: AgentSlot, cls: ItemClass, now: float) -> tuple[float, ...]:
    return (a.last_offer, a.ready_since, a.order)


AGENT_KEYS: dict[Strategy, AgentKey] = {
    Strategy.LONGEST_IDLE: _longest_idle,
    Strategy.MOST_SKILLED: _most_skilled,
    Strategy.LEAST_OCCUPIED: _least_occupied,
    Strategy.ROUND_ROBIN: _round_robin,
}
"""Each strategy is a sort key over the free eligible agents (smallest first)."""


class RouterEngine:
    """State and mechanics of :class:`~cosmo.acd.router.Router`; see the module documentation."""

    def __init__(self, queues: Iterable[QueueSpec], reasons: frozenset[str], no_answer_reason: str) -> None:
        if no_answer_reason not in reasons:
            raise AcdConfigError(f"the no-answer reason {no_answer_reason!r} is not among the reason codes")
        self._reasons = reasons
        self._no_answer = no_answer_reason
        self._queues = {name: QueueRuntime(spec) for name, spec in check_queues(queues).items()}
        self._agents: dict[str, AgentSlot] = {}
        self._by_skill: dict[str, set[AgentSlot]] = {}
        self._items: dict[str, ItemSlot] = {}
        self._timers = Timers()
        self._offerable: set[AgentSlot] = set()
        self._dirty_agents: list[AgentSlot] = []
        self._dirty_items: list[ItemSlot] = []
        self._carry: list[AcdEvent] = []
        self._item_seq = 0
        self._agent_seq = 0
        self._offer_seq = 0
        self.offers = 0
        """Offers decided so far."""

    # ------------------------------------------------------------------ call frame

    def _run(self, now: float, action: Callable[[list[AcdEvent]], None]) -> list[AcdEvent]:
        out = self._carry
        self._carry = []
        self._run_due(now, out)
        try:
            action(out)
        except AcdError:
            # Refused before changing anything: the deadlines already processed
            # stand, and their events go out with the next call.
            self._settle(now, out)
            self._carry = out
            raise
        self._settle(now, out)
        return out

    def _slot(self, item_id: str) -> ItemSlot:
        slot = self._items.get(item_id)
        if slot is None:
            raise UnknownItemError(f"unknown item {item_id!r}")
        return slot

    def _agent(self, extension: str) -> AgentSlot:
        a = self._agents.get(extension)
        if a is None:
            raise UnknownAgentError(f"unknown agent {extension!r}")
        return a

    def _queue(self, name: str) -> QueueRuntime:
        q = self._queues.get(name)
        if q is None:
            raise UnknownQueueError(f"unknown queue {name!r}")
        return q

    def _offered(self, item_id: str, extension: str) -> tuple[ItemSlot, AgentSlot]:
        slot = self._slot(item_id)
        a = self._agent(extension)
        if slot.item.state is not ItemState.OFFERED or slot.agent is not a:
            where = f" to agent {slot.item.agent}" if slot.item.agent else ""
            raise RoutingError(f"item {item_id} is not offered to agent {extension} (it is {slot.item.state}{where})")
        return slot, a

    # ------------------------------------------------------------------ deadlines

    def _run_due(self, now: float, out: list[AcdEvent]) -> None:
        while (timer := self._timers.pop_due(now)) is not None:
            ref = timer.ref
            if isinstance(ref, ItemSlot):
                if timer.kind is TimerKind.OFFER:
                    ref.offer_timer = None
                    self._withdraw(ref, timer.at, WithdrawReason.NO_ANSWER, out, not_ready=self._no_answer)
                    self._requeue(ref, now, out)
                else:
                    ref.timer = None
                    if ref.item.state is ItemState.QUEUED and self._advance(ref, now, out):
                        self._replace(ref)
            else:
                ref.wrap_timer = None
                ref.wrap_until = None
                self._rest(ref, timer.at, out)

    def _advance(self, slot: ItemSlot, now: float, out: list[AcdEvent]) -> bool:
        """Apply the item's relaxation steps and max wait due by ``now``; arm the next one.

        False when the item left the router (overflow to a target outside it).
        """
        self._timers.cancel(slot.timer)
        slot.timer = None
        item = slot.item
        while True:
            spec = self._queues[item.queue].spec
            start = item.queued_at if item.queued_at is not None else now
            steps = spec.relaxation
            step_at = start + steps[item.step].after_s if item.step < len(steps) else math.inf
            wait_at = math.inf
            if spec.max_wait_s is not None and spec.max_wait_target is not None \
                    and spec.max_wait_target.takes(item.channel):
                wait_at = start + spec.max_wait_s
            at = min(step_at, wait_at)
            if at > now:
                if at != math.inf:
                    slot.timer = self._timers.schedule(at, TimerKind.ITEM, slot)
                return True
            target: OverflowTarget | None
            if step_at <= wait_at:
                relax = steps[item.step]
                if relax.overflow_to is None:
                    item.step += 1
                    out.append(ItemRelaxed(item.id, spec.name, item.step, ts=at))
                    continue
                target, reason = OverflowTarget(OverflowKind.QUEUE, relax.overflow_to), OverflowReason.RELAXATION
            else:
                target, reason = spec.max_wait_target, OverflowReason.MAX_WAIT
            assert target is not None  # QueueSpec: max_wait_s comes with its target
            if not self._overflow(slot, target, reason, at, out):
                return False

    # ------------------------------------------------------------------ items

    def _enter(self, slot: ItemSlot, name: str, at: float, out: list[AcdEvent]) -> bool:
        """Put the item in queue ``name`` (not yet in a class); follows the empty-queue rule."""
        item = slot.item
        while True:
            q = self._queues[name]
            item.queue, item.queued_at, item.step = name, at, 0
            target = q.spec.no_agents_target
            if target is None or q.staffed or not target.takes(item.channel):
                return True
            out.append(
                ItemOverflowed(
                    item.id,
                    name,
                    target.kind,
                    target.destination,
                    item.channel,
                    OverflowReason.NO_AGENTS,
                    at - slot.enq,
                    ts=at,
                )
            )
            if target.kind is not OverflowKind.QUEUE:
                self._forget(slot, ItemState.OVERFLOWED)
                return False
            name = target.destination

    def _overflow(
        self, slot: ItemSlot, target: OverflowTarget, reason: OverflowReason, at: float, out: list[AcdEvent]
    ) -> bool:
        item = slot.item
        out.append(
            ItemOverflowed(
                item.id, item.queue, target.kind, target.destination, item.channel, reason, at - slot.enq, ts=at
            )
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("item %s: overflow %s -> %s (%s)", item.id, item.queue, target, reason)
        if target.kind is OverflowKind.QUEUE:
            return self._enter(slot, target.destination, at, out)
        self._forget(slot, ItemState.OVERFLOWED)
        return False

    def _empty_queue(self, q: QueueRuntime, at: float, out: list[AcdEvent]) -> None:
        """The last agent able to serve ``q`` logged out: its waiting items go to the no-agents target."""
        target = q.spec.no_agents_target
        if target is None:
            return
        slots = sorted((s for cls in q.classes.values() for s in cls.slots() if target.takes(s.item.channel)),
                       key=ItemSlot.order_key)
        for slot in slots:
            self._unplace(slot)
            self._timers.cancel(slot.timer)
            slot.timer = None
            if self._overflow(slot, target, OverflowReason.NO_AGENTS, at, out) and self._advance(slot, at, out):
                self._place(slot)

    def _place(self, slot: ItemSlot) -> None:
        """Put a waiting item into its class's heap and have it matched at the end of the call."""
        item = slot.item
        q = self._queues[item.queue]
        slot.score = item.priority - q.spec.aging_rate * slot.enq
        requirements = q.requirements(item)
        cls = q.classes.get((item.channel, requirements))
        if cls is None:
            cls = self._new_class(q, item.channel, requirements)
        cls.push(slot)
        self._dirty_items.append(slot)

    def _replace(self, slot: ItemSlot) -> None:
        """A waiting item's step or queue changed: move it unless its class stays the same."""
        cls = slot.cls
        if cls is not None:
            if cls.queue is self._queues[slot.item.queue] and cls.queue.class_for(slot.item) is cls:
                return  # the same agents are eligible: nothing to do
            cls.discard(slot)
        self._place(slot)

    def _unplace(self, slot: ItemSlot) -> None:
        if slot.cls is not None:
            slot.cls.discard(slot)

    def _requeue(self, slot: ItemSlot, now: float, out: list[AcdEvent]) -> None:
        """An item back from an offer: catch up with its deadlines, then at its original place."""
        if self._advance(slot, now, out):
            self._place(slot)

    def _forget(self, slot: ItemSlot, state: ItemState) -> None:
        item = slot.item
        item.state = state
        self._unplace(slot)
        self._timers.cancel(slot.timer)
        self._timers.cancel(slot.offer_timer)
        slot.timer = slot.offer_timer = None
        slot.agent = None
        self._items.pop(item.id, None)

    def _new_class(self, q: QueueRuntime, channel: Channel, requirements: Requirements) -> ItemClass:
        cls = ItemClass(q, channel, requirements)
        candidates: Collection[AgentSlot] = self._agents.values()
        for skill, _ in requirements:  # the rarest required skill's agents
            having = self._by_skill.get(skill, set())
            if len(having) < len(candidates):
                candidates = having
        for a in candidates:
            if a.agent.capacity.get(channel, 0) > 0 and a.agent.meets(requirements):
                cls.eligible.add(a)
                a.classes.setdefault(channel, []).append(cls)
        q.classes[(channel, requirements)] = cls
        return cls

    # ------------------------------------------------------------------ agents

    def _index_agent(self, a: AgentSlot) -> None:
        agent = a.agent
        for skill in agent.skills:
            self._by_skill.setdefault(skill, set()).add(a)
        logged_in = a.machine.state is not AgentState.LOGGED_OUT
        serves_any = any(agent.capacity.values())
        for q in self._queues.values():
            if serves_any and agent.meets(q.base_requirements[-1]):
                q.members.add(a)
                a.queues.add(q)
                q.staffed += logged_in
            for (channel, requirements), cls in q.classes.items():
                if agent.capacity.get(channel, 0) > 0 and agent.meets(requirements):
                    cls.eligible.add(a)
                    a.classes.setdefault(channel, []).append(cls)

    def _unindex_agent(self, a: AgentSlot) -> None:
        for skill in a.agent.skills:
            self._by_skill[skill].discard(a)
        logged_in = a.machine.state is not AgentState.LOGGED_OUT
        for q in a.queues:
            q.members.discard(a)
            q.staffed -= logged_in
        for classes in a.classes.values():
            for cls in classes:
                cls.eligible.discard(a)
        a.classes = {}
        a.queues = set()

    def _transition(
        self,
        a: AgentSlot,
        to: AgentState,
        at: float,
        out: list[AcdEvent],
        *,
        actor: Actor = Actor.ROUTER,
        reason: str | None = None,
        item_id: str | None = None,
    ) -> None:
        """The one place the router changes an agent's state (through its machine)."""
        event = a.machine.transition(to, at, actor=actor, reason=reason, item_id=item_id)
        if event is None:
            return
        old = event.from_state
        if old is AgentState.LOGGED_OUT:
            a.login_at = at
            a.occupied_s = 0.0
            for q in a.queues:
                q.staffed += 1
        if old in OCCUPIED and to not in OCCUPIED and a.occupied_since is not None:
            a.occupied_s += at - a.occupied_since
            a.occupied_since = None
        elif to in OCCUPIED and old not in OCCUPIED:
            a.occupied_since = at
        if to is AgentState.AVAILABLE:
            a.ready_since = at
        out.append(event)
        if to is AgentState.LOGGED_OUT:
            for q in a.queues:
                q.staffed -= 1
                if q.staffed == 0:
                    self._empty_queue(q, at, out)
        self._touch(a)

    def _touch(self, a: AgentSlot) -> None:
        """Re-check whether the agent can take an offer; if so, match it at the end of the call."""
        if (
            a.machine.state in _OFFERABLE
            and a.offer is None
            and a.machine.pending_reason is None
            and a.has_room()
            and a.extension in self._agents
        ):
            self._offerable.add(a)
            if not a.dirty:
                a.dirty = True
                self._dirty_agents.append(a)
        else:
            self._offerable.discard(a)

    def _cancel_wrap_up(self, a: AgentSlot) -> None:
        self._timers.cancel(a.wrap_timer)
        a.wrap_timer = None
        a.wrap_until = None

    def _rest(self, a: AgentSlot, at: float, out: list[AcdEvent], item_id: str | None = None) -> None:
        """The agent's work is over: not ready with its pending reason, else available."""
        pending = a.machine.pending_reason
        if pending is not None:
            self._transition(a, AgentState.NOT_READY, at, out, reason=pending, item_id=item_id)
        else:
            self._transition(a, AgentState.AVAILABLE, at, out, item_id=item_id)

    def _after_work(
        self,
        a: AgentSlot,
        at: float,
        out: list[AcdEvent],
        *,
        wrap_up_s: float = 0.0,
        not_ready: str | None = None,
        item_id: str | None = None,
    ) -> None:
        """An item or an offer of the agent's ended; ``not_ready``: the reason it earned (no answer)."""
        if a.held:
            if a.offer is None and a.machine.state is AgentState.RESERVED:
                self._transition(a, AgentState.BUSY, at, out, item_id=item_id)
            if not_ready is not None:
                a.machine.defer_not_ready(not_ready)
            a.ready_since = at
            self._touch(a)
        elif not_ready is not None:
            self._transition(a, AgentState.NOT_READY, at, out, reason=not_ready, item_id=item_id)
        elif wrap_up_s > 0:
            self._transition(a, AgentState.WRAP_UP, at, out, item_id=item_id)
            a.wrap_until = at + wrap_up_s
            a.wrap_timer = self._timers.schedule(a.wrap_until, TimerKind.WRAP_UP, a)
        else:
            self._rest(a, at, out, item_id)

    def _withdraw(
        self,
        slot: ItemSlot,
        at: float,
        reason: WithdrawReason,
        out: list[AcdEvent],
        *,
        not_ready: str | None = None,
    ) -> None:
        """End an offer without the item being taken; the item is waiting again (not yet placed)."""
        item = slot.item
        a = slot.agent
        assert a is not None and a.offer is slot
        self._timers.cancel(slot.offer_timer)
        slot.offer_timer = None
        a.offer = None
        del a.held[item.id]
        a.remove_load(item.channel)
        item.state, item.agent, slot.agent = ItemState.QUEUED, None, None
        out.append(OfferWithdrawn(item.id, a.extension, item.queue, reason, ts=at))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("item %s: offer to agent %s withdrawn (%s)", item.id, a.extension, reason)
        if reason is not WithdrawReason.AGENT:
            self._after_work(a, at, out, not_ready=not_ready, item_id=item.id)

    # ------------------------------------------------------------------ matching

    def _settle(self, now: float, out: list[AcdEvent]) -> None:
        """Match what this call changed: free agents first, then new items in routing order."""
        while self._dirty_agents or self._dirty_items:
            agents, self._dirty_agents = self._dirty_agents, []
            for a in agents:
                a.dirty = False
                self._match_agent(a, now, out)
            items, self._dirty_items = self._dirty_items, []
            waiting = [slot for slot in items if slot.cls is not None]
            if len(waiting) > 1:
                waiting.sort(key=lambda s: self._rank(s, now))
            for slot in waiting:
                self._match_item(slot, now, out)

    @staticmethod
    def _rank(slot: ItemSlot, now: float) -> tuple[float, float, int]:
        cls = slot.cls
        rate = cls.rate if cls is not None else 0.0
        return (-(slot.item.priority + rate * (now - slot.enq)), slot.enq, slot.seq)

    def _match_agent(self, a: AgentSlot, now: float, out: list[AcdEvent]) -> None:
        """A free agent takes the best waiting item of all the classes it is eligible for."""
        if a not in self._offerable:
            return
        agent, load = a.agent, a.load
        best: ItemSlot | None = None
        best_cls: ItemClass | None = None
        best_eff = 0.0
        for channel, classes in a.classes.items():
            if not agent.admits(channel, load):
                continue
            for cls in classes:
                if len(cls.heap) == cls.stale:
                    continue
                slot = cls.head()
                if slot is None:
                    continue
                eff = slot.item.priority + cls.rate * (now - slot.enq)
                if (
                    best is None
                    or eff > best_eff
                    or (eff == best_eff and (slot.enq < best.enq or (slot.enq == best.enq and slot.seq < best.seq)))
                ):
                    best, best_cls, best_eff = slot, cls, eff
        if best is None or best_cls is None:
            return
        best_cls.pop_head()
        self._offer(best, a, now, out)

    def _match_item(self, slot: ItemSlot, now: float, out: list[AcdEvent]) -> None:
        """A waiting item goes to the best free eligible agent, per its queue's strategy
        (its ``preferred_agent``, when that one is free and eligible)."""
        cls = slot.cls
        if cls is None:
            return
        eligible, offerable = cls.eligible, self._offerable
        if len(offerable) <= len(eligible):
            candidates = [a for a in offerable if a in eligible]
        else:
            candidates = [a for a in eligible if a in offerable]
        channel = cls.channel
        candidates = [a for a in candidates if a.agent.admits(channel, a.load)]
        if not candidates:
            return
        # The agent who last handled the customer's matter (an e-mail case) comes first when free.
        preferred = slot.item.data.get("preferred_agent")
        best = next((a for a in candidates if a.extension == preferred), None) if preferred else None
        if best is None:
            key = AGENT_KEYS[cls.queue.spec.strategy]
            best = min(candidates, key=lambda a: key(a, cls, now))
        cls.discard(slot)
        self._offer(slot, best, now, out)

    def _offer(self, slot: ItemSlot, a: AgentSlot, now: float, out: list[AcdEvent]) -> None:
        item = slot.item
        spec = self._queues[item.queue].spec
        self._timers.cancel(slot.timer)
        slot.timer = None
        item.state, item.agent, slot.agent = ItemState.OFFERED, a.extension, a
        a.offer = slot
        a.held[item.id] = slot
        a.add_load(item.channel)
        self._offer_seq += 1
        a.last_offer = self._offer_seq
        self._transition(a, AgentState.RESERVED, now, out, item_id=item.id)
        expires = None
        if spec.ring_timeout_s is not None:
            expires = now + spec.ring_timeout_s
            slot.offer_timer = self._timers.schedule(expires, TimerKind.OFFER, slot)
        out.append(ItemOffered(item.id, a.extension, item.queue, item.channel, expires, ts=now))
        self.offers += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("item %s: offered to agent %s (queue %s)", item.id, a.extension, item.queue)
