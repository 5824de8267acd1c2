"""The router's indexes: item classes with their ordered heaps, agent records, the deadline heap.

Internal to :mod:`cosmo.acd.router`; nothing here changes state on its own.

Theory of operation
-------------------
Waiting items are partitioned into *item classes*: the items of one queue and
one channel that require exactly the same skills at the same levels (the
queue's and the item's own, after the relaxation steps reached).  Every item
of a class is eligible for exactly the same agents, so

* a class's items sit in one binary heap ordered by
  ``(-score, enqueued_at, seq)`` where ``score = priority - aging_rate ×
  enqueued_at``.  Because aging is linear with one rate per queue,
  ``score + aging_rate × now`` is the effective priority at ``now`` and the
  order inside a class never changes with time: the head is always the
  class's best item;
* a class knows its eligible agents (computed once from the per-skill agent
  index when the class appears), and every agent knows, per channel, the
  classes it is eligible for.

An agent that becomes free compares the heads of its classes (one heap peek
each) and takes the best; an item that arrives looks only at the agents that
are both free and eligible for its class.  Removals are lazy: an entry whose
token no longer matches its slot is skipped when it reaches the top, and a
heap is rebuilt when more than half of it is stale.

Classes are created on first use and kept (until the queues are
reconfigured): their number is bounded by queues × channels × relaxation
steps × the distinct skill sets items add of their own.  Items carrying
one-off skill sets would make it grow; route those by queue instead.

Deadlines (relaxation, max wait, ring timeout, wrap-up end) sit in one heap
of ``(at, seq, Timer)`` entries; cancelling clears the timer's ``alive``.
"""

from __future__ import annotations

import enum
import heapq

from cosmo.acd.agents import AgentStateMachine
from cosmo.acd.model import Agent, Channel, QueueSpec, Requirements, WorkItem

__all__ = ["AgentSlot", "ItemClass", "ItemSlot", "QueueRuntime", "Timer", "TimerKind", "Timers"]

_COMPACT_MIN = 64


class ItemSlot:
    """The router's record of one work item: its heap position and deadlines."""

    __slots__ = ("agent", "cls", "enq", "item", "offer_timer", "score", "seq", "timer", "token")

    def __init__(self, item: WorkItem, seq: int, enqueued_at: float) -> None:
        self.item = item
        self.seq = seq
        self.enq = enqueued_at
        self.score = 0.0
        self.token = 0
        self.cls: ItemClass | None = None
        self.agent: AgentSlot | None = None
        self.timer: Timer | None = None
        self.offer_timer: Timer | None = None

    def order_key(self) -> tuple[float, float, int]:
        """The item's place in its queue (smaller first); constant while it stays in the queue."""
        return (-self.score, self.enq, self.seq)


class ItemClass:
    """Waiting items of one queue and channel with identical requirements, best first."""

    __slots__ = ("channel", "eligible", "heap", "queue", "rate", "requirements", "stale")

    def __init__(self, queue: QueueRuntime, channel: Channel, requirements: Requirements) -> None:
        self.queue = queue
        self.channel = channel
        self.requirements = requirements
        self.rate = queue.spec.aging_rate
        self.heap: list[tuple[float, float, int, int, ItemSlot]] = []
        self.stale = 0
        self.eligible: set[AgentSlot] = set()

    def __len__(self) -> int:
        return len(self.heap) - self.stale

    def push(self, slot: ItemSlot) -> None:
        """Add a waiting item (at the place its key gives it)."""
        slot.cls = self
        heapq.heappush(self.heap, (-slot.score, slot.enq, slot.seq, slot.token, slot))

    def head(self) -> ItemSlot | None:
        """The best waiting item, without taking it."""
        heap = self.heap
        while heap:
            entry = heap[0]
            if entry[3] == entry[4].token:
                return entry[4]
            heapq.heappop(heap)
            self.stale -= 1
        return None

    def pop_head(self) -> None:
        """Take the item :meth:`head` returned."""
        slot = heapq.heappop(self.heap)[4]
        slot.token += 1
        slot.cls = None

    def discard(self, slot: ItemSlot) -> None:
        """Take ``slot`` out wherever it is (lazily)."""
        slot.token += 1
        slot.cls = None
        self.stale += 1
        if self.stale > _COMPACT_MIN and self.stale * 2 > len(self.heap):
            self.heap = [entry for entry in self.heap if entry[3] == entry[4].token]
            heapq.heapify(self.heap)
            self.stale = 0

    def slots(self) -> list[ItemSlot]:
        """The waiting items, in no particular order."""
        return [entry[4] for entry in self.heap if entry[3] == entry[4].token]


class QueueRuntime:
    """A queue as the router runs it: its spec, its item classes, the agents able to serve it."""

    __slots__ = ("base_requirements", "classes", "members", "spec", "staffed")

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.base_requirements = [spec.requirements({}, step) for step in range(len(spec.relaxation) + 1)]
        """Requirements of an item without skills of its own, per relaxation step."""
        self.classes: dict[tuple[Channel, Requirements], ItemClass] = {}
        self.members: set[AgentSlot] = set()
        self.staffed = 0
        """Members that are logged in."""

    def requirements(self, item: WorkItem) -> Requirements:
        """What an agent needs for ``item`` at its relaxation step."""
        if not item.skills:
            return self.base_requirements[item.step]
        return self.spec.requirements(item.skills, item.step)

    def class_for(self, item: WorkItem) -> ItemClass | None:
        """The existing class ``item`` belongs in now, if there is one."""
        return self.classes.get((item.channel, self.requirements(item)))


class AgentSlot:
    """The router's record of one agent: configuration, state machine, load and indexes."""

    __slots__ = (
        "agent",
        "classes",
        "dirty",
        "held",
        "last_offer",
        "load",
        "load_total",
        "login_at",
        "machine",
        "occupied_s",
        "occupied_since",
        "offer",
        "order",
        "queues",
        "ready_since",
        "wrap_timer",
        "wrap_until",
    )

    def __init__(self, agent: Agent, machine: AgentStateMachine, order: int) -> None:
        self.agent = agent
        self.machine = machine
        self.order = order
        self.load: dict[Channel, int] = {}
        self.load_total = 0
        self.held: dict[str, ItemSlot] = {}
        self.offer: ItemSlot | None = None
        self.classes: dict[Channel, list[ItemClass]] = {}
        self.queues: set[QueueRuntime] = set()
        self.ready_since = machine.since
        self.last_offer = 0
        self.login_at = machine.since
        self.occupied_s = 0.0
        self.occupied_since: float | None = None
        self.wrap_timer: Timer | None = None
        self.wrap_until: float | None = None
        self.dirty = False

    @property
    def extension(self) -> str:
        return self.agent.extension

    def add_load(self, channel: Channel) -> None:
        self.load[channel] = self.load.get(channel, 0) + 1
        self.load_total += 1

    def remove_load(self, channel: Channel) -> None:
        count = self.load[channel] - 1
        if count:
            self.load[channel] = count
        else:
            del self.load[channel]
        self.load_total -= 1

    def has_room(self) -> bool:
        """True when one more item of some channel fits."""
        agent, load = self.agent, self.load
        return any(count and agent.admits(channel, load) for channel, count in agent.capacity.items())

    def occupancy(self, now: float) -> float:
        """Share of the time since login spent reserved, busy or in wrap-up."""
        occupied = self.occupied_s
        if self.occupied_since is not None:
            occupied += now - self.occupied_since
        span = now - self.login_at
        return occupied / span if span > 0 else 0.0


class TimerKind(enum.IntEnum):
    """What a deadline is for."""

    ITEM = 0
    """The next relaxation step or the max wait of a waiting item."""
    OFFER = 1
    """The ring timeout of an offer."""
    WRAP_UP = 2
    """The end of an agent's wrap-up."""


class Timer:
    """One deadline; the handle :meth:`Timers.cancel` takes."""

    __slots__ = ("alive", "at", "kind", "ref")

    def __init__(self, at: float, kind: TimerKind, ref: ItemSlot | AgentSlot) -> None:
        self.at = at
        self.kind = kind
        self.ref = ref
        self.alive = True


class Timers:
    """Deadlines in one heap, cancelled lazily."""

    __slots__ = ("_heap", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0
        self._stale = 0

    def __len__(self) -> int:
        return len(self._heap) - self._stale

    def schedule(self, at: float, kind: TimerKind, ref: ItemSlot | AgentSlot) -> Timer:
        """Add a deadline; the returned handle cancels it."""
        self._seq += 1
        timer = Timer(at, kind, ref)
        heapq.heappush(self._heap, (at, self._seq, timer))
        return timer

    def cancel(self, timer: Timer | None) -> None:
        """Forget a deadline (a ``None`` handle or a fired one is ignored)."""
        if timer is None or not timer.alive:
            return
        timer.alive = False
        self._stale += 1
        if self._stale > _COMPACT_MIN and self._stale * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if entry[2].alive]
            heapq.heapify(self._heap)
            self._stale = 0

    def next_at(self) -> float | None:
        """The earliest live deadline."""
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
            self._stale -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Timer | None:
        """The earliest live deadline at or before ``now``, removed; ``None`` when there is none."""
        at = self.next_at()
        if at is None or at > now:
            return None
        timer = heapq.heappop(self._heap)[2]
        timer.alive = False
        return timer
